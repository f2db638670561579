#include <cstdio>
int main() {
    long long n, count = 0;
    std::scanf("%lld", &n);
    for (long long i = 1; i * i <= n; ++i)
        if (n % i == 0) count += 2;  // counts the square root of a square twice
    std::printf("%lld\n", count);
}
