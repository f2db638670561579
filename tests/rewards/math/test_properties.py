"""Property tests: re-formatting an answer never changes the verdict."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade_plugins.rewards.math import verify

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

integers = st.integers(min_value=-(10**12), max_value=10**12)
fractions = st.builds(
    Fraction, st.integers(min_value=-999, max_value=999), st.integers(min_value=1, max_value=999)
).filter(lambda f: f.denominator != 1)


def _grouped(n: int, separator: str) -> str:
    text = f"{abs(n):,}".replace(",", separator)
    return ("-" if n < 0 else "") + text


INTEGER_FORMATS = [
    lambda n: str(n),
    lambda n: _grouped(n, ","),
    lambda n: _grouped(n, "{,}"),
    lambda n: f"{n}.0",
    lambda n: f"\\text{{{n}}}",
    lambda n: f"x = {n}",
]
FRACTION_FORMATS = [
    lambda f: f"{f.numerator}/{f.denominator}",
    lambda f: f"\\frac{{{f.numerator}}}{{{f.denominator}}}",
    lambda f: f"\\dfrac{{{f.numerator}}}{{{f.denominator}}}",
    lambda f: ("-" if f < 0 else "") + f"\\frac{{{abs(f.numerator)}}}{{{f.denominator}}}",
    lambda f: f"\\frac{{{2 * f.numerator}}}{{{2 * f.denominator}}}",
    lambda f: f"\\left( \\frac{{{f.numerator}}}{{{f.denominator}}} \\right)",
]
WRAPPERS = [
    lambda a: f"\\boxed{{{a}}}",
    lambda a: f"So the answer is $\\boxed{{{a}}}$.",
    lambda a: f"<think>Let me try 7. No.</think> The final answer is $\\boxed{{{a}}}$",
    lambda a: f"The final answer is ${a}$. I hope it is correct.",
    lambda a: f"Answer: ${a}$",
    lambda a: f"\\[\\boxed{{{a}}}\\]",
]


@SETTINGS
@given(n=integers, other=integers, fmt=st.sampled_from(INTEGER_FORMATS), wrap=st.sampled_from(WRAPPERS))
def test_integer_formatting_keeps_the_verdict(n: int, other: int, fmt, wrap) -> None:  # type: ignore[no-untyped-def]
    assert verify(wrap(fmt(n)), str(n)).verdict == "correct"
    expected = "correct" if other == n else "incorrect"
    assert verify(wrap(fmt(other)), str(n)).verdict == expected


@SETTINGS
@given(f=fractions, g=fractions, fmt=st.sampled_from(FRACTION_FORMATS), wrap=st.sampled_from(WRAPPERS))
def test_fraction_formatting_keeps_the_verdict(f: Fraction, g: Fraction, fmt, wrap) -> None:  # type: ignore[no-untyped-def]
    gold = f"\\frac{{{f.numerator}}}{{{f.denominator}}}"
    assert verify(wrap(fmt(f)), gold).verdict == "correct"
    expected = "correct" if f == g else "incorrect"
    assert verify(wrap(fmt(g)), gold).verdict == expected


@SETTINGS
@given(
    items=st.lists(st.integers(min_value=-50, max_value=50), min_size=2, max_size=5),
    spaces=st.sampled_from(["", " ", "  "]),
    left_right=st.booleans(),
    wrap=st.sampled_from(WRAPPERS),
)
def test_tuple_formatting_keeps_the_verdict(items: list[int], spaces: str, left_right: bool, wrap) -> None:  # type: ignore[no-untyped-def]
    gold = "(" + ", ".join(map(str, items)) + ")"
    body = ("," + spaces).join(map(str, items))
    pred = f"\\left({body}\\right)" if left_right else f"({body})"
    assert verify(wrap(pred), gold).verdict == "correct"
    reordered = items[1:] + items[:1]
    expected = "correct" if reordered == items else "incorrect"
    assert verify(wrap("(" + ", ".join(map(str, reordered)) + ")"), gold).verdict == expected


@settings(max_examples=15, deadline=None)
@given(
    a=st.integers(min_value=-9, max_value=9).filter(bool),
    b=st.integers(min_value=-9, max_value=9),
    c=st.integers(min_value=-9, max_value=9),
)
def test_polynomial_forms_are_equal(a: int, b: int, c: int) -> None:
    expanded = f"{a}x^2 + {a * (b + c)}x + {a * b * c}"
    factored = f"{a}(x + {b})(x + {c})"
    assert verify(f"\\boxed{{{factored}}}", expanded).verdict == "correct"
    assert verify(f"\\boxed{{{factored} + 1}}", expanded).verdict == "incorrect"
