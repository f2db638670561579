"""The plugin author kit must accept a correct reward and catch each kind of contract breach."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from cascade_plugins import RewardResult, Sample
from cascade_plugins.testing import check_reward

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "keyword-reward" / "cascade_keyword_reward.py"


def load_example():
    spec = importlib.util.spec_from_file_location("cascade_keyword_reward", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["cascade_keyword_reward"] = module  # pickling needs the module importable
    spec.loader.exec_module(module)
    return module


SAMPLES = [
    Sample(response="<think>x</think> the cat sat", ground_truth=["cat", "sat"]),
    Sample(response="the dog", ground_truth=["cat"]),
    Sample(response="Answer: 42", ground_truth={"regex": r"\b42\b"}),
]


class Good:
    name = "good"
    reward_range = (0.0, 1.0)

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        out = []
        for s in samples:
            if not isinstance(s.response, str):
                out.append(RewardResult(0.0, "error", {}))
            else:
                hit = "cat" in s.response
                out.append(RewardResult(float(hit), "correct" if hit else "incorrect", {}))
        return out

    def close(self) -> None:
        pass


class OutOfRange(Good):
    def score(self, samples):
        return [RewardResult(2.0, "correct", {}) if isinstance(s.response, str) else RewardResult(0.0, "error", {})
                for s in samples]


class Reordering(Good):
    def score(self, samples):
        return list(reversed(super().score(samples)))


class RaisesOnMalformed(Good):
    def score(self, samples):
        return [RewardResult(float("cat" in s.response), "correct", {}) for s in samples]


class NonDeterministic(Good):
    calls = 0

    def score(self, samples):
        NonDeterministic.calls += 1
        base = super().score(samples)
        if NonDeterministic.calls == 2 + len(SAMPLES):  # the repeat of the first batch
            return [RewardResult(1.0 - r.reward, r.verdict, r.details) for r in base]
        return base


class Unpicklable(Good):
    def __init__(self):
        self.lock = __import__("threading").Lock()


class OwnVerdicts(Good):
    """A judge's verdicts belong in the details, not in ``verdict``."""

    def score(self, samples):
        return [RewardResult(r.reward, "AC" if r.verdict == "correct" else r.verdict, r.details)
                for r in super().score(samples)]


class DropsEmpty(Good):
    def score(self, samples):
        return super().score(samples) if samples else None


def test_example_plugin_passes_the_kit() -> None:
    module = load_example()
    report = check_reward(module.KeywordReward, SAMPLES, options={"partial_credit": True})
    assert report.name == "keyword"
    assert [r.verdict for r in report.results] == ["correct", "incorrect", "correct"]
    assert len(report.checks) == 7


def test_kit_accepts_a_correct_reward_instance() -> None:
    assert check_reward(Good(), SAMPLES).results[0].reward == 1.0


@pytest.mark.parametrize(
    ("reward", "needle"),
    [
        (OutOfRange(), "outside the declared range"),
        (Reordering(), "out of order"),
        (RaisesOnMalformed(), "malformed"),
        (NonDeterministic(), "not deterministic"),
        (Unpicklable(), "pickle"),
        (DropsEmpty(), "empty batch"),
        (OwnVerdicts(), "not one of the shared verdicts"),
    ],
)
def test_kit_catches_each_breach(reward: Good, needle: str) -> None:
    NonDeterministic.calls = 0
    with pytest.raises((AssertionError, TypeError)) as info:
        check_reward(reward, SAMPLES)
    assert needle in str(info.value)
