"""Each rule of the verifier on its own: extraction, numbers, normalization, screen, structure, options."""

from __future__ import annotations

from fractions import Fraction

import pytest

from cascade_plugins.rewards.math.extract import extract_answer, extract_boxed, extract_gold, strip_think
from cascade_plugins.rewards.math.normalize import normalize_answer
from cascade_plugins.rewards.math.numbers import PlainNumber, numbers_match, parse_plain_number
from cascade_plugins.rewards.math.options import (
    EXTRACTORS,
    MathOptions,
    OptionsError,
    merge_sample_options,
    validate_options,
)
from cascade_plugins.rewards.math.screen import screen_expression
from cascade_plugins.rewards.math.structure import Interval, Relation, Seq, parse_structure

# -- extraction ---------------------------------------------------------------------------------------


def test_strip_think() -> None:
    assert strip_think("<think>a</think> b") == " b"
    assert strip_think("<think>a</think>x</think>y") == "y"
    assert strip_think("<think>never closed") is None
    assert strip_think("plain") == "plain"


@pytest.mark.parametrize(
    ("text", "answer", "multiple"),
    [
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}", False),
        (r"\boxed{a{b{c}}d}", "a{b{c}}d", False),
        (r"first \boxed{1} then much later text = 3 and \boxed{2}", "2", False),
        (r"\boxed{840}\boxed{840}", "840", False),
        (r"$\boxed{-2}$ and $\boxed{1}$", "-2, 1", True),
        (r"\boxed{\boxed{7}}", r"\boxed{7}", False),
        (r"\boxed{\{1,2\}}", r"\{1,2\}", False),
        (r"\fbox{5}", "5", False),
        (r"\(y_1 = \boxed{2x}\) and \(y_2 = \boxed{x}\)", "y_{1} = 2x, y_{2} = x", True),
        (r"$x_{1} = \boxed{3}$, $x_{2} = \boxed{-1}$", "x_{1} = 3, x_{2} = -1", True),
        (r"$a_1 = \boxed{3}$. Then $a_2 = \boxed{5}$", "5", False),
        (r"$x_1 = \boxed{3}$ and $y_2 = \boxed{5}$", "5", False),
    ],
)
def test_extract_boxed(text: str, answer: str, multiple: bool) -> None:
    found = extract_boxed(text)
    assert found is not None
    assert (found.answer, found.multiple) == (answer, multiple)


def test_unclosed_box_is_no_answer() -> None:
    assert extract_answer(r"so \boxed{12", EXTRACTORS) is None


def test_extractors_option_restricts_rules() -> None:
    assert extract_answer("Answer: 5", ("boxed",)) is None
    found = extract_answer("Answer: 5", ("answer_line",))
    assert found is not None and found.answer == "5"


def test_the_explicit_answer_written_last_wins() -> None:
    found = extract_answer(r"\boxed{255} ... Final Answer: The final answer is $10,455$.", EXTRACTORS)
    assert found is not None and (found.answer, found.method) == ("10,455", "final_answer")


def test_unknown_extractor_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown extraction rule"):
        extract_answer("x", ("bogus",))


def test_strict_false_matches_expressions_up_to_renamed_variables() -> None:
    from cascade_plugins.rewards.math import verify

    loose = MathOptions(strict=False)
    assert verify("$f(y)$", "$f(x)$", loose).verdict == "correct"
    assert verify("$b^2 + a$", "$x^2 + y$", loose).verdict == "correct"
    assert verify("$a^3 + b$", "$x^2 + y$", loose).verdict == "incorrect"
    assert verify("$1 + \\frac{1}{e}$", "$1 - \\frac{1}{e}$", loose).verdict == "incorrect"
    assert verify("$f(y)$", "$f(x)$").verdict == "incorrect"  # strict by default


def test_gold_from_a_worked_solution() -> None:
    assert extract_gold(r"so the total is $\boxed{14{,}916}$.") == "14{,}916"
    assert extract_gold(" 42 ") == "42"


# -- numbers -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "places"),
    [
        ("42", Fraction(42), None),
        ("-0.50", Fraction(-1, 2), 2),
        (".4", Fraction(2, 5), 1),
        ("1,234,567", Fraction(1234567), None),
        ("1 000", Fraction(1000), None),
        ("2,74", Fraction(274, 100), 2),
        ("0,111", Fraction(111, 1000), 3),
        ("1.5e3", Fraction(1500), 0),
        ("3 \\times 10^{-2}", Fraction(3, 100), 2),
        ("3/4", Fraction(3, 4), None),
        ("\\frac{3}{4}", Fraction(3, 4), None),
        ("-\\frac34", Fraction(-3, 4), None),
        ("\\frac{-3}{4}", Fraction(-3, 4), None),
        ("2\\frac{1}{2}", Fraction(5, 2), None),
    ],
)
def test_parse_plain_number(text: str, value: Fraction, places: int | None) -> None:
    number = parse_plain_number(text)
    assert number is not None
    assert (number.value, number.decimal_places) == (value, places)


@pytest.mark.parametrize("text", ["x", "1/0", "2x", "\\sqrt{2}", "1e99999", "", "1,2,3"])
def test_not_plain_numbers(text: str) -> None:
    assert parse_plain_number(text) is None


