// Kattis output validator: validate input answer feedback_dir < contestant_output
// Accepts any two distinct positive integers summing to n.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

static void verdict(const std::string& feedback_dir, int code, const std::string& message) {
    std::ofstream(feedback_dir + "/judgemessage.txt") << message << "\n";
    std::exit(code);
}

int main(int argc, char** argv) {
    if (argc < 4) return 1;
    long long n;
    std::ifstream(argv[1]) >> n;
    const std::string feedback(argv[3]);
    long long x, y;
    if (!(std::cin >> x >> y)) verdict(feedback, 43, "expected two integers");
    std::string extra;
    if (std::cin >> extra) verdict(feedback, 43, "trailing output: " + extra);
    if (x <= 0 || y <= 0) verdict(feedback, 43, "numbers must be positive");
    if (x == y) verdict(feedback, 43, "numbers must be distinct");
    if (x + y != n) verdict(feedback, 43, "numbers do not sum to n");
    verdict(feedback, 42, "ok");
}
