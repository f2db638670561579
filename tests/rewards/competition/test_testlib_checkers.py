"""testlib's standard checkers: each verdict of each checker, with testlib's reading rules."""

from __future__ import annotations

import pytest

from cascade_plugins.rewards.competition.checkers import STANDARD_CHECKERS, standard_check
from cascade_plugins.rewards.competition.checkers.testlib import double_compare


def verdict(name: str, output: str, answer: str) -> str:
    return standard_check(name, output.encode(), answer.encode()).verdict


CASES = [
    # (checker, output, answer, verdict)
    ("wcmp", "hello  world\n", "hello world", "AC"),
    ("wcmp", "hello World", "hello world", "WA"),
    ("wcmp", "hello", "hello world", "WA"),
    ("wcmp", "hello world again", "hello world", "WA"),
    ("lcmp", "1  2\n3\n", "1 2\n3\n", "AC"),
    ("lcmp", "1\n2 3\n", "1 2\n3\n", "WA"),  # same tokens, different lines
    ("lcmp", "1 2\n3\n4\n", "1 2\n3\n", "PE"),  # extra information in the output file
    ("fcmp", "a b\n", "a b\n", "AC"),
    ("fcmp", "a  b\n", "a b\n", "WA"),
    ("fcmp", "a b\r\n", "a b\n", "AC"),  # CR LF line ends are one line end
    ("ncmp", "1 -2 3", "1\n-2\n3\n", "AC"),
    ("ncmp", "1 2", "1 2 3", "WA"),
    ("ncmp", "1 2 3 4", "1 2 3", "WA"),
    ("ncmp", "007", "7", "PE"),  # leading zeros are not an integer
    ("ncmp", "-0", "0", "PE"),
    ("ncmp", "+7", "7", "PE"),
    ("ncmp", "9223372036854775808", "1", "PE"),  # above int64
    ("ncmp", "1.0", "1", "PE"),
    ("uncmp", "3 1 2", "1 2 3", "AC"),
    ("uncmp", "3 1 1", "1 2 3", "WA"),
    ("uncmp", "1 2", "1 2 3", "WA"),
    ("icmp", "42", "42", "AC"),
    ("icmp", "41", "42", "WA"),
    ("icmp", "2147483648", "42", "PE"),  # above int32
    ("icmp", "42 43", "42", "PE"),  # extra information in the output file
    ("icmp", "", "42", "PE"),  # unexpected end of file
    ("hcmp", "123456789012345678901234567890", "123456789012345678901234567890", "AC"),
    ("hcmp", "123456789012345678901234567891", "123456789012345678901234567890", "WA"),
    ("hcmp", "0123", "123", "PE"),
    ("acmp", "1.0000014", "1", "AC"),
    ("acmp", "1.000002", "1", "WA"),
    ("rcmp", "2.0000014", "2", "AC"),
    ("dcmp", "1000000.5", "1000000", "AC"),  # relative error 5e-7
    ("dcmp", "1000002", "1000000", "WA"),
    ("rcmp4", "1.00009 2", "1 2", "AC"),
    ("rcmp4", "1.0002 2", "1 2", "WA"),
    ("rcmp6", "1e3", "1000", "AC"),  # the same number written two ways
    ("rcmp6", "nan", "1", "PE"),  # NaN is not a number to testlib
    ("rcmp6", "inf", "1", "PE"),
    ("rcmp6", "1e999", "1", "WA"),  # overflows to infinity, which matches no number
    ("rcmp9", "1.0000000001", "1", "AC"),
    ("rcmp9", "1.00000001", "1", "WA"),
    ("rcmp9", "1", "1 2", "PE"),  # output ended early
    ("rncmp", "1.00001", "1", "AC"),
    ("rncmp", "1.0001", "1", "WA"),
    ("yesno", "yes", "YES", "AC"),
    ("yesno", "No", "YES", "WA"),
    ("yesno", "maybe", "YES", "PE"),
    ("nyesno", "YES no yes", "yes NO YES", "AC"),
    ("nyesno", "YES yes", "yes NO", "WA"),
    ("nyesno", "YES", "yes NO", "WA"),
    ("nyesno", "YES perhaps", "yes NO", "PE"),
]


@pytest.mark.parametrize(("name", "output", "answer", "expected"), CASES)
def test_standard_checker(name: str, output: str, answer: str, expected: str) -> None:
    assert verdict(name, output, answer) == expected


def test_every_standard_checker_is_covered() -> None:
    assert {case[0] for case in CASES} == set(STANDARD_CHECKERS)


@pytest.mark.parametrize(("name", "answer"), [("icmp", "abc"), ("yesno", "perhaps"), ("hcmp", "12 13")])
def test_a_bad_answer_file_is_a_judge_error(name: str, answer: str) -> None:
    outcome = standard_check(name, b"1", answer.encode())
    assert outcome.verdict == "JE"
    assert "answer" in outcome.message


def test_unknown_checker_name() -> None:
    with pytest.raises(ValueError, match="unknown standard checker 'wcmpp'"):
        standard_check("wcmpp", b"", b"")


def test_double_compare_matches_testlib() -> None:
    assert double_compare(float("nan"), float("nan"), 1e-6)
    assert double_compare(float("inf"), float("inf"), 1e-6)
    assert not double_compare(float("inf"), float("-inf"), 1e-6)
    assert not double_compare(1.0, float("nan"), 1e-6)
    assert double_compare(-1e9, -1e9 * (1 + 5e-7), 1e-6)
    assert not double_compare(-1e9, -1e9 * (1 + 5e-6), 1e-6)
