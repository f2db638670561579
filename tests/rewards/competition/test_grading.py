"""Group and subtask grading, with verdicts given directly (no program runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_plugins.rewards.competition.grading import (
    GroupResult,
    TestResult,
    aggregate,
    grade_subtasks,
    grade_tree,
    max_score,
)
from cascade_plugins.rewards.competition.package import Subtask, SubtaskScoring, TestCase, TestGroup, load_problem

PROBLEMS = Path(__file__).parent / "problems"


@pytest.mark.parametrize(
    ("children", "flags", "expected"),
    [
        ([("AC", 1), ("AC", 1)], (), ("AC", 2)),
        ([("AC", 1), ("WA", 0), ("TLE", 0)], (), ("TLE", 1)),  # worst_error by default
        ([("AC", 1), ("WA", 0), ("TLE", 0)], ("first_error",), ("WA", 1)),
        ([("AC", 1), ("WA", 0)], ("always_accept",), ("AC", 1)),
        ([("AC", 30), ("AC", 30)], ("min",), ("AC", 30)),
        ([("AC", 30), ("WA", 0)], ("min",), ("WA", 0)),
        ([("AC", 2), ("AC", 4)], ("avg",), ("AC", 3)),
        ([("AC", 2), ("AC", 4)], ("max",), ("AC", 4)),
        ([("WA", 0), ("AC", 70)], ("ignore_sample",), ("AC", 70)),
        ([("WA", 0), ("AC", 1)], ("accept_if_any_accepted",), ("AC", 1)),
        ([], (), ("AC", 0)),
    ],
)
def test_default_grader(children: list[tuple[str, float]], flags: tuple[str, ...], expected: tuple[str, float]) -> None:
    assert aggregate(children, flags) == expected


def _fake(verdicts: dict[str, str]):  # type: ignore[no-untyped-def]
    calls: list[str] = []

    def evaluate(test: TestCase) -> TestResult:
        calls.append(test.name)
        return TestResult(test.name, test.group, verdicts.get(test.name, "AC"))

    return evaluate, calls


def test_pass_fail_tree_stops_at_the_first_rejection() -> None:
    package = load_problem(PROBLEMS / "sum")
    evaluate, calls = _fake({"secret/large/1": "WA"})
    groups: list[GroupResult] = []
    verdict, _ = grade_tree(package.data, evaluate, groups)
    assert verdict == "WA"
    assert calls == ["sample/1", "secret/large/1"]  # on_reject: break
    rows = {g.name: g for g in groups}
    assert [g.name for g in groups] == ["sample", "secret", "secret/large", "secret/small"]
    assert rows["secret/small"].verdict == "SKIPPED"
    assert (rows["sample"].verdict, rows["sample"].passed, rows["sample"].tests) == ("AC", 1, 1)


def test_kattis_scoring_groups() -> None:
    package = load_problem(PROBLEMS / "divisors")
    assert max_score(package.data) == 100  # samples ignored; 30 + 70
    evaluate, calls = _fake({"secret/2-large/1": "TLE"})
    groups: list[GroupResult] = []
    verdict, score = grade_tree(package.data, evaluate, groups)
    assert score == 30
    assert verdict == "TLE"  # the root keeps only secret's verdict (ignore_sample), its worst error
    rows = {g.name: g for g in groups}
    assert rows["secret"].verdict == "TLE"
    assert (rows["secret/2-large"].score, rows["secret/2-large"].max_score) == (0, 70)
    # on_reject: break inside the large group, continue elsewhere
    assert "secret/2-large/2" not in calls and "secret/1-small/3" in calls


def test_failed_sample_does_not_cost_points_when_ignored() -> None:
    package = load_problem(PROBLEMS / "divisors")
    evaluate, _ = _fake({"sample/1": "WA"})
    assert grade_tree(package.data, evaluate)[1] == 100


def _tests(*names: str) -> list[TestCase]:
    return [TestCase(n, Path(n + ".in"), Path(n + ".ans"), "secret") for n in names]


def test_group_min_subtasks() -> None:
    scoring = SubtaskScoring("GroupMin", (Subtask("a", 30, ("t1", "t2")), Subtask("b", 70, ("t2", "t3"))))
    results = {
        "t1": TestResult("t1", "secret", "AC"),
        "t2": TestResult("t2", "secret", "AC"),
        "t3": TestResult("t3", "secret", "WA"),
    }
    rows = grade_subtasks(scoring, _tests("t1", "t2", "t3"), results)
    assert [(r.name, r.verdict, r.score, r.max_score, r.passed) for r in rows] == [
        ("a", "AC", 30, 30, 2),
        ("b", "WA", 0, 70, 1),
    ]


def test_partial_outcomes_and_missing_tests() -> None:
    scoring = SubtaskScoring("GroupMul", (Subtask("a", 10, ("t1", "t2")),))
    results = {"t1": TestResult("t1", "secret", "AC", score=0.5), "t2": TestResult("t2", "secret", "AC", score=0.5)}
    assert grade_subtasks(scoring, _tests("t1", "t2"), results)[0].score == 2.5
    assert grade_subtasks(scoring, _tests("t1", "t2"), {})[0].verdict == "SKIPPED"
    assert grade_subtasks(scoring, _tests("t1", "t2"), {})[0].score == 0


def test_sum_scoring() -> None:
    scoring = SubtaskScoring("Sum", points_per_test=5)
    results = {"t1": TestResult("t1", "secret", "AC"), "t2": TestResult("t2", "secret", "RE")}
    (row,) = grade_subtasks(scoring, _tests("t1", "t2", "t3"), results)
    assert (row.score, row.max_score, row.verdict, row.passed) == (5, 15, "RE", 1)


def test_group_threshold_uses_checker_scores_as_costs() -> None:
    scoring = SubtaskScoring("GroupThreshold", (Subtask("fast", 40, ("t1", "t2"), threshold=0.5),))
    fast = {"t1": TestResult("t1", "s", "AC", score=0.2), "t2": TestResult("t2", "s", "AC", score=0.5)}
    slow = {**fast, "t2": TestResult("t2", "s", "AC", score=0.6)}
    assert grade_subtasks(scoring, _tests("t1", "t2"), fast)[0].score == 40
    assert grade_subtasks(scoring, _tests("t1", "t2"), slow)[0].score == 0


def test_custom_range_sets_the_maximum() -> None:
    group = TestGroup("", Path("data"), score_range=(0, 250), items=tuple(_tests("t1")))
    assert max_score(group) == 250
