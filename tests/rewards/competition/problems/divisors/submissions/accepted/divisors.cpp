#include <cstdio>
int main() {
    long long n, count = 0;
    std::scanf("%lld", &n);
    for (long long i = 1; i * i <= n; ++i)
        if (n % i == 0) count += (i * i == n) ? 1 : 2;
    std::printf("%lld\n", count);
}
