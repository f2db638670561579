"""The result of checking one output."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """``verdict`` is ``AC``, ``WA``, ``PE`` or ``JE`` (the checker itself failed); ``score`` is the
    points the checker awarded (testlib points, Kattis ``score.txt``), else ``None``;
    ``multiplier`` a Kattis ``score_multiplier.txt``: the share of the test's maximum score."""

    verdict: str
    message: str = ""
    score: float | None = None
    multiplier: float | None = None
