"""The rules that keep wrong answers out, one by one: the text key, letter case, the identity test,
exact constants, the log law, units."""

from __future__ import annotations

import pytest
import sympy

from cascade_plugins.rewards.math import verify
from cascade_plugins.rewards.math.normalize import canonical_text, normalize_answer
from cascade_plugins.rewards.math.symbolic import _sample_points, expressions_equal, to_sympy

# -- the text key -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("x^{2}", "x^2"),
        (r"\frac{1}{2}", r"\frac12"),
        (r"\frac{1}{2}x", r"\frac12 x"),
        ("{x+1}", "x+1"),
        ("{{x}}", "x"),
        ("2 ^ { n } + 1", "2^n+1"),
        (r"1\,000", "1000"),
    ],
)
def test_text_key_ignores_spacing_and_braces_around_one_token(a: str, b: str) -> None:
    assert canonical_text(a) == canonical_text(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2^{n}+1", "2^{n+1}"),
        (r"\frac{1}{2x}", r"\frac{1}{2}x"),
        (r"\frac{12}{3}", r"\frac{1}{23}"),
        ("x^{2y}", "x^{2}y"),
        ("2^{10}", "2^{1}0"),
        (r"\pi x", r"\pix"),  # a space ends a command name
        ("X", "x"),
        (r"\Delta", r"\delta"),
    ],
)
def test_text_key_keeps_braces_that_group_and_letter_case(a: str, b: str) -> None:
    assert canonical_text(a) != canonical_text(b)


def test_letter_case_is_folded_only_for_words() -> None:
    assert canonical_text("Yes", fold_case=True) == canonical_text("yes", fold_case=True)
    assert canonical_text("Yes") != canonical_text("yes")
    assert verify(r"\boxed{Yes}", r"\text{yes}").verdict == "correct"
    assert verify(r"\boxed{EVELYN}", "Evelyn").verdict == "correct"
    assert verify(r"\boxed{x}", "X").verdict == "incorrect"
    assert verify(r"\boxed{2x+y}", "2X+y").verdict == "incorrect"
    assert verify(r"\boxed{2X+y}", "2X+y").verdict == "correct"


# -- the identity test ----------------------------------------------------------------------------------------


def test_sample_points_cover_every_sign_pattern_and_several_magnitudes() -> None:
    x, y, z = sympy.symbols("x y z")
    points = _sample_points([x, y, z])
    signs = {tuple(point[s] > 0 for s in (x, y, z)) for point in points}
    assert len(signs) == 8
    magnitudes = sorted(abs(point[x]) for point in points)
    assert magnitudes[0] < 1 and magnitudes[-1] > 10
    assert _sample_points([x, y, z]) == points  # fixed: the same verdict every time


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("x", "|x|", False),
        (r"\ln x", r"\ln|x|", False),
        (r"\sqrt{x^{2}}", "x", False),
        (r"\sqrt{x^{2}}", "|x|", True),  # variables are real
        (r"x\sqrt{x}", r"\sqrt{x^{3}}", True),  # same real domain (x >= 0), same values there
        (r"\ln|x|", r"\frac{1}{2}\ln(x^{2})", True),
        (r"\max(x, 3)", "3", False),  # only points above 3 tell these apart
        (r"\max(x, 50)", "50", False),
        (r"e^{ix}", r"\cos x + i\sin x", True),
        (r"e^{ix}", r"\cos x - i\sin x", False),
        ("x", r"x + 10^{-25}", False),
        ("(x+1)^{2}", "x^{2}+2x+1", True),
    ],
)
def test_identity_is_judged_as_real_functions(a: str, b: str, equal: bool) -> None:
    assert expressions_equal(to_sympy(a), to_sympy(b), 1e-6) is equal


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        (r"\ln(xy)", r"\ln x+\ln y", True),
        (r"\log(xy)", r"\log x+\log y", True),
        (r"\log_{2}(xy)", r"\log_{2} x+\log_{2} y", True),
        (r"\log(xy)", r"\ln x+\ln y", False),  # base 10 is not base e
        (r"\ln|xy|", r"\ln x+\ln y", False),  # an absolute value stays inside its logarithm
        (r"\ln(x^{2})", r"2\ln x", False),  # a power is not a product: ln(x^2) = 2 ln|x|
    ],
)
def test_log_of_a_product_is_the_sum_of_the_logs(a: str, b: str, equal: bool) -> None:
    assert expressions_equal(to_sympy(a), to_sympy(b), 1e-6) is equal


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("2^{100}", "2^{100}+1", False),  # 31 digits: equal in double precision, not in fact
        (r"\frac{1}{2^{99}}", r"\frac{1}{2^{100}}", False),  # both below the old absolute epsilon
        (r"\frac{1}{2^{99}}", "2^{-99}", True),
        (r"\cos\frac{\pi}{7}+\cos\frac{3\pi}{7}+\cos\frac{5\pi}{7}", r"\frac{1}{2}", True),
        (r"\sqrt{2}\cdot 10^{30}", r"\sqrt{2\cdot 10^{60}}", True),
        (r"\tan\frac{\pi}{12}", r"2-\sqrt{3}", True),
    ],
)
def test_constants_are_equal_only_when_their_difference_vanishes(a: str, b: str, equal: bool) -> None:
    assert expressions_equal(to_sympy(a), to_sympy(b), 1e-6) is equal


def test_capital_gamma_is_a_letter_not_eulers_constant() -> None:
    assert expressions_equal(to_sympy(r"\Gamma"), to_sympy(r"\gamma"), 1e-6) is False
    assert expressions_equal(to_sympy(r"\Gamma(5)"), to_sympy("24"), 1e-6) is True


# -- units ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "unit"),
    [
        (r"15\text{ cm}^2", "15", "centimeter^2"),
        ("15 meters", "15", "meter^1"),
        ("12 square feet", "12", "foot^2"),
        (r"3\text{ hrs}", "3", "hour^1"),
        ("5 apples", "5", None),  # not a known unit: removed, never compared
        (r"0.06 \text{ yuan}", "0.06", None),
    ],
)
def test_trailing_units_are_recognised(raw: str, text: str, unit: str | None) -> None:
    normalized = normalize_answer(raw)
    assert (normalized.text, normalized.unit) == (text, unit)


def test_units_decide_only_when_both_answers_name_one() -> None:
    assert verify(r"\boxed{5\text{ cm}}", r"5\text{ m}").verdict == "incorrect"
    assert verify(r"\boxed{5\text{ cm}}", r"5\text{ m}").method == "unit"
    assert verify(r"\boxed{5 \text{ meters}}", r"5\text{ m}").verdict == "correct"
    assert verify(r"\boxed{5}", r"5\text{ m}").verdict == "correct"
    assert verify(r"\boxed{5 \text{ apples}}", "5 pears").verdict == "correct"
