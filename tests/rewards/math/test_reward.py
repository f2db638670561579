"""The math reward as a plugin: protocol, registry, options, malformed samples, deadlines, threads."""

from __future__ import annotations

import json
import pickle
import threading

import pytest

from cascade_plugins.interfaces import Reward, Sample
from cascade_plugins.plugins import get_registry
from cascade_plugins.rewards.math import MathReward, OptionsError

#: sympy evaluates this sum of 999 huge powers for minutes: only the deadline stops it.
SLOW_RESPONSE = r"\boxed{\sum_{k=1}^{999} k^{k}}"


def test_satisfies_the_reward_protocol(math_reward: MathReward) -> None:
    assert isinstance(math_reward, Reward)
    assert math_reward.name == "math"
    assert math_reward.reward_range == (0.0, 1.0)


def test_registered_under_math() -> None:
    reward = get_registry("math").make_reward("math", require_boxed=True, tolerance=1e-6)
    assert isinstance(reward, MathReward)
    assert reward.options.require_boxed
    with pytest.raises(OptionsError, match="unknown option 'bogus'"):
        get_registry("math").make_reward("math", bogus=1)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        (Sample(response="5", ground_truth=None), "ground_truth"),
        (Sample(response="5", ground_truth={"a": 1}), "ground_truth"),
        (Sample(response="5", ground_truth="   "), "empty"),
        (Sample(response="5", ground_truth=[]), "ground_truth"),
        (Sample(response=None, ground_truth="5"), "response"),  # type: ignore[arg-type]
        (Sample(response="5", ground_truth="5", metadata={"math": {"tolerance": "x"}}), "metadata.math"),
        (Sample(response="5", ground_truth="5", metadata={"math": "ABCD"}), "metadata key 'math'"),
        (Sample(response="5", ground_truth="5", metadata={"math": {"workers": 2}}), "per sample"),
        ({"response": "5", "ground_truth": "5"}, "expected a Sample"),
    ],
)
def test_malformed_samples_get_error_verdicts(math_reward: MathReward, sample: object, message: str) -> None:
    [result] = math_reward.score([sample])  # type: ignore[list-item]
    assert result.verdict == "error"
    assert result.reward == 0.0
    assert message in result.details["error"]


def test_one_result_per_sample_in_order_and_json_details(math_reward: MathReward) -> None:
    samples = [
        Sample(response=r"\boxed{2}", ground_truth="2"),
        Sample(response=r"\boxed{\frac{\sqrt{2}}{2}}", ground_truth=r"\frac{1}{\sqrt{2}}"),
        Sample(response="nothing", ground_truth="3"),
        Sample(response=r"\boxed{7}", ground_truth=None),
        Sample(response=r"\boxed{x^2}", ground_truth="y^2"),
    ]
    results = math_reward.score(samples)
    assert [r.verdict for r in results] == ["correct", "correct", "no_answer", "error", "incorrect"]
    assert results[1].details["method"] == "symbolic"
    for result in results:
        json.dumps(result.to_dict())
    assert math_reward.score(samples) == results  # deterministic


def test_ground_truth_numbers_and_alternatives(math_reward: MathReward) -> None:
    results = math_reward.score(
        [
            Sample(response=r"\boxed{12}", ground_truth=12),
            Sample(response=r"\boxed{0.25}", ground_truth=0.25),
            Sample(response=r"\boxed{\frac{\pi}{2}}", ground_truth=["90^\\circ", "\\frac{\\pi}{2}"]),
            Sample(response=r"\boxed{3}", ground_truth=["1", "2"]),
        ]
    )
    assert [r.verdict for r in results] == ["correct", "correct", "correct", "incorrect"]


def test_per_sample_options_from_metadata(math_reward: MathReward) -> None:
    results = math_reward.score(
        [
            Sample(response="Answer: 5", ground_truth="5"),
            Sample(response="Answer: 5", ground_truth="5", metadata={"math": {"require_boxed": True}}),
            Sample(response=r"\boxed{(2, 1)}", ground_truth="(1, 2)", metadata={"math": {"ordered_tuples": False}}),
            Sample(response="I pick (B).", ground_truth="B", metadata={"math": {"choices": "ABCD"}}),
        ]
    )
    assert [r.verdict for r in results] == ["correct", "no_answer", "correct", "correct"]


def test_reward_values_are_configurable() -> None:
    reward = MathReward(correct_reward=1.0, incorrect_reward=-1.0, workers=1)
    try:
        results = reward.score([Sample(response=r"\boxed{1}", ground_truth="1"), Sample(response="", ground_truth="1")])
        assert [r.reward for r in results] == [1.0, -1.0]
        assert reward.reward_range == (-1.0, 1.0)
    finally:
        reward.close()


def test_a_sample_past_its_deadline_times_out_and_the_reward_recovers() -> None:
    reward = MathReward(timeout=1.0, workers=1)
    try:
        results = reward.score(
            [Sample(response=SLOW_RESPONSE, ground_truth="1"), Sample(response=r"\boxed{\sqrt{4}}", ground_truth="2")]
        )
        assert results[0].verdict == "timeout"
        assert results[0].reward == 0.0
        assert "1 s" in results[0].details["error"]
        assert results[1].verdict == "correct"
        [again] = reward.score([Sample(response=r"\boxed{\sqrt{9}}", ground_truth="3")])
        assert again.verdict == "correct"
    finally:
        reward.close()


def test_pickled_reward_works_and_reuses_nothing(math_reward: MathReward) -> None:
    math_reward.score([Sample(response=r"\boxed{\sqrt{4}}", ground_truth="2")])
    copy = pickle.loads(pickle.dumps(math_reward))
    try:
        assert copy.options == math_reward.options
        [result] = copy.score([Sample(response=r"\boxed{\sqrt{16}}", ground_truth="4")])
        assert result.verdict == "correct"
    finally:
        copy.close()


def test_scoring_from_many_threads(math_reward: MathReward) -> None:
    verdicts: dict[int, list[str]] = {}

    def work(n: int) -> None:
        samples = [
            Sample(response=rf"\boxed{{\sqrt{{{n * n}}}}}", ground_truth=str(n)),
            Sample(response=rf"\boxed{{{n + 1}}}", ground_truth=str(n)),
        ]
        verdicts[n] = [r.verdict for r in math_reward.score(samples)]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(2, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert verdicts == {n: ["correct", "incorrect"] for n in range(2, 8)}


def test_close_is_idempotent_and_reward_is_reusable() -> None:
    reward = MathReward(workers=1)
    reward.close()
    [result] = reward.score([Sample(response=r"\boxed{\sqrt{4}}", ground_truth="2")])
    assert result.verdict == "correct"
    reward.close()
    reward.close()
    [result] = reward.score([Sample(response=r"\boxed{\sqrt{4}}", ground_truth="2")])
    assert result.verdict == "correct"
    reward.close()
