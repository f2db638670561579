#include <cstdio>
#include <cstring>
#include <vector>
int main() {
    long long a, b;
    std::scanf("%lld %lld", &a, &b);
    std::vector<char*> blocks;
    for (int i = 0; i < 64; ++i) {  // 64 x 64 MiB, far above the 256 MiB limit
        char* block = new char[64 << 20];
        std::memset(block, 1, 64 << 20);
        blocks.push_back(block);
    }
    std::printf("%lld\n", a + b + (long long)blocks.size() - 64);
}
