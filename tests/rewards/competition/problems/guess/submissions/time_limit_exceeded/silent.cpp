#include <iostream>
int main() {
    long long bound, never;
    std::cin >> bound >> never;  // waits for a reply to a question it never asked
    std::cout << "! " << never << std::endl;
}
