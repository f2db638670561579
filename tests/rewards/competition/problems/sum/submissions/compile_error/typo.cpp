#include <cstdio>
int main() {
    long long a b;
    std::printf("%lld\n", a + b)
}
