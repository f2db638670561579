"""Manifest atomicity and validation; the run/status/report commands in-process."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cascade_plugins import atomic as atomic_module
from cascade_plugins.atomic import write_text_atomic
from cascade_plugins.cascade.manifest import (
    ManifestError,
    RunManifest,
    StageRecord,
    load_manifest,
    save_manifest,
)
from cascade_plugins.cli import cli


def _manifest(status: str = "pending") -> RunManifest:
    return RunManifest(config_hash="abc", base_dir="/", backend="ledger", status=status,
                       stages=[StageRecord(name="sft", kind="sft")])


def test_failed_write_leaves_the_old_manifest_and_no_temp_file(tmp_path, monkeypatch):
    save_manifest(tmp_path, _manifest("pending"))

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(atomic_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_manifest(tmp_path, _manifest("finished"))
    monkeypatch.undo()
    assert load_manifest(tmp_path).status == "pending"
    assert sorted(os.listdir(tmp_path)) == ["manifest.json"]


def test_atomic_write_replaces_content(tmp_path):
    target = tmp_path / "f.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two" and sorted(os.listdir(tmp_path)) == ["f.txt"]


def test_invalid_manifests_are_named(tmp_path):
    with pytest.raises(ManifestError, match="not a cascade run directory"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text('{"config_hash": "x", "stages": [')
    with pytest.raises(ManifestError, match="not a valid run manifest"):
        load_manifest(tmp_path)
    data = json.loads(_manifest().model_dump_json())
    data["stages"][0]["status"] = "done"
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="status"):
        load_manifest(tmp_path)


def test_run_status_report_and_config_change_refusal(tmp_path, ledger_site, kit, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kit.write(tmp_path / "cascade.yaml", kit.config())
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "cascade.yaml"])
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / "runs" / "cascade"
    assert load_manifest(run_dir).status == "finished"
    assert "| domain | sft | math_rl | code_rl | mopd |" in result.output

    # an override changes the config: refused with the difference, before any compute
    result = runner.invoke(cli, ["run", "cascade.yaml", "stages.0.hparams.validation.math=0.9"])
    assert result.exit_code == 2
    assert "stages[0].hparams.validation.math: 0.2 -> 0.9" in result.output
    result = runner.invoke(cli, ["run", "--resume", str(run_dir)])
    assert result.exit_code == 0, result.output

    result = runner.invoke(cli, ["status", str(run_dir), "--json"])
    assert result.exit_code == 0
    status = json.loads(result.output)
    assert status["alive"] is False and [s["status"] for s in status["stages"]] == ["finished"] * 4
    result = runner.invoke(cli, ["status", str(run_dir)])
    assert result.exit_code == 0 and "teacher for math = math_rl" in result.output

    out = tmp_path / "elsewhere"
    result = runner.invoke(cli, ["report", str(run_dir), "--output", str(out), "--tolerance", "0.5"])
    assert result.exit_code == 0
    assert "None beyond the tolerance." in (out / "report.md").read_text()
    assert (out / "report.png").is_file()


def test_cli_refusals_exit_2(tmp_path: Path, ledger_site, kit, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["run", "--resume", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a cascade run directory" in result.output
    result = runner.invoke(cli, ["status", str(tmp_path)])
    assert result.exit_code == 2
    config = kit.config()
    config["stages"][1]["init"] = "mopd"
    kit.write(tmp_path / "bad.yaml", config)
    result = runner.invoke(cli, ["run", "bad.yaml"])
    assert result.exit_code == 2 and "stages[1].init" in result.output
    assert not (tmp_path / "runs").exists()  # refused before anything was written


def test_paths_inside_the_run_directory_are_stored_relative_and_loaded_absolute(tmp_path):
    run_dir = tmp_path / "run"
    inside = str(run_dir / "stages" / "sft" / "step_3")
    manifest = RunManifest(
        config_hash="abc", base_dir=str(tmp_path), backend="ledger",
        datasets={"train": {"path": str(run_dir / "data" / "train.jsonl"), "generator": "g"}},
        stages=[StageRecord(
            name="sft", kind="sft", status="finished", log_dir=str(run_dir / "logs" / "sft"),
            init={"path": "/models/base", "format": "hf"},
            teachers={"math": {"checkpoint": {"path": inside}, "rule": "stage"}},
            result={"stage": "sft", "checkpoint": {"path": inside}, "metrics": [], "validation": {},
                    "evaluations": [{"step": 1, "scores": {},
                                     "checkpoint": {"path": str(run_dir / "stages/sft/step_1")}}]},
            interrupted={"reason": "SIGTERM", "step": 2, "checkpoint": str(run_dir / "stages/sft/step_2")},
        )],
        registry={"math": [{"stage": "sft", "step": 3, "checkpoint": {"path": inside}, "score": 0.5}]},
    )
    save_manifest(run_dir, manifest)
    stored = json.loads((run_dir / "manifest.json").read_text())
    assert str(run_dir) not in json.dumps(stored)
    record = stored["stages"][0]
    assert record["result"]["checkpoint"]["path"] == "stages/sft/step_3"
    assert record["result"]["evaluations"][0]["checkpoint"]["path"] == "stages/sft/step_1"
    assert record["teachers"]["math"]["checkpoint"]["path"] == "stages/sft/step_3"
    assert record["interrupted"]["checkpoint"] == "stages/sft/step_2"
    assert record["log_dir"] == "logs/sft"
    assert record["init"]["path"] == "/models/base"  # outside the run directory: absolute
    assert stored["datasets"]["train"]["path"] == "data/train.jsonl"
    assert stored["registry"]["math"][0]["checkpoint"]["path"] == "stages/sft/step_3"
    assert stored["base_dir"] == str(tmp_path) and stored["format_version"] == 2

    moved = tmp_path / "moved"
    (run_dir).rename(moved)
    loaded = load_manifest(moved)
    assert loaded.stages[0].result["checkpoint"]["path"] == str(moved / "stages" / "sft" / "step_3")
    assert loaded.stages[0].interrupted["checkpoint"] == str(moved / "stages" / "sft" / "step_2")
    assert loaded.registry["math"][0]["checkpoint"]["path"] == str(moved / "stages" / "sft" / "step_3")
    assert loaded.stages[0].init["path"] == "/models/base"
    save_manifest(moved, loaded)
    assert json.loads((moved / "manifest.json").read_text())["stages"] == stored["stages"]


def test_a_manifest_of_a_newer_format_is_refused_by_name(tmp_path):
    data = json.loads(_manifest().model_dump_json())
    data["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=r"has format 99; .* reads up to 2: upgrade"):
        load_manifest(tmp_path)


def test_report_on_a_folder_that_is_no_run_writes_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["report", str(tmp_path / "missing"), "--output", str(tmp_path / "out")])
    assert result.exit_code == 2 and "not a cascade run directory" in result.output
    assert not (tmp_path / "missing").exists() and not (tmp_path / "out").exists()


def _unwrapped(text: str) -> str:
    """The terminal output with the console's line wrapping undone."""
    return " ".join(text.split())


