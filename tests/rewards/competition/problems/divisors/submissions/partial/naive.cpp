#include <cstdio>
int main() {
    long long n, count = 0;
    std::scanf("%lld", &n);
    for (long long i = 1; i <= n; ++i)  // O(n): only the small subtask fits the time limit
        if (n % i == 0) ++count;
    std::printf("%lld\n", count);
}
