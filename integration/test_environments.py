"""Our environments inside NeMo RL: created by upstream ``create_env``, scored by upstream
``calculate_rewards`` in a local Ray cluster, in one batch with upstream's own math environment."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("ray_cluster")


def _batch(rows: list[tuple[str, str, dict]]):
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    return BatchedDataDict(
        {
            "message_log": [
                [{"role": "user", "content": "q"}, {"role": "assistant", "content": response}]
                for _, response, _ in rows
            ],
            "task_name": [task for task, _, _ in rows],
            "extra_env_info": [info for _, _, info in rows],
        }
    )


def test_registration_is_idempotent_and_visible_to_create_env() -> None:
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.environments.utils import ENV_REGISTRY

    from cascade_plugins.backends.nemo_rl import env_class_fqn, register_all

    first = register_all(["cascade_exact"])
    second = register_all(["cascade_exact"])
    assert first == second == {"cascade_exact": env_class_fqn("cascade_exact")}
    assert ENV_REGISTRY["cascade_exact"]["actor_class_fqn"] == env_class_fqn("cascade_exact")
    assert env_class_fqn("cascade_exact") in ACTOR_ENVIRONMENT_REGISTRY


def test_calculate_rewards_mixes_our_env_with_upstream_math() -> None:
    import ray
    from nemo_rl.environments.utils import create_env
    from nemo_rl.experience.rollouts import calculate_rewards

    from cascade_plugins.backends.nemo_rl import register_all

    register_all(["cascade_exact", "cascade_bonus"])
    exact = create_env("cascade_exact", {"num_workers": 2})
    # a second instance of the same reward with options, under its own name
    bonus = create_env("cascade_bonus", {"reward": "exact", "reward_options": {"bonus": 0.5}})
    math = create_env("math", {"num_workers": 1})
    try:
        batch = _batch(
            [
                ("exact", "hello", {"ground_truth": "hello"}),
                ("math", "The answer is \\boxed{4}", {"ground_truth": "4"}),
                ("exact", "nope", {"ground_truth": "hello"}),
                ("bonus", " yes ", {"ground_truth": "yes"}),
                ("math", "\\boxed{5}", {"ground_truth": "4"}),
                ("exact", "a", {"ground_truth": "a", "domain": "toy", "metadata": {"id": 7}}),
            ]
        )
        result = calculate_rewards(batch, {"exact": exact, "math": math, "bonus": bonus})
        assert result.rewards.tolist() == [1.0, 1.0, 0.0, 0.5, 0.0, 1.0]
        assert result.terminateds.tolist() == [True] * 6
        verdicts = [m.get("cascade_verdict") for m in result.metadata]
        assert verdicts[0] == "correct" and verdicts[2] == "incorrect" and verdicts[5] == "correct"
        assert result.observations[2] == {"role": "environment", "content": "Environment: incorrect"}
    finally:
        for env in (exact, bonus, math):
            ray.get(env.shutdown.remote())
            ray.kill(env)


def test_scoring_actors_reserve_their_cpus_and_size_pools_to_them() -> None:
    """Each scoring actor holds cpus_per_worker CPUs in Ray for its lifetime, and what it sees as
    its CPU count (PYTHON_CPU_COUNT, honoured by os.cpu_count() from Python 3.13) is that
    reservation, not the node's."""
    import time

    import ray
    from nemo_rl.environments.utils import create_env

    from cascade_plugins.backends.nemo_rl import register_all

    register_all(["cascade_cpu_count"])
    total = ray.cluster_resources()["CPU"]
    env = create_env("cascade_cpu_count", {"num_workers": 2, "cpus_per_worker": 2})
    try:
        result = ray.get(env.step.remote([[{"role": "assistant", "content": "x"}]] * 3, [{}] * 3))
        assert result.rewards.tolist() == [2.0, 2.0, 2.0]
        deadline = time.monotonic() + 30  # Ray's resource view lags actor creation a little
        while ray.available_resources().get("CPU", 0.0) > total - 4 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert ray.available_resources().get("CPU", 0.0) <= total - 4  # 2 actors x 2 CPUs held
    finally:
        ray.get(env.shutdown.remote())
        ray.kill(env)


def test_bad_env_config_fails_at_creation_with_the_key() -> None:
    import ray
    from nemo_rl.environments.utils import create_env

    from cascade_plugins.backends.nemo_rl import register_all

    register_all(["cascade_exact"])
    env = create_env("cascade_exact", {"num_workrs": 2})
    with pytest.raises(ray.exceptions.RayActorError, match="num_workrs"):
        ray.get(env.step.remote([], []))


