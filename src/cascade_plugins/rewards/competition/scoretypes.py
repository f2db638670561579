"""CMS score types (``cms/grading/scoretypes``) as pure functions of test outcomes.

An outcome is a test's score in ``[0, 1]`` (1.0 for an accepted test, 0.0 for a rejected one,
a fraction from a scoring checker). Each function returns the points a subtask earns.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

SCORE_TYPES = ("Sum", "GroupMin", "GroupMul", "GroupThreshold")


def _checked(outcomes: Sequence[float]) -> Sequence[float]:
    if not outcomes:
        raise ValueError("a subtask needs at least one test outcome")
    for outcome in outcomes:
        if not 0.0 <= outcome <= 1.0 or math.isnan(outcome):
            raise ValueError(f"test outcome {outcome!r} is outside [0, 1]")
    return outcomes


def sum_score(points_per_test: float, outcomes: Sequence[float]) -> float:
    """``Sum``: every test is worth ``points_per_test``, scaled by its outcome."""
    return points_per_test * math.fsum(_checked(outcomes))


def group_min(points: float, outcomes: Sequence[float]) -> float:
    """``GroupMin`` (the IOI standard): points x the minimum outcome of the subtask's tests."""
    return points * min(_checked(outcomes))


def group_mul(points: float, outcomes: Sequence[float]) -> float:
    """``GroupMul``: points x the product of the outcomes."""
    return points * math.prod(_checked(outcomes))


def group_threshold(points: float, outcomes: Sequence[float], threshold: float) -> float:
    """``GroupThreshold``: full points iff every outcome lies in ``(0, threshold]``.

    Here the outcome is a cost (time, error) written by the checker, and 0 is reserved for failure.
    """
    return points if all(0.0 < o <= threshold for o in _checked(outcomes)) else 0.0


def subtask_score(score_type: str, points: float, outcomes: Sequence[float], threshold: float | None = None) -> float:
    """Dispatch by CMS name; for ``Sum``, ``points`` is the points per test."""
    scorers: dict[str, Callable[[], float]] = {
        "Sum": lambda: sum_score(points, outcomes),
        "GroupMin": lambda: group_min(points, outcomes),
        "GroupMul": lambda: group_mul(points, outcomes),
        "GroupThreshold": lambda: group_threshold(points, outcomes, _need(threshold)),
    }
    try:
        scorer = scorers[score_type]
    except KeyError:
        raise ValueError(f"unknown score type {score_type!r} (known: {', '.join(SCORE_TYPES)})") from None
    return scorer()


def _need(threshold: float | None) -> float:
    if threshold is None:
        raise ValueError("GroupThreshold needs a threshold")
    return threshold


def best_per_subtask(submissions: Sequence[dict[str, float]]) -> dict[str, float]:
    """IOI 2024 rule: a task's score over several submissions takes, per subtask, the best score.

    ``submissions`` holds one ``{subtask name: points}`` dict per submission; the task score is
    ``sum(best_per_subtask(...).values())``.
    """
    best: dict[str, float] = {}
    for scores in submissions:
        for name, points in scores.items():
            best[name] = max(points, best.get(name, points))
    return best