def test_a_change_to_finished_stages_is_not_applied_and_their_config_is_kept(tmp_path, ledger_site, kit, monkeypatch):
    monkeypatch.chdir(tmp_path)
    kit.write(tmp_path / "cascade.yaml", kit.config())
    runner = CliRunner()
    assert runner.invoke(cli, ["run", "cascade.yaml", "--no-report"]).exit_code == 0
    run_dir = tmp_path / "runs" / "cascade"
    first = load_manifest(run_dir)
    first_hash = first.config_hash
    assert {s.config_hash for s in first.stages} == {first_hash}
    assert first.stage("sft").ran_with["hparams"]["steps"] == 3

    # every stage is finished: the longer schedule is accepted for what comes next, applied to none of them
    result = runner.invoke(cli, ["run", "cascade.yaml", "hparams.common.steps=5", "--allow-config-change",
                                 "--no-report"])
    assert result.exit_code == 0, result.output
    assert "stage sft is finished and does not run again: its changes are not applied (hparams.steps: 3 -> 5)" \
        in _unwrapped(result.output)
    manifest = load_manifest(run_dir)
    assert manifest.config_hash != first_hash
    for record in manifest.stages:
        assert record.config_hash == first_hash and record.ran_with["hparams"]["steps"] == 3
        assert record.result["metrics"][-1]["step"] == 3
    assert manifest.config_history[0]["not_applied"]["mopd"] == ["hparams.steps: 3 -> 5"]
    # the config the stages ran with is still on disk, next to the one the run goes on with
    kept = yaml.safe_load((run_dir / manifest.config_history[0]["config"]).read_text())
    assert kept["hparams"]["common"]["steps"] == 3
    assert yaml.safe_load((run_dir / "configs" / f"{manifest.config_hash}.yaml").read_text())[
        "hparams"]["common"]["steps"] == 5
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["hparams"]["common"]["steps"] == 5
    status = runner.invoke(cli, ["status", str(run_dir)])
    assert f"sft: ran with configs/{first_hash}.yaml (an earlier config); not applied to it: hparams.steps: 3 -> 5" \
        in _unwrapped(status.output)

    # a stage added now runs under the new config, and says so
    config = kit.config()
    config["stages"].append({"name": "extra", "kind": "sft", "data": {"math": "math_train"}})
    kit.write(tmp_path / "cascade.yaml", config)
    result = runner.invoke(cli, ["run", "cascade.yaml", "hparams.common.steps=5", "--allow-config-change",
                                 "--no-report"])
    assert result.exit_code == 0, result.output
    manifest = load_manifest(run_dir)
    extra = manifest.stage("extra")
    assert extra.ran_with["hparams"]["steps"] == 5 and extra.result["metrics"][-1]["step"] == 5
    assert extra.config_hash == manifest.config_hash and manifest.stage("sft").config_hash == first_hash
    assert (run_dir / "configs" / f"{extra.config_hash}.yaml").is_file()
    assert len(list((run_dir / "configs").iterdir())) == 3
