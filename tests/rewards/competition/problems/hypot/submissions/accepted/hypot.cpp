#include <cmath>
#include <cstdio>
int main() {
    double x, y;
    std::scanf("%lf %lf", &x, &y);
    std::printf("%.12e\n", std::hypot(x, y));  // scientific notation: 1e3 and 1000 are the same number
}
