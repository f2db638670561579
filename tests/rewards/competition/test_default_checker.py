"""Kattis' default output validator, case by case (problemtools semantics)."""

from __future__ import annotations

import pytest

from cascade_plugins.rewards.competition.checkers import default_check, parse_validator_flags


def check(answer: str, output: str, flags: str = "") -> str:
    return default_check(answer.encode(), output.encode(), parse_validator_flags(flags.split())).verdict


@pytest.mark.parametrize("output", ["A B", " A  B \t\n", " A B", "A B ", "a b", "A\nB"])
def test_space_and_case_lenient_by_default(output: str) -> None:
    assert check("A B\n", output) == "AC"


@pytest.mark.parametrize("output", ["A B X", "X A B", "A", "", "AB", "A B\n\n\n X"])
def test_token_mismatches_are_wrong_answers(output: str) -> None:
    assert check("A B\n", output) == "WA"


def test_case_sensitive_flag() -> None:
    assert check("Yes", "yes", "case_sensitive") == "WA"
    assert check("Yes", "Yes", "case_sensitive") == "AC"


@pytest.mark.parametrize(
    ("output", "verdict"),
    [("A B\n", "AC"), ("A  B\n", "WA"), ("A B", "WA"), ("A B\n\n", "WA"), (" A B\n", "WA"), ("A\tB\n", "WA")],
)
def test_space_change_sensitive(output: str, verdict: str) -> None:
    assert check("A B\n", output, "space_change_sensitive") == verdict


def test_empty_answer_accepts_only_white_space() -> None:
    assert check("", " \n\t") == "AC"
    assert check("", "0") == "WA"
    assert check("", "", "space_change_sensitive") == "AC"
    assert check("", "\n", "space_change_sensitive") == "WA"


@pytest.mark.parametrize(
    ("answer", "output", "flags", "verdict"),
    [
        ("1000", "1e3", "", "WA"),  # without a tolerance, numbers are strings
        ("1000", "1e3", "float_tolerance 1e-9", "AC"),
        ("1000", "1000.0000001", "float_relative_tolerance 1e-9", "AC"),
        ("1000", "1000.01", "float_relative_tolerance 1e-9", "WA"),
        ("1000", "1000.01", "float_absolute_tolerance 0.1", "AC"),
        ("0", "1e-7", "float_tolerance 1e-6", "AC"),  # absolute part saves answers near zero
        ("0", "1e-5", "float_relative_tolerance 1e-6", "WA"),
        ("1.5", "nan", "float_tolerance 1e-6", "WA"),
        ("1.5", "NaN", "float_tolerance 1e300", "WA"),
        ("1.5", "inf", "float_tolerance 1e300", "WA"),
        ("1.5", "1e999", "float_tolerance 1e300", "WA"),  # overflows to infinity
        ("1.5", "abc", "float_tolerance 1e-6", "WA"),
        ("1.5", "0x1.8p0", "float_tolerance 1e-6", "AC"),  # strtod accepts hexadecimal floats
        ("abc", "ABC", "float_tolerance 1e-6", "AC"),  # non-numbers still compare as strings
        ("1 2 3", "1 2", "float_tolerance 1e-6", "WA"),
    ],
)
def test_float_tolerance(answer: str, output: str, flags: str, verdict: str) -> None:
    assert check(answer, output, flags) == verdict


@pytest.mark.parametrize(
    "flags", ["float_tolerance", "float_tolerance abc", "float_tolerance nan", "unknown_flag", "case_sensitiv"]
)
def test_bad_flags_raise(flags: str) -> None:
    with pytest.raises(ValueError, match="flag"):
        parse_validator_flags(flags.split())


def test_float_tolerance_sets_both() -> None:
    options = parse_validator_flags(["float_tolerance", "1e-4"])
    assert options.float_absolute_tolerance == options.float_relative_tolerance == 1e-4
    assert not parse_validator_flags([]).use_floats


def test_messages_name_the_token() -> None:
    outcome = default_check(b"1 2 3", b"1 5 3")
    assert outcome.verdict == "WA" and "token 2" in outcome.message
