"""Verdict rules: ICPC first error, Kattis worst error, interactive precedence."""

from __future__ import annotations

import pytest

from cascade_plugins.rewards.competition import verdicts


def test_first_error_is_the_first_non_accepted_in_test_order() -> None:
    assert verdicts.first_error(["AC", "AC", "TLE", "WA"]) == "TLE"
    assert verdicts.first_error(["AC", "WA", "RE"]) == "WA"
    assert verdicts.first_error(["AC", "SKIPPED"]) == "AC"
    assert verdicts.first_error([]) == "AC"


def test_worst_error_uses_kattis_order() -> None:
    assert verdicts.worst_error(["WA", "TLE", "AC"]) == "TLE"
    assert verdicts.worst_error(["PE", "WA"]) == "WA"
    assert verdicts.worst_error(["OLE", "RE", "MLE"]) == "RE"
    assert verdicts.worst_error(["AC", "JE"]) == "JE"
    assert verdicts.worst_error(["SKIPPED"]) == "AC"


@pytest.mark.parametrize(
    ("sandbox", "test", "cause"),
    [
        ("OK", None, ""),
        ("TLE", "TLE", ""),
        # the package format has no memory or output limit verdict: both are run-time errors
        ("MLE", "RE", "MLE"),
        ("OLE", "RE", "OLE"),
        ("RE", "RE", ""),
        ("SANDBOX_ERROR", "JE", ""),
    ],
)
def test_from_execution_speaks_the_formats_verdicts(sandbox: str, test: str | None, cause: str) -> None:
    assert verdicts.from_execution(sandbox) == test
    assert verdicts.cause_of(sandbox) == cause


@pytest.mark.parametrize(
    ("solution", "interactor", "interactor_first", "expected"),
    [
        (None, "AC", False, "AC"),
        (None, "WA", False, "WA"),
        (None, "WA", True, "WA"),
        # a solution that hangs waiting is killed at the time limit; the starved interactor then says WA
        ("TLE", "WA", False, "TLE"),
        # the interactor rejected first; the solution then died of the closed pipe
        ("RE", "WA", True, "WA"),
        ("RE", "WA", False, "RE"),
        ("RE", "AC", True, "RE"),
        ("MLE", "WA", False, "MLE"),
        ("TLE", "JE", False, "TLE"),  # the interactor died writing to a solution already killed
        ("RE", "JE", False, "RE"),
        (None, "JE", True, "JE"),
        (None, "JE", False, "JE"),
        ("TLE", "AC", True, "TLE"),
    ],
)
def test_interactive_precedence(solution: str | None, interactor: str, interactor_first: bool, expected: str) -> None:
    assert verdicts.interactive_verdict(solution, interactor, interactor_exited_first=interactor_first) == expected
