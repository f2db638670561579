from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cascade_plugins.backends.nemo_rl.env_core import (
    NO_REWARD,
    EnvSettings,
    RoundScores,
    batch_metrics,
    merge_chunk_results,
    observation_for,
    sample_from_message_log,
    split_for_workers,
    unscored,
    updated_metadata,
)
from cascade_plugins.backends.nemo_rl.names import env_class_fqn, env_name_for_reward, reward_for_env_name
from cascade_plugins.interfaces import RewardResult


def test_env_names_round_trip_and_reject_foreign_names() -> None:
    assert env_name_for_reward("math") == "cascade_math"
    assert reward_for_env_name("cascade_math") == "math"
    assert env_class_fqn("cascade_my-reward") == "cascade_plugins.backends.nemo_rl.environment.cascade_my-reward"
    for bad in ("math", "cascade_", "cascade_a.b", "nemo_gym"):
        with pytest.raises(ValueError, match="cascade_<reward>"):
            reward_for_env_name(bad)


def test_env_settings_defaults_and_overrides() -> None:
    assert EnvSettings.from_config("math", None) == EnvSettings(reward="math")
    settings = EnvSettings.from_config(
        "hard_math", {"reward": "math", "reward_options": {"tol": 1}, "num_workers": 4, "plugins": "math,code"}
    )
    assert (settings.reward, settings.reward_options, settings.num_workers) == ("math", {"tol": 1}, 4)
    assert settings.plugins == ("math", "code")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"num_workrs": 2}, r"env.cascade_math: unknown key\(s\) \['num_workrs'\]"),
        ({"num_workers": 0}, "env.cascade_math.num_workers must be an integer >= 1"),
        ({"num_workers": True}, "num_workers"),
        ({"reward": ""}, "env.cascade_math.reward must be a reward name"),
        ({"reward_options": [1]}, "reward_options must be a mapping"),
    ],
)
def test_env_settings_errors_name_the_key(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvSettings.from_config("math", config)


def test_sample_joins_assistant_turns_and_keeps_metadata() -> None:
    log = [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "templated prompt"},
        {"role": "assistant", "content": "part 1 "},
        {"role": "environment", "content": "Environment: incorrect"},
        {"role": "assistant", "content": [{"type": "text", "text": "part 2"}]},
    ]
    info = {"ground_truth": "42", "domain": "math", "prompt": "raw", "metadata": {"id": 3}, "source": "x"}
    sample = sample_from_message_log(log, info)
    assert sample.response == "part 1 part 2"
    assert (sample.prompt, sample.ground_truth, sample.domain) == ("raw", "42", "math")
    assert sample.metadata == {"id": 3, "source": "x"}
    assert sample.tests is None and sample.problem is None
    # without a raw prompt the last user turn is used; info is not mutated
    assert sample_from_message_log(log, {"tests": [1]}).prompt == "templated prompt"
    assert info["prompt"] == "raw"


@given(st.lists(st.integers(), max_size=40), st.integers(min_value=1, max_value=9))
def test_split_for_workers_covers_in_order_and_balances(items: list[int], workers: int) -> None:
    chunks = split_for_workers(items, workers)
    assert [x for _, chunk in chunks for x in chunk] == items
    assert all(chunk for _, chunk in chunks) and len(chunks) <= workers
    assert all(items[start : start + len(chunk)] == chunk for start, chunk in chunks)
    sizes = [len(c) for _, c in chunks]
    assert not sizes or max(sizes) - min(sizes) <= 1


def test_split_rejects_zero_workers() -> None:
    with pytest.raises(ValueError, match="num_workers"):
        split_for_workers([1], 0)


def test_merge_restores_order_and_detects_missing_results() -> None:
    a, b, c = (RewardResult(float(i), "correct") for i in range(3))
    assert merge_chunk_results(3, [(2, [c]), (0, [a, b])]) == [a, b, c]
    with pytest.raises(RuntimeError, match=r"no result for samples \[2\]"):
        merge_chunk_results(3, [(0, [a, b])])


def test_step_outputs_and_metrics() -> None:
    result = RewardResult(1.0, "correct")
    assert observation_for(result) == {"role": "environment", "content": "Environment: correct"}
    assert updated_metadata({"ground_truth": "1"}, result) == {
        "ground_truth": "1", "cascade_verdict": "correct", "cascade_reward": 1.0,
    }
    metrics = batch_metrics([1.0, 0.0, 0.5, 1.0], ["correct", "incorrect", "partial", "correct"])
    assert metrics["mean_reward"] == 0.625 and metrics["accuracy"] == 0.5
    assert metrics["verdict/partial"] == 0.25
    assert batch_metrics([], []) == {}
    assert [r.reward for r in unscored(2)] == [0.0, 0.0]
    assert EnvSettings.from_config("none", None).reward == NO_REWARD


def test_round_scores_count_only_inside_a_round() -> None:
    from cascade_plugins.interfaces import Sample

    rounds = RoundScores()
    samples = [Sample(response="", domain="math"), Sample(response="", domain="math"), Sample(response="")]
    results = [RewardResult(1.0, "correct"), RewardResult(0.0, "incorrect"), RewardResult(0.5, "partial")]
    rounds.add(samples, results)  # training rollouts
    rounds.begin(3)
    rounds.add(samples, results)
    rounds.add(samples[:1], results[:1])
    assert rounds.end() == {"all": 0.5, "math": 2 / 3}
    assert rounds.step is None
    rounds.begin(4)
    assert rounds.end() == {}


def test_round_scores_lose_no_sample_under_concurrent_steps() -> None:
    """The environment actor runs ``step`` calls in threads; every sample must be counted."""
    import sys
    import threading

    from cascade_plugins.interfaces import Sample

    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        rounds = RoundScores()
        rounds.begin(1)
        samples = [Sample(response="", domain=d) for d in ("a", "b") * 10]
        results = [RewardResult(1.0, "correct")] * len(samples)

        def score() -> None:
            for _ in range(500):
                rounds.add(samples, results)

        threads = [threading.Thread(target=score) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert rounds._counts == {"a": 8 * 500 * 10, "b": 8 * 500 * 10}
        assert rounds.end() == {"a": 1.0, "b": 1.0}
    finally:
        sys.setswitchinterval(previous)


def test_env_settings_cpu_reservation() -> None:
    assert EnvSettings.from_config("code", None).cpus_per_worker == 1.0
    settings = EnvSettings.from_config("code", {"cpus_per_worker": 4})
    assert settings.cpus_per_worker == 4.0 and settings.worker_cpu_count == 4
    assert EnvSettings.from_config("code", {"cpus_per_worker": 0.5}).worker_cpu_count == 1
    for bad in (0, -1, True, "2", float("nan")):
        with pytest.raises(ValueError, match=r"env\.cascade_code\.cpus_per_worker must be a number > 0"):
            EnvSettings.from_config("code", {"cpus_per_worker": bad})
