"""Kattis interactor: interactor.py input answer feedback_dir, talking to the solution on stdin/stdout.

The hidden number x (1 <= x <= 10^6) is in the input file. The interactor sends the bound 10^6; the
solution asks "? y" (answered "<", ">" or "=") at most 25 times and finishes with "! x".
"""

import sys

MAX_QUERIES = 25


def finish(code: int, message: str) -> None:
    with open(sys.argv[3] + "/judgemessage.txt", "w") as feedback:
        feedback.write(message + "\n")
    sys.exit(code)


def main() -> None:
    with open(sys.argv[1]) as f:
        hidden = int(f.read())
    print(10**6, flush=True)
    queries = 0
    for line in sys.stdin:
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("?", "!") or not parts[1].lstrip("-").isdigit():
            finish(43, f"malformed line {line.strip()!r}")
        value = int(parts[1])
        if parts[0] == "!":
            if value != hidden:
                finish(43, f"answered {value}, the number was {hidden}")
            finish(42, f"found in {queries} queries")
        queries += 1  # noqa: SIM113 (counts queries, not lines)
        if queries > MAX_QUERIES:
            finish(43, "too many queries")
        print("<" if hidden < value else ">" if hidden > value else "=", flush=True)
    finish(43, "the solution stopped without an answer")


main()
