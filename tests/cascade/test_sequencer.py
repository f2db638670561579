"""The sequencer in-process with the ledger backend: hand-off, branches, registry, hooks, failure,
resume and config-change refusal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins import hookimpl
from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.manifest import load_manifest
from cascade_plugins.cascade.plan import Plan
from cascade_plugins.cascade.resolve import resolve_plan
from cascade_plugins.cascade.sequencer import RunDirError, Sequencer, StageFailed, run_lock
from cascade_plugins.plugins import PluginRegistry


def _plan(tmp_path: Path, config: dict[str, Any], registry: PluginRegistry, kit: Any) -> Plan:
    path = kit.write(tmp_path / "cascade.yaml", config)
    loaded_config, loaded = load_cascade_config(path)
    return resolve_plan(loaded_config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)


def _run(tmp_path: Path, config: dict[str, Any], registry: PluginRegistry, kit: Any, **options: Any):
    return Sequencer(_plan(tmp_path, config, registry, kit), registry=registry, **options).run()


def _state(manifest: Any, stage: str) -> dict[str, Any]:
    return json.loads((Path(manifest.stage(stage).result["checkpoint"]["path"]) / "state.json").read_text())


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_stages_hand_checkpoints_on_and_hooks_fire(tmp_path, ledger_registry, kit, monkeypatch):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("LEDGER_EVENTS", str(events))
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    assert manifest.status == "finished"
    assert [(s.name, s.status, s.attempts) for s in manifest.stages] == [
        ("sft", "finished", 1), ("math_rl", "finished", 1), ("code_rl", "finished", 1), ("mopd", "finished", 1)
    ]
    # the last checkpoint's ledger holds every step of its lineage exactly once, in order
    assert _state(manifest, "mopd")["history"] == kit.history("sft", "math_rl", "code_rl", "mopd")
    # each stage started from the previous stage's output checkpoint
    assert manifest.stage("math_rl").init == manifest.stage("sft").result["checkpoint"]
    assert manifest.stage("sft").init is None
    # generated data was written once into the run directory and read by the backend
    assert _state(manifest, "sft")["rows"] == {"math": 6, "code": 5}
    assert manifest.datasets["math_train"]["rows"] == 6
    recorded = [e["event"] + ":" + e.get("stage", "") for e in _events(events) if e["event"] != "step"]
    assert recorded == [
        "started:sft", "finished:sft", "started:math_rl", "finished:math_rl", "started:code_rl",
        "finished:code_rl", "started:mopd", "finished:mopd", "cascade_finished:",
    ]
    assert load_manifest(tmp_path / "run") == manifest


def test_best_teacher_per_domain_from_the_registry(tmp_path, ledger_registry, kit):
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    teachers = manifest.stage("mopd").teachers
    assert (teachers["math"]["stage"], teachers["math"]["score"]) == ("math_rl", 0.6)
    assert (teachers["code"]["stage"], teachers["code"]["score"]) == ("code_rl", 0.7)
    assert _state(manifest, "mopd")["teachers"] == {"math": "math_rl:3", "code": "code_rl:3"}
    # the registry records every validated checkpoint, mopd's own included
    assert [e["stage"] for e in manifest.registry["math"]] == ["sft", "math_rl", "code_rl", "mopd"]


def test_registry_can_pick_an_intermediate_checkpoint_and_a_min_direction(tmp_path, ledger_registry, kit):
    config = kit.config(registry={"directions": {"code": "min"}})
    config["hparams"]["common"]["steps"] = 4
    # math_rl's step-2 evaluation beats every final score
    config["stages"][1]["hparams"]["evaluations"] = {2: {"math": 0.9, "code": 0.5}}
    manifest = _run(tmp_path, config, ledger_registry, kit)
    teachers = manifest.stage("mopd").teachers
    assert (teachers["math"]["stage"], teachers["math"]["step"], teachers["math"]["score"]) == ("math_rl", 2, 0.9)
    assert _state(manifest, "mopd")["teachers"]["math"] == "math_rl:2"
    # for code lower is better: math_rl's final 0.1 wins
    assert (teachers["code"]["stage"], teachers["code"]["score"]) == ("math_rl", 0.1)


class _PreferLatest:
    """A plugin overriding teacher selection: always the most recent checkpoint."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int, str, str]] = []

    @hookimpl
    def cascade_select_teacher(self, domain, candidates, metric, direction):
        self.calls.append((domain, len(candidates), metric, direction))
        return candidates[-1] if domain == "math" else None


def test_select_teacher_hook_overrides_the_builtin_rule(tmp_path, ledger_registry, kit):
    plugin = _PreferLatest()
    ledger_registry.pm.register(plugin, name="prefer-latest")
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    teachers = manifest.stage("mopd").teachers
    assert teachers["math"]["stage"] == "code_rl" and teachers["math"]["rule"] == "plugin"
    assert teachers["code"]["stage"] == "code_rl" and teachers["code"]["rule"].startswith("best")
    assert sorted(plugin.calls) == [("code", 3, "score", "max"), ("math", 3, "score", "max")]


def test_rlhf_side_branch_from_sft(tmp_path, ledger_registry, kit):
    config = kit.config()
    config["stages"].insert(1, {"name": "rlhf", "kind": "grpo", "init": "sft", "data": {"code": "code_train"},
                                "hparams": {"validation": {"math": 0.1, "code": 0.9}}})
    config["stages"][2]["init"] = "sft"  # the main line continues from SFT, not from the branch
    config["stages"][4]["teachers"]["code"] = "rlhf"
    manifest = _run(tmp_path, config, ledger_registry, kit)
    assert _state(manifest, "rlhf")["history"] == kit.history("sft", "rlhf")
    assert _state(manifest, "mopd")["history"] == kit.history("sft", "math_rl", "code_rl", "mopd")
    assert _state(manifest, "mopd")["teachers"]["code"] == "rlhf:3"
    assert [s.name for s in manifest.stages if s.branch] == ["rlhf"]
    assert manifest.stage("rlhf").parent == "sft" and manifest.stage("math_rl").parent == "sft"


