"""Every stage of both recipes becomes a NeMo RL config that upstream loads and validates.

Each stage goes: recipe YAML -> our cascade loader and plan -> ``nemo_rl`` backend
(``stage.yaml`` with ``defaults:`` the upstream base) -> upstream ``load_config`` + Hydra
overrides -> upstream ``MasterConfig``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.backend import NemoRLBackend
from cascade_plugins.backends.nemo_rl.stage_config import MOPD_KEY, StageLayout, algorithm_for
from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.plan import resolve_plan
from cascade_plugins.interfaces import CheckpointRef, RewardResult, RewardSpec, StageSpec
from cascade_plugins.plugins import load_plugins

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
RECIPES = ["nemotron_cascade2.yaml", "nemotron_cascade1.yaml"]


class _NamedStandIn:
    """Plan resolution only needs a reward name to exist; used when a reward plugin is absent."""

    reward_range = (0.0, 1.0)

    def __init__(self, **options):
        self.options = options

    def score(self, samples):
        return [RewardResult(0.0, "error") for _ in samples]

    def close(self):
        pass


def _registry(needed: set[str]):
    registry = load_plugins(use_env=False)
    for name in sorted(needed - set(registry.names("reward"))):
        registry._register("reward", "integration-stand-in", type(name, (_NamedStandIn,), {"name": name}))
    return registry


def _materialize(config, base: Path) -> None:
    """Create the recipe's data files and the SFT model folder under ``base``."""
    for dataset in config.data.values():
        if dataset.path:
            path = base / dataset.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text('{"prompt": "p", "ground_truth": "1"}\n')
    (base / "sft_model").mkdir(exist_ok=True)


