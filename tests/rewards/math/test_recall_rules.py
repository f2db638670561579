"""Rules for correct answers that look unlike their gold (hard-to-verify answers): each rule with
answers it accepts and near misses it must still reject."""

from __future__ import annotations

import pytest

from cascade_plugins.rewards.math import MathOptions, verify

#: (rule, gold, answer, expected verdict)
CASES = [
    # column/row vectors are tuples
    ("vector", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}", "(-7,16,5)", "correct"),
    ("vector", "(-7,16,5)", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}", "correct"),
    ("vector", r"\begin{pmatrix} 1 & 2 \end{pmatrix}", "(1, 2)", "correct"),
    ("vector", r"\begin{pmatrix} -7 \\ 16 \\ 5 \end{pmatrix}", "(-7,5,16)", "incorrect"),
    ("vector", r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", "(1,2,3,4)", "incorrect"),
    ("vector", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", r"\{1, 2\}", "incorrect"),
    # set-builder notation is its condition
    ("set_builder", r"\{x|-2<x<3\}", r"(-2,\ 3)", "correct"),
    ("set_builder", r"\Big\{x \mid 2 < x < 3\Big\}", "(2, 3)", "correct"),
    ("set_builder", r"\{x|-2<x<3\}", "[-2, 3)", "incorrect"),
    ("set_builder", r"\{x|-2<x<3\}", "(-2, 4)", "incorrect"),
    ("set_builder", r"\{y|-2<x<3\}", "(-2, 3)", "incorrect"),
    # conditions on one variable joined by "or" are a union
    ("or_union", r"a \leqslant -2 \text{ or } a = 1", r"(-\infty, -2] \cup \{1\}", "correct"),
    ("or_union", r"4 < m \leq 8 \text{ or } 10 \leq m < 12", r"(4, 8] \cup [10, 12)", "correct"),
    ("or_union", r"a \leqslant -2 \text{ or } a = 1", r"(-\infty, -2) \cup \{1\}", "incorrect"),
    ("or_union", r"a \leqslant -2 \text{ or } a = 1", r"(-\infty, -2] \cup \{2\}", "incorrect"),
    ("or_union", r"a \leqslant -2 \text{ or } b = 1", r"(-\infty, -2] \cup \{1\}", "incorrect"),
    # \frac with one-character arguments and no braces
    ("implicit_frac", r"\frac{1+a+b+c}c", r"\dfrac{a + b + c + 1}{c}", "correct"),
    ("implicit_frac", r"\frac ab", r"\frac{a}{b}", "correct"),
    ("implicit_frac", r"\frac{1+a+b+c}c", r"\dfrac{a + b + c + 1}{b}", "incorrect"),
    ("implicit_frac", r"\frac ab", r"\frac{b}{a}", "incorrect"),
    # an angle in degrees against the same angle in radians
    ("degrees_radians", r"\dfrac{3\pi}{4}", r"135^\circ", "correct"),
    ("degrees_radians", r"135^\circ", r"\frac{3\pi}{4}", "correct"),
    ("degrees_radians", r"C = \frac{2\pi}{3}", r"120^\circ", "correct"),
    ("degrees_radians", r"90^\circ", "90^", "correct"),
    ("degrees_radians", r"\dfrac{3\pi}{4}", r"145^\circ", "incorrect"),
    ("degrees_radians", r"\dfrac{3\pi}{4}", "135", "incorrect"),
    ("degrees_radians", r"90^\circ", "80^", "incorrect"),
    # ordinals, labels and words around numbers
    ("number_words", "15th Day", "15", "correct"),
    ("number_words", r"12^{\mathrm{th}}", "12", "correct"),
    ("number_words", "7,4", r"7 \text{ stuffed goats and } 4 \text{ toy helicopters}", "correct"),
    ("number_words", "1,3", "Minimum: 1, Maximum: 3", "correct"),
    ("number_words", "15th Day", "16", "incorrect"),
    ("number_words", "7,4", r"4 \text{ stuffed goats and } 8 \text{ toy helicopters}", "incorrect"),
    ("number_words", "5, 3", r"5 \text{ m}, 3 \text{ cm}", "incorrect"),
    # lists of assignments and their values; a tuple equation and its assignments
    ("assignments", "16,3,1,1", "w=16, d=3, a=1, b=1", "correct"),
    ("assignments", "$f(n)=n$, $g(n)=1$", r"(f(n), g(n)) = (n, 1) \text{ for all positive integers } n", "correct"),
    ("assignments", "16,3,1,1", "w=3, d=16, a=1, b=1", "incorrect"),
    ("assignments", "$f(n)=n$, $g(n)=1$", "(f(n), g(n)) = (1, n)", "incorrect"),
    # the argument of a function's definition may have any name
    ("function_argument", "$f(z)=z$", "f(x)=x", "correct"),
    ("function_argument", "f(m) = 2m + 1007", "$f(n) = 2 n+1007$", "correct"),
    ("function_argument", "$f(z)=z$", "f(x)=2x", "incorrect"),
    ("function_argument", "$f(z)=z$", "g(x)=x", "incorrect"),
    ("function_argument", "f(x) = x + n", "f(n) = n + n", "incorrect"),
    # a universal qualifier after the answer
    ("qualifier", r"f(x) = 1 \text{ for all } x \in \mathbb{Q}_{>0}", "f(x)=1", "correct"),
    ("qualifier", r"f(x) = 1 \text{ for all } x \in \mathbb{Q}_{>0}", "f(x)=2", "incorrect"),
    # \pm inside sets, lists and tuples
    ("pm_expansion", r"\{1\pm\sqrt{5},-2\}", r"\{-2, 1+\sqrt{5}, 1-\sqrt{5}\}", "correct"),
    ("pm_expansion", r"0, \pm 1, \pm 2", r"\{-2, -1, 0, 1, 2\}", "correct"),
    (
        "pm_expansion",
        r"(\pm \sqrt{2}, 0, \pm \sqrt{2})",
        r"(\sqrt{2}, 0, \sqrt{2}), (\sqrt{2}, 0, -\sqrt{2}), "
        r"(-\sqrt{2}, 0, \sqrt{2}), (-\sqrt{2}, 0, -\sqrt{2})",
        "correct",
    ),
    ("pm_expansion", r"\{1\pm\sqrt{5},-2\}", r"\{-2, 1+\sqrt{5}\}", "incorrect"),
    ("pm_expansion", r"0, \pm 1, \pm 2", r"\{-2, 0, 1, 2\}", "incorrect"),
    (
        "pm_expansion",
        r"(\pm \sqrt{2}, 0, \pm \sqrt{2})",
        r"(\sqrt{2}, 0, \sqrt{2}), (-\sqrt{2}, 0, -\sqrt{2})",
        "incorrect",
    ),
    # unicode symbols and spaced \frac
    (
        "unicode",
        r"[kπ- \frac {5π}{12},kπ+ \frac {π}{12}]",
        r"\left[ -\frac{5\pi}{12} + k\pi, \frac{\pi}{12} + k\pi \right]",
        "correct",
    ),
    ("unicode", "x＞2", "x > 2", "correct"),
    (
        "unicode",
        r"[kπ- \frac {5π}{12},kπ+ \frac {π}{12}]",
        r"\left( -\frac{5\pi}{12} + k\pi, \frac{\pi}{12} + k\pi \right)",
        "incorrect",
    ),
    ("unicode", "x＞2", "x < 2", "incorrect"),
    # ^( ... ) exponents
    ("paren_exponent", "2 × 10^(-10)", r"2 \times 10^{-10}", "correct"),
    ("paren_exponent", "2 × 10^(-10)", r"2 \times 10^{-11}", "incorrect"),
    ("paren_exponent", "e^(x+1)", "e^{x+1}", "correct"),
    ("paren_exponent", "e^(x+1)", "e^{x}+1", "incorrect"),
    # control characters from backslashes read as string escapes (\f, \t)
    ("escaped_command", "[\x0crac{1}{e^2}, 1)", r"\left[\frac{1}{e^{2}}, 1\right)", "correct"),
    ("escaped_command", "[\x0crac{1}{e^2}, 1)", r"\left[\frac{1}{e^{3}}, 1\right)", "incorrect"),
    # a gold rounded to its decimal places accepts the exact value it rounds
    ("gold_rounding", "30.52", r"\dfrac{1587}{52}", "correct"),
    ("gold_rounding", "41.49", r"17 + 10\sqrt{6}", "correct"),
    ("gold_rounding", r"41.4\%", r"\sqrt{2} - 1", "correct"),
    ("gold_rounding", "30.52", r"\dfrac{1588}{52}", "incorrect"),
    ("gold_rounding", "41.494", r"17 + 10\sqrt{6}", "incorrect"),  # truncated, not rounded
    ("gold_rounding", "3", r"\frac{17}{6}", "incorrect"),  # an integer gold is exact
    ("gold_rounding", "0.125", "0.12", "incorrect"),  # two decimals stay exact
    ("gold_rounding", r"\frac{1}{3}", "0.33", "incorrect"),  # only the gold's rounding counts
]


@pytest.mark.parametrize(
    ("rule", "gold", "answer", "expected"), CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)]
)
def test_rule(rule: str, gold: str, answer: str, expected: str) -> None:
    decision = verify(f"The answer is $\\boxed{{{answer}}}$.", gold)
    assert decision.verdict == expected, (rule, gold, answer, decision)


def test_every_rule_has_a_positive_and_a_near_miss() -> None:
    verdicts: dict[str, set[str]] = {}
    for rule, _gold, _answer, expected in CASES:
        verdicts.setdefault(rule, set()).add(expected)
    assert all(v == {"correct", "incorrect"} for v in verdicts.values()), verdicts


def test_gold_interval_accepts_an_inequality_only_when_allowed() -> None:
    # Math-Verify's allow_set_relation_comp: off by default (a labelled verdict), on for recall
    assert verify(r"\boxed{3 < \lambda \leq 4}", "(3,4]").verdict == "incorrect"
    allowed = MathOptions(allow_set_relation_comp=True)
    assert verify(r"\boxed{3 < \lambda \leq 4}", "(3,4]", allowed).verdict == "correct"
    assert verify(r"\boxed{3 \leq \lambda \leq 4}", "(3,4]", allowed).verdict == "incorrect"
