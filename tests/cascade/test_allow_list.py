"""A plugin the cascade's ``plugins:`` leaves out is invisible everywhere: to the plan, to the
backend's checks and to the processes a backend starts (the stage config carries the list)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.resolve import check_plan
from cascade_plugins.config import ConfigError
from cascade_plugins.plugins import PluginConflictError, get_registry, reset_registry_cache

CONFIGS = Path(__file__).resolve().parents[2] / "configs"

INTRUDER = '''
import pathlib

pathlib.Path(__file__).with_name("imported").touch()  # proof that something loaded it

from cascade_plugins import hookimpl


class Math:
    """Registers the name ``math`` too: loading it next to the built-in one is a conflict."""

    name = "math"
    reward_range = (0.0, 1.0)

    def score(self, samples):
        return []

    def close(self):
        pass


@hookimpl
def register_rewards(register):
    register(Math)
'''


@pytest.fixture
def intruder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An installed third-party plugin (an entry point) that clashes with the built-in ``math``."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "intruder_plugin.py").write_text(INTRUDER)
    dist = site / "cascade_intruder-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cascade-intruder\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[cascade_plugins]\nintruder = intruder_plugin\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("CASCADE_PLUGINS", raising=False)
    reset_registry_cache()
    yield site
    reset_registry_cache()


def test_the_local_cascade_plans_without_ever_loading_a_plugin_it_leaves_out(
    intruder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("torch", reason="the local backend's check builds the MOPD loss (torch)")
    monkeypatch.chdir(tmp_path)
    config, loaded = load_cascade_config(CONFIGS / "quickstart_ci.yaml")
    assert "intruder" not in (config.plugins or [])
    plan = check_plan(config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path)
    assert [s.name for s in plan.stages] == ["sft", "math_grpo", "code_grpo", "mopd"]
    assert not (intruder / "imported").exists()
    # everything installed (no allow-list) does load it, and the clash is named
    with pytest.raises(PluginConflictError, match="registered twice"):
        get_registry(None)


def test_naming_it_in_plugins_surfaces_the_clash_at_that_key(intruder: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config, loaded = load_cascade_config(CONFIGS / "quickstart_ci.yaml", ["plugins=[local,math,mopd,intruder]"])
    with pytest.raises(ConfigError) as info:
        check_plan(config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path)
    assert [p.key_path for p in info.value.problems] == ["plugins"]


def test_the_nemo_rl_stage_config_hands_the_allow_list_to_the_stage_process(
    intruder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "nemo-rl"
    (root / "examples" / "configs").mkdir(parents=True)
    (root / "examples" / "configs" / "grpo_math_1B.yaml").write_text("grpo: {val_period: 5}\n")
    (tmp_path / "m.jsonl").write_text('{"prompt": "1+1=", "ground_truth": "2"}\n')
    (tmp_path / "sft").mkdir()
    cascade = {
        "name": "nemo", "plugins": ["nemo_rl", "math"],
        "backend": {"name": "nemo_rl", "options": {"nemo_rl_root": str(root), "mode": "emit"}},
        "model": {"path": str(tmp_path / "sft")},
        "domains": {"math": "math"}, "data": {"math_train": {"path": "m.jsonl"}},
        "eval": {"sets": {"math": {"data": "math_train"}}},
        "stages": [{"name": "math_rl", "kind": "grpo", "data": {"math": "math_train"}, "hparams": {"steps": 2}}],
    }
    path = tmp_path / "cascade.yaml"
    path.write_text(yaml.safe_dump(cascade))
    monkeypatch.chdir(tmp_path)
    config, loaded = load_cascade_config(path)
    plan = check_plan(config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path)
    backend = get_registry(config.plugins).make_backend("nemo_rl", **config.backend.options)
    stage_config = backend.stage_config(plan.placeholder_spec(plan.stages[0]))
    assert {tuple(env["plugins"]) for env in stage_config["env"].values()} == {("math", "nemo_rl")}
    assert not (intruder / "imported").exists()
