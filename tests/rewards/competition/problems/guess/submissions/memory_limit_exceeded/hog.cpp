#include <cstring>
#include <iostream>
#include <vector>
int main() {
    long long bound;
    std::cin >> bound;
    std::vector<char*> blocks;
    for (int i = 0; i < 64; ++i) {  // 4 GiB against a 256 MiB limit
        char* block = new char[64 << 20];
        std::memset(block, 1, 64 << 20);
        blocks.push_back(block);
    }
    std::cout << "! " << blocks.size() << std::endl;
}
