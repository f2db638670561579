"""Verdict vocabulary and the rules that combine verdicts.

Per test: ``AC``, ``WA``, ``PE``, ``TLE``, ``MLE``, ``RE``, ``OLE`` (plus ``JE`` when the judge
itself failed, e.g. a checker crashed, and ``SKIPPED`` for tests not run after an early stop).
Per submission: ``CE`` when compilation fails.
"""

from __future__ import annotations

from collections.abc import Iterable

AC = "AC"
WA = "WA"
PE = "PE"
TLE = "TLE"
MLE = "MLE"
RE = "RE"
OLE = "OLE"
CE = "CE"
JE = "JE"
SKIPPED = "SKIPPED"

TEST_VERDICTS: tuple[str, ...] = (AC, WA, PE, TLE, MLE, RE, OLE, JE, SKIPPED)

#: Kattis' default grader order, worst first (``worst_error``); ``RTE`` is spelled ``RE`` here.
WORST_FIRST: tuple[str, ...] = (JE, RE, MLE, TLE, OLE, WA, PE, AC)

#: Sandbox verdicts that end a test before any checker runs, as the format's verdicts.
_EXECUTION_VERDICTS = {"TLE": TLE, "MLE": RE, "RE": RE, "OLE": RE, "CE": CE, "SKIPPED": SKIPPED}
#: the limits the format folds into ``RE``
LIMIT_CAUSES = (MLE, OLE)


def from_execution(sandbox_verdict: str) -> str | None:
    """Map a sandbox verdict to a test verdict; ``None`` means the program ran fine (check its output).

    A memory or output limit is ``RE``, as the package format has it (see :func:`cause_of`)."""
    if sandbox_verdict == "OK":
        return None
    return _EXECUTION_VERDICTS.get(sandbox_verdict, JE)


def cause_of(sandbox_verdict: str) -> str:
    """``MLE`` / ``OLE`` when that limit stopped the run (its verdict is then ``RE``), else ``""``."""
    return sandbox_verdict if sandbox_verdict in LIMIT_CAUSES else ""


def first_error(verdicts: Iterable[str]) -> str:
    """ICPC rule: the first verdict in test order that is not ``AC`` (skipped tests do not count)."""
    for verdict in verdicts:
        if verdict not in (AC, SKIPPED):
            return verdict
    return AC


def worst_error(verdicts: Iterable[str]) -> str:
    """Kattis ``worst_error``: the worst verdict by ``JE < RE < MLE < TLE < OLE < WA < PE < AC``."""
    ranked = [v for v in verdicts if v != SKIPPED]
    if not ranked:
        return AC
    return min(ranked, key=WORST_FIRST.index)


def interactive_verdict(solution: str | None, interactor: str, *, interactor_exited_first: bool) -> str:
    """The verdict of one interactive run.

    ``solution`` is the solution's execution verdict (``None`` when it exited normally),
    ``interactor`` the interactor's verdict (``AC``, ``WA``, or ``JE`` when it crashed or used a
    bad exit code). Rules, in order:

    1. the interactor ended first with ``WA`` or ``JE`` -> that verdict (the solution is then
       killed, and what happens to it afterwards, such as a broken pipe, is not its fault);
    2. the solution failed (``TLE``, ``MLE``, ``RE``, ``OLE``) -> that failure; in particular a
       solution that hangs waiting for input is ``TLE``, not the ``WA`` the starved interactor
       reports afterwards, and an interactor that dies writing to a crashed solution is no ``JE``;
    3. otherwise the interactor's verdict.
    """
    if interactor_exited_first and interactor in (WA, JE):
        return interactor
    if solution is not None:
        return solution
    return interactor
