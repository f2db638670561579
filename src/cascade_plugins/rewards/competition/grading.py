"""Turn per-test verdicts into group, subtask and problem results (pure; no program runs here).

Two scoring schemes:

- **Kattis test groups** (problemtools' default grader): each test scores ``accept_score`` or
  ``reject_score`` (or what a ``custom score`` validator wrote); a group aggregates its children
  with its ``grader_flags`` (``sum``/``avg``/``min``/``max``; ``worst_error``/``first_error``/
  ``always_accept``; ``ignore_sample``; ``accept_if_any_accepted``) and stops at the first
  rejected child when ``on_reject: break``.
- **IOI subtasks** with a CMS score type (``grading.yaml``): test outcomes in ``[0, 1]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cascade_plugins.rewards.competition import scoretypes, verdicts
from cascade_plugins.rewards.competition.package import SubtaskScoring, TestCase, TestGroup


@dataclass(frozen=True)
class TestResult:
    """The verdict of one test (``score``: what a scoring checker gave, ``None`` otherwise;
    ``multiplier``: a Kattis ``score_multiplier.txt``; ``cause``: ``MLE`` or ``OLE`` when that limit
    made the verdict ``RE``; ``passes``: runs of a multi-pass test)."""

    __test__ = False  # not a pytest test class

    name: str
    group: str
    verdict: str
    score: float | None = None
    time_s: float = 0.0
    memory_kb: int = 0
    message: str = ""
    cause: str = ""
    multiplier: float | None = None
    passes: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class GroupResult:
    """A Kattis test group or an IOI subtask, as shown per row of ``cascade judge``."""

    name: str
    verdict: str
    score: float
    max_score: float
    tests: int
    passed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_SCORE_AGGREGATORS: dict[str, Callable[[Sequence[float]], float]] = {
    "sum": math.fsum,
    "avg": lambda scores: math.fsum(scores) / len(scores),
    "min": min,
    "max": max,
}
_VERDICT_AGGREGATORS: dict[str, Callable[[Sequence[str]], str]] = {
    "worst_error": verdicts.worst_error,
    "no_errors": verdicts.worst_error,
    "first_error": verdicts.first_error,
    "always_accept": lambda _: verdicts.AC,
}


def aggregate(children: Sequence[tuple[str, float]], flags: Sequence[str]) -> tuple[str, float]:
    """problemtools' default grader: ``(verdict, score)`` of a group from its children's."""
    if not children:
        return verdicts.AC, 0.0
    score_of = _SCORE_AGGREGATORS["sum"]
    verdict_of = _VERDICT_AGGREGATORS["worst_error"]
    for flag in flags:
        score_of = _SCORE_AGGREGATORS.get(flag, score_of)
        verdict_of = _VERDICT_AGGREGATORS.get(flag, verdict_of)
    if "ignore_sample" in flags:
        children = children[-1:]
    child_verdicts = [v for v, _ in children]
    if "accept_if_any_accepted" in flags and verdicts.AC in child_verdicts:
        verdict = verdicts.AC
    else:
        verdict = verdict_of(child_verdicts)
    return verdict, score_of([s for _, s in children])


def test_score(group: TestGroup, result: TestResult) -> float:
    if result.verdict != verdicts.AC:
        return group.reject_score
    if result.score is not None:
        return result.score
    if result.multiplier is not None:
        return result.multiplier * group.accept_score
    return group.accept_score


def grade_tree(
    group: TestGroup,
    evaluate: Callable[[TestCase], TestResult],
    groups_out: list[GroupResult] | None = None,
    seen: dict[str, TestResult] | None = None,
) -> tuple[str, float]:
    """Walk ``group`` in order, calling ``evaluate`` for each test that must run; returns the
    group's ``(verdict, score)`` and appends one :class:`GroupResult` per sub-group (depth first,
    parents before children) to ``groups_out``. Tests after a rejection in an
    ``on_reject: break`` group are not evaluated."""
    seen = {} if seen is None else seen
    children: list[tuple[str, float]] = []
    stopped = False
    for item in group.items:
        if stopped:
            if isinstance(item, TestGroup) and groups_out is not None:
                _append_skipped(item, groups_out)
            continue
        if isinstance(item, TestCase):
            result = evaluate(item)
            seen[item.name] = result
            child = (result.verdict, test_score(group, result))
        else:
            position = len(groups_out) if groups_out is not None else 0
            child = grade_tree(item, evaluate, groups_out, seen)
            if groups_out is not None:
                tests = list(item.tests())
                passed = sum(1 for t in tests if t.name in seen and seen[t.name].verdict == verdicts.AC)
                row = GroupResult(item.name, child[0], child[1], max_score(item), len(tests), passed)
                groups_out.insert(position, row)
        children.append(child)
        if child[0] != verdicts.AC and group.on_reject == "break":
            stopped = True
    verdict, score = aggregate(children, group.grader_flags)
    if group.fixed_score is not None:  # 2025-09 pass-fail aggregation
        score = group.fixed_score if verdict == verdicts.AC else 0.0
    return verdict, score


def _append_skipped(group: TestGroup, groups_out: list[GroupResult]) -> None:
    for sub in group.groups():
        groups_out.append(GroupResult(sub.name, verdicts.SKIPPED, 0.0, max_score(sub), len(list(sub.tests())), 0))


def max_score(group: TestGroup) -> float:
    """The score ``group`` earns when every test is accepted (its ``range`` maximum if it has one)."""
    if group.score_range is not None:
        return group.score_range[1]
    return grade_tree(group, lambda t: TestResult(t.name, t.group, verdicts.AC))[1]


# -- IOI subtasks ----------------------------------------------------------------------------------


def test_outcome(result: TestResult | None) -> float:
    """A test's outcome in ``[0, 1]`` for CMS score types: 1 (or the checker's score) if accepted."""
    if result is None or result.verdict != verdicts.AC:
        return 0.0
    return 1.0 if result.score is None else result.score


def subtask_is_decided(scoring: SubtaskScoring, index: int, results: Mapping[str, TestResult]) -> bool:
    """True when the subtask's score can no longer rise (its remaining tests need not run)."""
    if scoring.score_type == "Sum":
        return False
    subtask = scoring.subtasks[index]
    for name in subtask.tests:
        result = results.get(name)
        if result is None:
            continue
        outcome = test_outcome(result)
        if scoring.score_type == "GroupThreshold":
            assert subtask.threshold is not None
            if not 0.0 < outcome <= subtask.threshold:
                return True
        elif outcome == 0.0:
            return True
    return False


