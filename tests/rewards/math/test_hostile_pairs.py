"""Wrong-but-close answers (``data/hostile_pairs.jsonl``): every one must be rejected.

A false positive teaches the policy a wrong answer, so each family of near misses (grouping braces,
letter case, absolute values inside and outside logarithms, sign flips, off-by-one exponents, swapped
fractions, near decimals, interval ends, tuple order, missing solutions, units, ...) is checked in
this process with several answer formats and through the reward's worker processes. The controls
below are right answers from the same families, so a verifier that rejects everything fails here.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import DATA

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.math import MathReward, verify

ROWS = [json.loads(line) for line in (DATA / "hostile_pairs.jsonl").read_text().splitlines() if line.strip()]
WRAPPERS = {
    "boxed": lambda a: f"So the answer is $\\boxed{{{a}}}$.",
    "final_answer": lambda a: f"The final answer is ${a}$. I hope it is correct.",
    "answer_line": lambda a: f"Answer: ${a}$",
}

#: Right answers from every family: the rules that reject the near misses must still accept these.
CONTROLS: dict[str, list[tuple[str, str]]] = {
    "brace_grouping": [
        ("2^{n+1}", "2^{n+1}"),
        (r"\frac{1}{2}x", r"\frac{x}{2}"),
        (r"\frac{1}{2x}", r"\frac{1}{2 x}"),
        ("x^{2}", "x^2"),
        (r"\frac{12}{3}", "4"),
        (r"\frac{1}{2}", r"\frac12"),
        ("x_{12}", "x_{12}"),
        ("2^{10}", "1024"),
    ],
    "variable_case": [("X", "X"), ("2X+1", "1+2X"), (r"\text{Yes}", "yes"), (r"\Gamma", r"\Gamma")],
    "absolute_value": [("|x|", r"\sqrt{x^{2}}"), ("|x-1|", "|1-x|"), ("x|x|", "|x|x"), ("|x|", "|-x|")],
    "log_absolute_value": [
        (r"\ln|x|", r"\frac{1}{2}\ln(x^{2})"),
        (r"\ln(xy)", r"\ln x+\ln y"),
        (r"\ln|x|+C", r"C+\ln|x|"),
        (r"\log(xy)", r"\log x+\log y"),
        (r"\ln(x^{2})", r"2\ln|x|"),
    ],
    "sign_flip": [("x-1", "-(1-x)"), (r"-\frac{1}{2}", r"\frac{-1}{2}"), ("e^{-x}", r"\frac{1}{e^{x}}")],
    "exponent_off_by_one": [
        ("2^{n+1}", r"2\cdot 2^{n}"),
        (r"\frac{1}{2^{99}}", "2^{-99}"),
        ("2^{100}", "1267650600228229401496703205376"),
        ("(n+1)!", "(n+1)n!"),
    ],
    "fraction_swap": [(r"\frac{2}{3}", r"\frac{4}{6}"), (r"\frac{x}{y}", "x/y")],
    "near_decimal": [(r"\frac{1}{3}", "0.3333333"), (r"\pi", "3.14159265"), ("0.5", r"\frac{1}{2}")],
    "interval_endpoints": [("[0,1)", "[0, 1)"), ("x > 3", r"(3, \infty)"), (r"x \leq 2", r"(-\infty, 2]")],
    "tuple_order": [("(1,2)", "(1, 2)"), ("(x,y) = (2,3)", "(2,3)")],
    "missing_or_extra_solution": [(r"\{1, 2\}", r"\{2, 1\}"), (r"\pm 2", "2, -2"), ("x=1, x=2", "x = 1, 2")],
    "units": [
        (r"5\text{ m}", "5 meters"),
        (r"12\text{ cm}^2", r"12\text{ cm}^{2}"),
        (r"5\text{ m}", "5"),
        ("3 hours", r"3\text{ hrs}"),
    ],
    "percent": [(r"25\%", "0.25"), (r"25\%", "25")],
    "digits": [("1,000", "1000"), ("123456789", "123,456,789")],
    "complex_numbers": [("1+i", "i+1"), (r"e^{i\pi}", "-1"), (r"\frac{1}{i}", "-i")],
    "matrices": [(r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}")],
    "multiple_choice": [("B", "(B)"), ("C", r"\text{C}")],
    "words": [(r"\text{Evelyn}", "Evelyn"), (r"\text{yes}", r"\text{Yes}")],
    "piecewise_thresholds": [(r"\max(x, 3)", r"\max(3, x)"), (r"|x-5|", "|5-x|")],
    "square_roots": [(r"\sqrt{12}", r"2\sqrt{3}"), (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}")],
    "trigonometry": [(r"\sin 2x", r"2\sin x\cos x"), (r"\cos^{2} x", r"1-\sin^{2} x")],
    "coefficients": [(r"\frac{4}{3}\pi r^{3}", r"\frac{4\pi r^{3}}{3}"), ("x^{2}+2x+1", "(x+1)^{2}")],
    "variables_renamed": [("x+1", "1+x")],
    "relations": [("y = 2x+1", "y = 1+2x"), ("x > 3", "3 < x")],
    "sets_vs_tuples": [(r"\{1,2\}", r"\{1, 2\}")],
    "assignments": [("(p,q) = (3,2)", "(3,2)"), ("a = 5", "5")],
    "big_numbers": [("100!", "100!"), ("10^{100}", r"10^{100}")],
}


def test_the_hostile_set_is_large_varied_and_well_formed() -> None:
    assert len(ROWS) >= 300
    families = Counter(row["family"] for row in ROWS)
    assert len(families) >= 20
    assert min(families.values()) >= 4
    assert all(set(row) == {"family", "gold", "answer"} and row["gold"] != row["answer"] for row in ROWS)
    pairs = [(row["gold"], row["answer"]) for row in ROWS]
    assert len(set(pairs)) == len(pairs), "duplicate pairs"
    assert set(CONTROLS) == set(families), "every family needs right answers too"


@pytest.mark.parametrize("row", ROWS, ids=[f"{r['family']}-{i}" for i, r in enumerate(ROWS)])
def test_a_wrong_but_close_answer_is_rejected(row: dict[str, str]) -> None:
    for name, wrap in WRAPPERS.items():
        decision = verify(wrap(row["answer"]), row["gold"])
        assert decision.verdict == "incorrect", (name, row, decision)


def test_the_reward_rejects_every_hostile_answer(math_reward: MathReward) -> None:
    samples = [Sample(response=WRAPPERS["boxed"](row["answer"]), ground_truth=row["gold"]) for row in ROWS]
    results = math_reward.score(samples)
    accepted = [
        (row, result.details) for row, result in zip(ROWS, results, strict=True) if result.verdict != "incorrect"
    ]
    assert accepted == []
    assert all(result.reward == 0.0 for result in results)


@pytest.mark.parametrize(
    ("family", "gold", "answer"),
    [(family, gold, answer) for family, pairs in CONTROLS.items() for gold, answer in pairs],
)
def test_a_right_answer_of_the_same_family_is_accepted(family: str, gold: str, answer: str) -> None:
    decision = verify(WRAPPERS["boxed"](answer), gold)
    assert decision.verdict == "correct", (family, gold, answer, decision)
