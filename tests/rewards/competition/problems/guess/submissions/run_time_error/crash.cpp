#include <cstdlib>
#include <iostream>
#include <string>
int main() {
    long long bound;
    std::cin >> bound;
    std::cout << "? 500000" << std::endl;
    std::string reply;
    std::cin >> reply;
    int* volatile nowhere = nullptr;
    return *nowhere;  // segmentation fault
}
