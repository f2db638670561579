"""Output comparison rules."""

from __future__ import annotations

import pytest

from cascade_plugins.rewards.code.compare import outputs_match, tokens_match, values_match


@pytest.mark.parametrize(
    ("got", "expected", "mode", "match"),
    [
        ("1 2\n3\n", "1 2 3", "tokens", True),
        ("1  2 \n\n", "1 2\n", "lines", True),
        ("1 2 3\n", "1 2\n3\n", "lines", False),
        ("1 2\r\n", "1 2\n", "exact", True),
        ("1 2 \n", "1 2\n", "exact", False),
        ("YES", "yes", "tokens", False),
        ("1 2", "1 2 3", "tokens", False),
        ("", "", "tokens", True),
    ],
)
def test_outputs_match_modes(got, expected, mode, match):
    assert outputs_match(got, expected, mode) is match


def test_numbers_compare_by_value_and_tolerance():
    assert tokens_match("1.0", "1.00", None)
    assert not tokens_match("0.333", "0.3333", None)
    assert tokens_match("0.333333", "0.333334", 1e-5)
    assert tokens_match("1000000.5", "1000000.0", 1e-6)  # relative above 1
    assert not tokens_match("nan", "0", 1.0)
    assert not tokens_match("abc", "abd", 1.0)


def test_values_match_is_structural():
    assert values_match([0, 1], [0, 1])
    assert not values_match([1, 0], [0, 1])
    assert values_match({"a": [1.0]}, {"a": [1]})
    assert values_match(0.1 + 0.2, 0.3, 1e-9)
    assert not values_match(0.1 + 0.2, 0.3)
    assert not values_match(True, 1.5)
    assert not values_match("1", 1)
    assert not values_match([1, 2], [1, 2, 3])


@pytest.mark.parametrize(
    "got",
    ["1.2e1", "1_2", "+012", "+12", "012", "12.0", "١٢", "１２", "12.", "0x0c", "1.2E+1", "12e0"],
)
@pytest.mark.parametrize("tolerance", [None, 1e-6])
def test_an_expected_integer_takes_only_the_integer(got, tolerance):
    assert not tokens_match(got, "12", tolerance)
    assert not outputs_match(f"{got}\n", "12\n", "tokens", tolerance)
    assert not outputs_match(f"1 {got}\n", "1 12\n", "lines", tolerance)


def test_integers_compare_as_integers():
    assert tokens_match("12", "12", None)
    assert tokens_match("-7", "-7", None)
    assert tokens_match("7", "007", None)  # a non-canonical expected integer takes the canonical form
    assert tokens_match("0", "-0", None)
    assert not tokens_match("-0", "0", None)
    big = "9" * 5000  # beyond int()'s 4300 digits
    assert tokens_match(big, big, None) and not tokens_match(big + "8", big + "9", None)
    assert not tokens_match("12", "13", 1.0)  # no tolerance for integers


def test_the_tolerance_applies_where_a_float_is_expected():
    assert tokens_match("0.5", "0.50", None)
    assert tokens_match("5e-1", "0.50", None)
    assert tokens_match("0.00001", "1e-05", None)
    assert tokens_match("12", "12.0", None)  # a printed integer may match an expected float
    assert tokens_match("0.3333333", "0.33333334", 1e-6)
    assert not tokens_match("0.3333333", "0.33333334", None)
    assert not tokens_match("١.٥", "1.5", None)
    assert not tokens_match("1_0.5", "10.5", 1.0)
    assert not tokens_match("+1.5", "1.5", None)
    assert not tokens_match("inf", "1.5", 1.0) and not tokens_match("nan", "1.5", 1.0)


def test_words_must_be_identical():
    assert tokens_match("YES", "YES", None) and not tokens_match("yes", "YES", None)
    assert not tokens_match("1e3", "1000x", None)


def test_values_match_uses_the_tolerance_only_for_expected_floats():
    assert values_match(0.30000001, 0.3, 1e-6)
    assert not values_match(12.0000001, 12, 1e-6)
    assert values_match(12.0, 12)  # equal values still match (as LiveCodeBench compares them)
