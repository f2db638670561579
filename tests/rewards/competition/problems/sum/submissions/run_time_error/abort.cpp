#include <cstdio>
#include <cstdlib>
int main() {
    long long a, b;
    std::scanf("%lld %lld", &a, &b);
    std::abort();
}