def test_setup_response_data_routes_our_jsonl_to_our_env(tmp_path: Path) -> None:
    """Upstream ``setup_response_data`` (through the compat layer, which lets v0.7.0 create the
    environments of a list of datasets) with our dataset class, processor and environments."""
    import ray
    from tiny_model import build_tiny_model, write_jsonl
    from transformers import AutoTokenizer

    from cascade_plugins.backends.nemo_rl import compat, register_all
    from cascade_plugins.backends.nemo_rl.stage_config import DATASET_CLASS

    register_all(["cascade_exact", "cascade_none"])
    model_dir = build_tiny_model(tmp_path / "tiny")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    rows = [{"prompt": f"say {w}", "ground_truth": w, "domain": "toy", "id": i} for i, w in enumerate("abcd")]
    data = write_jsonl(tmp_path / "toy.jsonl", rows)
    prompts = write_jsonl(tmp_path / "chat.jsonl", [{"prompt": "hi"}, {"prompt": "there"}])
    entry = {"dataset_name": DATASET_CLASS, "processor": "cascade_data_processor", "prompt_file": None,
             "system_prompt_file": None}
    data_config = {
        "max_input_seq_length": 64,
        "shuffle": False,
        "train": [
            {**entry, "data_path": str(data), "task_name": "toy", "env_name": "cascade_exact"},
            {**entry, "data_path": str(prompts), "task_name": "chat", "env_name": "cascade_none",
             "require_target": False},
        ],
        "default": None,
    }
    env_configs = {"cascade_exact": {"num_workers": 1}, "cascade_none": {"reward": "none"}}
    dataset, _val, task_to_env, _val_envs = compat.setup_response_data(tokenizer, data_config, env_configs)
    try:
        assert set(task_to_env) == {"toy", "chat"}
        datum = dataset[0]
        assert datum["task_name"] == "toy"
        assert datum["extra_env_info"]["ground_truth"] == "a"
        assert datum["extra_env_info"]["metadata"] == {"id": 0}
        assert "say a" in datum["message_log"][0]["content"]
        assert datum["message_log"][0]["token_ids"].shape[0] == datum["length"]
        out = ray.get(task_to_env["chat"].step.remote([[{"role": "assistant", "content": "x"}]], [{}]))
        assert out.rewards.tolist() == [0.0]
    finally:
        for env in {id(e): e for e in task_to_env.values()}.values():
            ray.get(env.shutdown.remote())


def test_our_math_reward_and_upstream_math_agree_in_one_batch() -> None:
    """The built-in ``math`` reward as ``cascade_math`` next to NeMo RL's ``math`` environment."""
    import ray
    from nemo_rl.environments.utils import create_env
    from nemo_rl.experience.rollouts import calculate_rewards

    from cascade_plugins.backends.nemo_rl import register_all
    from cascade_plugins.plugins import get_registry

    if "math" not in get_registry().names("reward"):
        pytest.skip("the math reward plugin is not installed")
    register_all(["cascade_math"])
    ours = create_env("cascade_math", {"num_workers": 2})
    upstream = create_env("math", {"num_workers": 1})
    try:
        cases = [("The answer is \\boxed{4}", "4"), ("\\boxed{\\frac{1}{2}}", "0.5"), ("\\boxed{5}", "4")]
        rows = [(task, response, {"ground_truth": truth}) for task in ("ours", "upstream") for response, truth in cases]
        result = calculate_rewards(_batch(rows), {"ours": ours, "upstream": upstream})
        assert result.rewards.tolist() == [1.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    finally:
        for env in (ours, upstream):
            ray.get(env.shutdown.remote())
            ray.kill(env)


def test_validation_rounds_give_per_domain_scores(monkeypatch: pytest.MonkeyPatch) -> None:
    """``grpo_train``'s ``validate`` wrapped for one stage: our environments count each domain's
    rewards during the round only. The validate stand-in scores a batch the way upstream's does
    (through ``calculate_rewards``); the real one needs a GPU generator."""
    import ray
    from nemo_rl.algorithms import grpo
    from nemo_rl.environments.utils import create_env
    from nemo_rl.experience.rollouts import calculate_rewards

    from cascade_plugins.backends.nemo_rl import compat, register_all

    def validate(policy_generation, val_dataloader, tokenizer, val_task_to_env, step, master_config, logger=None):
        calculate_rewards(val_dataloader, val_task_to_env)
        return {"accuracy": -1.0}, {}

    monkeypatch.setattr(grpo, "validate", validate)
    register_all(["cascade_exact"])
    env = create_env("cascade_exact", {})
    math = create_env("math", {"num_workers": 1})
    tasks = {"exact": env, "math": math}
    rows = [
        ("exact", "a", {"ground_truth": "a", "domain": "toy"}),
        ("exact", "b", {"ground_truth": "a", "domain": "toy"}),
        ("exact", "c", {"ground_truth": "c", "domain": "other"}),
        ("math", "\\boxed{1}", {"ground_truth": "1"}),
    ]
    seen: list = []
    try:
        calculate_rewards(_batch(rows), tasks)  # a training step: not counted
        with compat.validation_rounds(lambda step, scores: seen.append((step, scores))):
            assert grpo.validate(None, _batch(rows), None, tasks, 7, None) == ({"accuracy": -1.0}, {})
        assert grpo.validate is validate
        assert seen == [(7, {"other": 1.0, "toy": 0.5})]
    finally:
        for actor in (env, math):
            ray.get(actor.shutdown.remote())
            ray.kill(actor)