def test_huge_integers_compare_as_digits() -> None:
    a = parse_plain_number("9" * 5000)
    b = parse_plain_number("0" + "9" * 5000)
    c = parse_plain_number("9" * 4999 + "8")
    assert a is not None and b is not None and c is not None
    assert numbers_match(a, b, 1e-6)
    assert not numbers_match(a, c, 1e-6)


def test_tolerance_applies_only_to_decimal_approximations() -> None:
    third = PlainNumber(Fraction(1, 3))
    assert numbers_match(third, PlainNumber(Fraction(333333, 10**6), 6), 1e-6)
    assert not numbers_match(third, PlainNumber(Fraction(33, 100), 2), 1e-6)
    # two decimals, or an integer, compare exactly
    assert not numbers_match(PlainNumber(Fraction(12345678, 1000), 3), PlainNumber(Fraction(12345679, 1000), 3), 1e-6)
    assert not numbers_match(PlainNumber(Fraction(5)), PlainNumber(Fraction(49999999, 10**7), 7), 1e-6)


# -- normalization -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text", "percent", "degrees"),
    [
        (r"$\left( \frac{1}{3} \right)$", r"( \frac{1}{3} )", False, False),
        (r"\dfrac{1}{2}", r"\frac{1}{2}", False, False),
        (r"28\%", "28", True, False),
        ("28 percent", "28", True, False),
        (r"90^\circ", "90", False, True),
        ("45°", "45", False, True),
        (r"15\text{ cm}^2", "15", False, False),
        ("5 apples", "5", False, False),
        (r"\text{Evelyn}", "Evelyn", False, False),
        (r"14{,}916", "14916", False, False),
        (r"11,\! 111", "11111", False, False),
        (r"\frac13", r"\frac{1}{3}", False, False),
        (r"\sqrt3", r"\sqrt{3}", False, False),
        ("x ≤ 3", r"x \leq 3", False, False),
        (r"\$5.50", "5.50", False, False),
        (r"\\frac{1}{2}", r"\frac{1}{2}", False, False),
    ],
)
def test_normalize_answer(raw: str, text: str, percent: bool, degrees: bool) -> None:
    normalized = normalize_answer(raw)
    assert (normalized.text, normalized.percent, normalized.degrees) == (text, percent, degrees)


# -- screen ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "9^{9^{9^9}}",
        "10^{10^{10}}",
        r"\dfrac{5^{(5^{(5^{(5^5)})} - 4)} - 5}{16}",
        "2^{100000}",
        "100000!",
        "(2)^{10^{7}}",
        "1" * 500,
        "1.5e99999",
        "{" * 60 + "}" * 60,
        "x" * 2000,
    ],
)
def test_screen_refuses_explosive_answers(text: str) -> None:
    assert screen_expression(text) is not None


@pytest.mark.parametrize("text", ["2^{10}", "x^{100}", "10!", "2^{1000}", r"\frac{1}{2^{99}}", "e^{i\\pi}", "(x+1)^2"])
def test_screen_accepts_reasonable_answers(text: str) -> None:
    assert screen_expression(text) is None


# -- structure -------------------------------------------------------------------------------------------------


def test_structure_keeps_points_as_tuples() -> None:
    node = parse_structure("(2, 1)")
    assert isinstance(node, Seq) and node.kind == "tuple" and len(node.items) == 2


def test_structure_of_intervals_and_relations() -> None:
    interval = parse_structure("[0, 1)")
    assert isinstance(interval, Interval) and interval.left_closed and not interval.right_closed
    inequality = parse_structure(r"-2 \leq x < 7")
    assert isinstance(inequality, Interval) and inequality.var == "x"
    equation = parse_structure("3x+4y+14=0")
    assert isinstance(equation, Relation) and equation.ops == ("=",)


def test_structure_of_lists_and_sets() -> None:
    assert isinstance(parse_structure("1, 2, and 3"), Seq)
    node = parse_structure(r"\{1, 2\}")
    assert isinstance(node, Seq) and node.kind == "set"


# -- options ---------------------------------------------------------------------------------------------------


def test_unknown_option_is_named() -> None:
    with pytest.raises(OptionsError, match="unknown option 'requir_boxed'"):
        validate_options({"requir_boxed": True})


def test_bad_option_value_is_named() -> None:
    with pytest.raises(OptionsError, match="option 'tolerance'"):
        validate_options({"tolerance": -1})
    with pytest.raises(OptionsError, match="option 'choices'"):
        validate_options({"choices": "AAB"})
    with pytest.raises(OptionsError, match="must differ"):
        validate_options({"correct_reward": 0.0})


def test_sample_overrides_are_validated() -> None:
    base = MathOptions()
    assert merge_sample_options(base, {"choices": "abcd"}).choices == "ABCD"
    with pytest.raises(OptionsError, match="cannot be set per sample"):
        merge_sample_options(base, {"workers": 3})
    with pytest.raises(OptionsError, match=r"metadata\.math"):
        merge_sample_options(base, {"tolerance": "big"})


def test_reward_range_follows_reward_values() -> None:
    assert MathOptions(correct_reward=1.0, incorrect_reward=-1.0).reward_range == (-1.0, 1.0)
