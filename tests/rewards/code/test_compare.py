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
