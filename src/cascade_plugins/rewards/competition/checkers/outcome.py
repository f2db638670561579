"""The result of checking one output."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CheckOutcome:
    """``verdict`` is ``AC``, ``WA``, ``PE`` or ``JE`` (the checker itself failed); ``score`` is the
    test's outcome in ``[0, 1]`` when the checker awards partial credit, else ``None``."""

    verdict: str
    message: str = ""
    score: float | None = None
