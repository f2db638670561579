#include <iostream>
#include <string>
int main() {
    long long low = 1, high;
    std::cin >> high;
    while (low < high) {
        long long mid = (low + high) / 2;
        std::cout << "? " << mid << std::endl;
        std::string reply;
        std::cin >> reply;
        if (reply == "=") { low = high = mid; break; }
        if (reply == "<") high = mid - 1; else low = mid + 1;
    }
    std::cout << "! " << low << std::endl;
}