def grade_subtasks(
    scoring: SubtaskScoring, tests: Sequence[TestCase], results: Mapping[str, TestResult]
) -> list[GroupResult]:
    """One row per subtask (``Sum``: a single row over all tests); missing tests score 0."""
    if scoring.score_type == "Sum":
        names = [t.name for t in tests]
        outcomes = [test_outcome(results.get(n)) for n in names]
        return [
            GroupResult(
                name="tests",
                verdict=_status([results.get(n) for n in names]),
                score=scoretypes.sum_score(scoring.points_per_test, outcomes),
                max_score=scoring.points_per_test * len(names),
                tests=len(names),
                passed=sum(1 for o in outcomes if o == 1.0),
            )
        ]
    rows = []
    for subtask in scoring.subtasks:
        outcomes = [test_outcome(results.get(n)) for n in subtask.tests]
        score = scoretypes.subtask_score(scoring.score_type, subtask.points, outcomes, subtask.threshold)
        rows.append(
            GroupResult(
                name=subtask.name,
                verdict=_status([results.get(n) for n in subtask.tests]),
                score=score,
                max_score=subtask.points,
                tests=len(subtask.tests),
                passed=sum(1 for n in subtask.tests if (r := results.get(n)) is not None and r.verdict == verdicts.AC),
            )
        )
    return rows


def _status(results: Sequence[TestResult | None]) -> str:
    """A subtask's status: the worst verdict among its tests (``SKIPPED`` if none ran)."""
    ran = [r.verdict for r in results if r is not None and r.verdict != verdicts.SKIPPED]
    return verdicts.worst_error(ran) if ran else verdicts.SKIPPED
