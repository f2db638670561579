"""The CMS score types against their formulas (property tests) and the IOI best-per-subtask rule."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascade_plugins.rewards.competition import scoretypes

outcomes = st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30)
binary_outcomes = st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=30)
points = st.floats(min_value=0.0, max_value=1000.0)


@given(points, outcomes)
def test_sum_is_points_times_total_outcome(per_test: float, values: list[float]) -> None:
    expected = per_test * sum(values)
    assert scoretypes.sum_score(per_test, values) == pytest.approx(expected, rel=1e-12, abs=1e-9)
    assert 0.0 <= scoretypes.sum_score(per_test, values) <= per_test * len(values) + 1e-9


@given(points, outcomes)
def test_group_min_is_points_times_minimum(max_points: float, values: list[float]) -> None:
    assert scoretypes.group_min(max_points, values) == max_points * min(values)


@given(points, binary_outcomes)
def test_group_min_is_all_or_nothing_on_pass_fail_tests(max_points: float, values: list[float]) -> None:
    expected = max_points if all(v == 1.0 for v in values) else 0.0
    assert scoretypes.group_min(max_points, values) == expected


@given(points, outcomes)
def test_group_mul_is_points_times_product(max_points: float, values: list[float]) -> None:
    assert scoretypes.group_mul(max_points, values) == pytest.approx(max_points * math.prod(values), abs=1e-9)
    assert scoretypes.group_mul(max_points, values) <= scoretypes.group_min(max_points, values) + 1e-9


@given(points, outcomes, st.floats(min_value=0.0, max_value=1.0))
def test_group_threshold_all_in_open_closed_interval(max_points: float, values: list[float], threshold: float) -> None:
    expected = max_points if all(0.0 < v <= threshold for v in values) else 0.0
    assert scoretypes.group_threshold(max_points, values, threshold) == expected


def test_group_threshold_zero_is_failure() -> None:
    assert scoretypes.group_threshold(10, [0.5, 0.0], 1.0) == 0.0
    assert scoretypes.group_threshold(10, [0.5, 0.7], 0.7) == 10
    assert scoretypes.group_threshold(10, [0.5, 0.71], 0.7) == 0.0


@given(st.sampled_from(["GroupMin", "GroupMul", "Sum"]), points, outcomes)
def test_dispatch_matches_the_functions(score_type: str, max_points: float, values: list[float]) -> None:
    direct = {
        "GroupMin": scoretypes.group_min,
        "GroupMul": scoretypes.group_mul,
        "Sum": scoretypes.sum_score,
    }[score_type](max_points, values)
    assert scoretypes.subtask_score(score_type, max_points, values) == direct


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: scoretypes.group_min(10, []), "at least one"),
        (lambda: scoretypes.group_min(10, [1.5]), "outside"),
        (lambda: scoretypes.group_min(10, [float("nan")]), "outside"),
        (lambda: scoretypes.subtask_score("GroupMax", 10, [1.0]), "unknown score type 'GroupMax'"),
        (lambda: scoretypes.subtask_score("GroupThreshold", 10, [1.0]), "threshold"),
    ],
)
def test_bad_arguments(call, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=match):
        call()


subtask_scores = st.dictionaries(st.sampled_from(["s1", "s2", "s3"]), st.floats(0, 100), min_size=1)


@given(st.lists(subtask_scores, min_size=1, max_size=8))
def test_best_per_subtask_is_the_per_subtask_maximum(submissions: list[dict[str, float]]) -> None:
    best = scoretypes.best_per_subtask(submissions)
    assert set(best) == {name for s in submissions for name in s}
    for name, value in best.items():
        assert value == max(s[name] for s in submissions if name in s)
    # never worse than the best single submission
    assert sum(best.values()) >= max(sum(s.values()) for s in submissions) - 1e-9


def test_best_per_subtask_combines_submissions() -> None:
    # IOI 2024: 30 from the first submission's subtask 1 plus 70 from the second's subtask 2.
    assert scoretypes.best_per_subtask([{"s1": 30, "s2": 0}, {"s1": 0, "s2": 70}]) == {"s1": 30, "s2": 70}
    assert scoretypes.best_per_subtask([]) == {}
