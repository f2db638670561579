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
from cascade_plugins.interfaces import RewardResult
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


def test_upstream_validation_is_real_a_wrong_type_fails(tmp_path: Path, nemo_rl_root: Path) -> None:
    import pydantic

    from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec

    data = tmp_path / "m.jsonl"
    data.write_text('{"prompt": "p", "ground_truth": "1"}\n')
    spec = StageSpec(
        name="bad", kind="grpo", data={"math": str(data)},
        rewards={"math": RewardSpec("nemo_rl_env", {"env": "math"})},
        hparams={"nemo_rl": {"overrides": {"grpo": {"num_prompts_per_step": "many"}}}},
        output_dir=str(tmp_path / "bad"), init=CheckpointRef(str(tmp_path)),
    )
    layout = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit").emit(spec)
    with pytest.raises(pydantic.ValidationError, match="num_prompts_per_step"):
        compat.validate_master_config("grpo", compat.load_config_dict(layout.config))
