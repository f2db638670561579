"""The math reward honours the reward contract, checked with the plugin author kit."""

from __future__ import annotations

from cascade_plugins import Sample
from cascade_plugins.plugins import get_registry
from cascade_plugins.testing import check_reward


def test_math_reward_passes_the_author_kit() -> None:
    factory = get_registry().get("reward", "math").factory
    samples = [
        Sample(response="<think>2+2</think> The answer is \\boxed{4}.", ground_truth="4"),
        Sample(response="so \\boxed{\\frac{1}{2}}", ground_truth="0.5"),
        Sample(response="\\boxed{1-\\frac{1}{e}}", ground_truth="1+\\frac{1}{e}"),
        Sample(response="I am not sure.", ground_truth="7"),
    ]
    malformed = [Sample(response="\\boxed{3}", ground_truth=None), Sample(response="\\boxed{3}", ground_truth=object())]
    report = check_reward(factory, samples, malformed=malformed)
    assert [r.verdict for r in report.results] == ["correct", "correct", "incorrect", "no_answer"]
