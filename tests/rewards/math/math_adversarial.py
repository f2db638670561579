"""A seeded generator of hostile math answers (shared by the tests and the benchmark).

Families: nested and unbalanced braces, power towers, huge numbers and factorials, deep radicals
and fractions, unclosed environments, binary junk, random unicode, regex-hostile repetitions and
very long responses.
"""

from __future__ import annotations

import random

FAMILIES = (
    "nested_braces",
    "unbalanced",
    "tower",
    "huge_number",
    "factorial",
    "deep_radical",
    "deep_fraction",
    "environment",
    "binary_junk",
    "unicode",
    "repetition",
    "big_sum",
)


def _tower(rng: random.Random) -> str:
    depth = rng.randint(2, 6)
    expr = str(rng.randint(2, 99))
    for _ in range(depth):
        expr = f"{rng.randint(2, 99)}^{{{expr}}}"
    return expr


def _one(rng: random.Random, family: str) -> str:
    if family == "nested_braces":
        n = rng.randint(50, 3000)
        return "\\boxed{" + "{" * n + str(rng.randint(0, 9)) + "}" * n + "}"
    if family == "unbalanced":
        pieces = ["\\frac{", "\\left(", "\\right]", "}", "{", "\\sqrt{", "\\boxed{", "$", "^", "_", "\\\\"]
        return "".join(rng.choice(pieces) for _ in range(rng.randint(5, 400)))
    if family == "tower":
        return f"\\boxed{{{_tower(rng)}}}"
    if family == "huge_number":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(300, 20000)))
        return rng.choice([f"\\boxed{{{digits}}}", f"\\boxed{{1{digits}/3}}", f"\\boxed{{{digits}^{{{digits[:5]}}}}}"])
    if family == "factorial":
        return rng.choice(
            [
                f"\\boxed{{{rng.randint(10**4, 10**9)}!}}",
                f"\\boxed{{\\binom{{{rng.randint(10**7, 10**12)}}}{{{rng.randint(2, 10**6)}}}}}",
            ]
        )
    if family == "deep_radical":
        n = rng.randint(20, 400)
        return "\\boxed{" + "\\sqrt{" * n + "2" + "}" * n + "}"
    if family == "deep_fraction":
        n = rng.randint(10, 200)
        return "\\boxed{" + "\\frac{1}{1+" * n + "x" + "}" * n + "}"
    if family == "environment":
        return rng.choice(
            [
                "\\boxed{\\begin{pmatrix}" + "1 & " * rng.randint(1, 500) + "\\\\" * rng.randint(1, 500),
                "\\begin{array}{" + "c" * 300 + "}" + "&" * 1000 + "\\end{array}",
                "\\boxed{\\begin{pmatrix}1&2\\end{bmatrix}}",
            ]
        )
    if family == "binary_junk":
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 5000))).decode("latin-1")
    if family == "unicode":
        chars = [chr(rng.randint(0x20, 0x2FFFF)) for _ in range(rng.randint(1, 2000))]
        text = "".join(c for c in chars if not 0xD800 <= ord(c) <= 0xDFFF)
        return rng.choice([text, f"\\boxed{{{text[:50]}}}", f"Answer: {text}"])
    if family == "repetition":
        unit = rng.choice(["$", "\\(", "\\boxed", "1,", "answer is ", "((((", "x=", "\\{", "a^", "e"])
        return unit * rng.randint(100, 50000)
    if family == "big_sum":
        upper = rng.choice([10**4, 10**6, 10**9])
        return rng.choice([f"\\boxed{{\\sum_{{k=1}}^{{{upper}}} k^{{k}}}}", f"\\boxed{{\\prod_{{k=1}}^{{{upper}}} k}}"])
    raise ValueError(family)


def adversarial_inputs(n: int = 1000, seed: int = 0) -> list[tuple[str, str, str]]:
    """``n`` ``(family, gold, response)`` triples, deterministic for a seed."""
    rng = random.Random(seed)
    golds = ["2", "\\frac{1}{2}", "x^2+1", "(1, 2)", "[0, 1)", "\\text{yes}", "C", "10^{100}"]
    rows = []
    for index in range(n):
        family = FAMILIES[index % len(FAMILIES)]
        rows.append((family, rng.choice(golds), _one(rng, family)))
    return rows