def test_failed_stage_stops_the_cascade_and_resumes_from_its_own_checkpoint(
    tmp_path, ledger_registry, kit, monkeypatch
):
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("LEDGER_EVENTS", str(events))
    monkeypatch.setenv("LEDGER_FAIL_AT", "code_rl:3")
    with pytest.raises(StageFailed, match="injected failure at code_rl:3") as info:
        _run(tmp_path, kit.config(), ledger_registry, kit)
    assert info.value.stage == "code_rl"
    manifest = load_manifest(tmp_path / "run")
    assert manifest.status == "failed"
    assert [s.status for s in manifest.stages] == ["finished", "finished", "failed", "pending"]
    assert "RuntimeError: injected failure" in manifest.stage("code_rl").error
    assert "Traceback" in (tmp_path / "run" / "stages" / "code_rl" / "error.txt").read_text()
    assert sorted(p.name for p in (tmp_path / "run" / "stages" / "code_rl").glob("step_*")) == [
        "step_0001", "step_0002"
    ]

    monkeypatch.delenv("LEDGER_FAIL_AT")
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    assert manifest.status == "finished"
    assert [s.attempts for s in manifest.stages] == [1, 1, 2, 1]
    assert manifest.stage("code_rl").error is None
    # steps 1-2 of code_rl were not redone: the ledger holds each step once
    assert _state(manifest, "mopd")["history"] == kit.history("sft", "math_rl", "code_rl", "mopd")
    started = [e["stage"] for e in _events(events) if e["event"] == "started"]
    assert started == ["sft", "math_rl", "code_rl", "code_rl", "mopd"]


def test_finished_run_never_runs_a_stage_again(tmp_path, ledger_registry, kit, monkeypatch):
    _run(tmp_path, kit.config(), ledger_registry, kit)
    events = tmp_path / "events.jsonl"
    monkeypatch.setenv("LEDGER_EVENTS", str(events))
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    assert [s.attempts for s in manifest.stages] == [1, 1, 1, 1]
    assert [e["event"] for e in _events(events)] == ["cascade_finished"]  # no step, no stage hook


def test_changed_config_is_refused_unless_allowed(tmp_path, ledger_registry, kit):
    config = kit.config()
    _run(tmp_path, config, ledger_registry, kit)
    changed = kit.config()
    changed["stages"][3]["hparams"]["steps"] = 5
    with pytest.raises(RunDirError) as info:
        _run(tmp_path, changed, ledger_registry, kit)
    assert "stages[3].hparams.steps: '<unset>' -> 5" in str(info.value)
    assert "--allow-config-change" in str(info.value)

    changed["stages"].append({"name": "extra", "kind": "sft", "data": {"math": "math_train"}})
    manifest = _run(tmp_path, changed, ledger_registry, kit, allow_config_change=True)
    # finished stages are kept as they are; the new stage runs
    assert [s.attempts for s in manifest.stages] == [1, 1, 1, 1, 1]
    assert _state(manifest, "extra")["history"] == kit.history("sft", "math_rl", "code_rl", "mopd", "extra")
    assert len(manifest.config_history) == 1
    assert "steps: 5" in (tmp_path / "run" / "config.yaml").read_text()


def test_lost_checkpoint_of_a_finished_stage_is_refused(tmp_path, ledger_registry, kit):
    import shutil

    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    shutil.rmtree(manifest.stage("math_rl").result["checkpoint"]["path"])
    with pytest.raises(RunDirError, match="stage 'math_rl' is finished but its checkpoint is missing"):
        _run(tmp_path, kit.config(), ledger_registry, kit)


def test_a_second_run_on_the_same_directory_is_refused(tmp_path, ledger_registry, kit):
    plan = _plan(tmp_path, kit.config(), ledger_registry, kit)
    plan.run_dir.mkdir(parents=True)
    with run_lock(plan.run_dir), pytest.raises(RunDirError, match="another cascade run"):
        Sequencer(plan, registry=ledger_registry).run()
    assert not (plan.run_dir / "manifest.json").exists()


def test_backend_returning_a_missing_checkpoint_fails_the_stage(tmp_path, ledger_registry, kit, monkeypatch):
    import ledger_plugin

    original = ledger_plugin.LedgerBackend.run_stage

    def lose_checkpoint(self, spec, reporter):
        result = original(self, spec, reporter)
        if spec.name == "math_rl":
            result.checkpoint = type(result.checkpoint)(path=str(tmp_path / "nowhere"))
        return result

    monkeypatch.setattr(ledger_plugin.LedgerBackend, "run_stage", lose_checkpoint)
    with pytest.raises(StageFailed, match="output checkpoint does not exist"):
        _run(tmp_path, kit.config(), ledger_registry, kit)
    assert load_manifest(tmp_path / "run").stage("math_rl").status == "failed"


def test_config_fixed_after_a_refused_first_attempt_is_accepted(tmp_path, ledger_registry, kit):
    from cascade_plugins.config import ConfigError

    config = kit.config()
    config["stages"][1]["hparams"]["steps"] = 0  # only the backend's check refuses this
    with pytest.raises(ConfigError, match="positive integer"):
        _run(tmp_path, config, ledger_registry, kit)
    assert load_manifest(tmp_path / "run").stages[0].attempts == 0  # refused before any stage ran
    manifest = _run(tmp_path, kit.config(), ledger_registry, kit)
    assert manifest.status == "finished" and len(manifest.config_history) == 1