@pytest.mark.parametrize("recipe", RECIPES)
def test_every_stage_validates_as_upstream_master_config(
    recipe: str, tmp_path: Path, nemo_rl_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASCADE2_SFT_MODEL", str(tmp_path / "sft_model"))
    monkeypatch.setenv("CASCADE1_SFT_MODEL", str(tmp_path / "sft_model"))
    config, loaded = load_cascade_config(CONFIGS / recipe)
    _materialize(config, tmp_path)
    rewards = {d.reward.name for d in config.domains.values() if d.reward}
    registry = _registry(rewards)
    plan = resolve_plan(config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)
    backend = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit")
    assert plan.stages
    for stage in plan.stages:
        spec = plan.placeholder_spec(stage)
        assert backend.check(spec) == [], stage.name
        layout = backend.emit(spec)
        emitted = yaml.safe_load(layout.config.read_text())
        resolved = compat.load_config_dict(layout.config)
        master = compat.validate_master_config(algorithm_for(spec.kind), resolved)
        # the stage's own keys survive upstream inheritance
        assert master.checkpointing["checkpoint_dir"] == str(StageLayout(Path(spec.output_dir)).checkpoints)
        assert master.policy["model_name"] == emitted["policy"]["model_name"]
        steps = stage.hparams.get("steps")
        if steps and spec.kind != "sft":
            assert compat.cfg_get(master.grpo, "max_num_steps") == steps
        if spec.kind == "mopd":
            assert resolved[MOPD_KEY]["teachers"].keys() == spec.data.keys()
        # what the emitted command runs would parse the same config
        assert f"--config {layout.config}" in layout.command.read_text()


def _gym_spec(tmp_path: Path, overrides: dict, defaults: str | None = None) -> StageSpec:
    data = tmp_path / "m.jsonl"
    data.write_text('{"prompt": "p", "ground_truth": "1"}\n')
    return StageSpec(
        name="bad", kind="grpo", data={"math": str(data)},
        rewards={"math": RewardSpec("nemo_rl_env", {"env": "math"})},
        hparams={"nemo_rl": {"overrides": overrides, "defaults": defaults}},
        output_dir=str(tmp_path / "bad"), init=CheckpointRef(str(tmp_path)),
    )


def test_upstream_validation_is_real_a_wrong_type_fails(tmp_path: Path, nemo_rl_root: Path) -> None:
    import pydantic

    spec = _gym_spec(tmp_path, {"grpo": {"num_prompts_per_step": "many"}})
    layout = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit").emit(spec)
    with pytest.raises(pydantic.ValidationError, match="num_prompts_per_step"):
        compat.validate_master_config("grpo", compat.load_config_dict(layout.config))


def test_plan_time_check_rejects_a_wrong_type_and_a_misspelt_key(tmp_path: Path, nemo_rl_root: Path) -> None:
    """``cascade plan`` (Backend.check) runs the stage config through upstream's loader and
    MasterConfig, and checks our keys against the keys upstream knows: its config classes
    accept unknown keys silently, so a misspelt Megatron key would otherwise train with the
    default."""
    backend = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit")
    assert backend.check(_gym_spec(tmp_path, {})) == []
    wrong_type = backend.check(_gym_spec(tmp_path, {"grpo": {"num_prompts_per_step": "many"}}))
    assert len(wrong_type) == 1
    assert wrong_type[0].startswith("hparams.nemo_rl.overrides.grpo.num_prompts_per_step: NeMo RL rejects "
                                    "grpo.num_prompts_per_step: Input should be a valid integer")
    assert "(got 'many')" in wrong_type[0]
    misspelt = backend.check(_gym_spec(
        tmp_path, {"policy": {"megatron_cfg": {"tensor_model_paralel_size": 4}, "max_total_sequnce_length": 4}},
        defaults="examples/nemo_gym/grpo_nanov3.yaml"))
    assert sorted(misspelt) == [
        "hparams.nemo_rl.overrides.policy.max_total_sequnce_length: NeMo RL has no key 'max_total_sequnce_length' "
        "under policy; did you mean 'policy.max_total_sequence_length'?",
        "hparams.nemo_rl.overrides.policy.megatron_cfg.tensor_model_paralel_size: NeMo RL has no key "
        "'tensor_model_paralel_size' under policy.megatron_cfg; did you mean "
        "'policy.megatron_cfg.tensor_model_parallel_size'?",
    ]
    # keys upstream's config classes declare are known even where the base YAML omits them
    typed_only = backend.check(_gym_spec(tmp_path, {"checkpointing": {"keep_top_k": 2}}))
    assert typed_only == []


def test_plan_time_check_catches_the_metric_the_recipe_used_to_rank_by(tmp_path: Path, nemo_rl_root: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """code_rl and mopd validate through our environments, which NeMo RL reports as val:accuracy;
    the Nano-v3 base's val:total_reward/mean stops them at their first checkpoint."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASCADE2_SFT_MODEL", str(tmp_path / "sft_model"))
    config, loaded = load_cascade_config(
        CONFIGS / "nemotron_cascade2.yaml",
        ["hparams.common.nemo_rl.overrides.checkpointing.metric_name=val:total_reward/mean"])
    _materialize(config, tmp_path)
    registry = _registry({d.reward.name for d in config.domains.values() if d.reward})
    plan = resolve_plan(config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)
    backend = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit")
    refused = {s.name: backend.check(plan.placeholder_spec(s)) for s in plan.stages}
    assert sorted(name for name, problems in refused.items() if problems) == ["code_rl", "mopd"]
    assert "'val:total_reward/mean' is not reported by this stage's validation" in refused["code_rl"][0]
    # (pass_k too where the base validates several generations per prompt: main's Nano-v3 does)
    assert "NeMo RL's validate reports only 'val:accuracy', 'val:avg_length'" in refused["code_rl"][0]


def test_plan_notes_for_the_cascade2_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `cascade plan` prints under 'backend notes': Gym stages cannot be ranked by
    best:<domain>, and the MOPD stage's teacher placement and loss."""
    from cascade_plugins.cli.plan import build_checked_plan

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASCADE2_SFT_MODEL", str(tmp_path / "sft_model"))
    config, _ = load_cascade_config(CONFIGS / "nemotron_cascade2.yaml")
    _materialize(config, tmp_path)
    notes: list[str] = []
    build_checked_plan(str(CONFIGS / "nemotron_cascade2.yaml"), (), str(tmp_path / "run"), notes)
    unranked = sorted(n.split(":")[0] for n in notes if "'best:<domain>' teachers never choose it" in n)
    assert unranked == sorted(["if_rl", "multi_domain_rl", "rlhf_from_sft", "rlhf", "long_context_rl",
                               "swe_agentless_rl", "swe_agentic_rl"])
    mopd = [n for n in notes if n.startswith("mopd: MOPD:")]
    assert len(mopd) == 1 and "2 teacher policies" in mopd[0]
    assert "instruction_following, multi_domain: the starting checkpoint" in mopd[0]
