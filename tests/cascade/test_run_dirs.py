"""Run directories behave as users expect: they can be moved or copied (the manifest stores paths
relative to the run directory), everything in them is readable by another user as the umask says,
and a stage's metrics reach metrics.jsonl, TensorBoard and an offline W&B run, once per step
however often it was killed, stopped and resumed."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from cascade_plugins.cascade.manifest import MANIFEST_NAME, load_manifest

HAS_WANDB = importlib.util.find_spec("wandb") is not None
NOBODY = 65534


def _run(config: Path, run_dir: Path, env: dict[str, str], kit: Any, *extra: str) -> Any:
    return kit.cli(["run", str(config), "--run-dir", str(run_dir), "--no-report", *extra], env, cwd=config.parent)


def _stored(run_dir: Path) -> str:
    return (run_dir / MANIFEST_NAME).read_text()


# -- move, copy, migrate (ledger backend) ---------------------------------------------------------


def test_a_moved_run_directory_resumes_where_it_is_now(tmp_path, cli_env, kit):
    config = kit.write(tmp_path / "cascade.yaml", kit.config())
    first = tmp_path / "first"
    killed = _run(config, first, {**cli_env, "LEDGER_KILL_AT": "code_rl:2"}, kit)
    assert killed.returncode == -signal.SIGKILL
    assert str(first) not in _stored(first)  # every path inside the run directory is relative
    stored = json.loads(_stored(first))
    assert stored["stages"][0]["result"]["checkpoint"]["path"] == "stages/sft/step_0003"
    assert stored["datasets"]["math_train"]["path"] == "data/math_train.jsonl"

    moved = tmp_path / "elsewhere" / "moved"
    moved.parent.mkdir()
    shutil.move(str(first), moved)
    status = kit.cli(["status", str(moved)], cli_env, cwd=tmp_path)
    assert status.returncode == 0 and "stages/sft/step_0003" in status.stdout

    resumed = kit.cli(["run", "--resume", str(moved), "--no-report"], cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    manifest = load_manifest(moved)
    assert [s.status for s in manifest.stages] == ["finished"] * 4
    assert manifest.stage("code_rl").attempts == 2  # resumed from its own checkpoint, in the new place
    paths = [s.result["checkpoint"]["path"] for s in manifest.stages]
    assert paths == [str(moved / "stages" / s / "step_0003") for s in ("sft", "math_rl", "code_rl", "mopd")]
    assert all(Path(t["checkpoint"]["path"]).is_relative_to(moved) for t in manifest.stage("mopd").teachers.values())
    final = json.loads((moved / "stages" / "mopd" / "step_0003" / "state.json").read_text())
    assert final["history"] == kit.history("sft", "math_rl", "code_rl", "mopd")


def test_a_copied_run_directory_uses_its_own_checkpoints(tmp_path, cli_env, kit):
    config = kit.write(tmp_path / "cascade.yaml", kit.config())
    original = tmp_path / "original"
    killed = _run(config, original, {**cli_env, "LEDGER_KILL_AFTER": "math_rl"}, kit)
    assert killed.returncode == -signal.SIGKILL
    before = sorted(str(p.relative_to(original)) for p in original.rglob("*"))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy)
    # the copy continues with its own checkpoints; the original is left as it was
    shutil.rmtree(original / "stages" / "sft")
    resumed = kit.cli(["run", "--resume", str(copy), "--no-report"], cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    manifest = load_manifest(copy)
    assert manifest.stage("code_rl").init["path"] == str(copy / "stages" / "math_rl" / "step_0003")
    assert all(Path(s.result["checkpoint"]["path"]).is_relative_to(copy) for s in manifest.stages)
    assert sorted(str(p.relative_to(original)) for p in original.rglob("*")) == [
        p for p in before if not p.startswith("stages/sft")
    ]
    refused = kit.cli(["run", "--resume", str(original), "--no-report"], cli_env, cwd=tmp_path)
    assert refused.returncode == 2 and "stage 'sft' is finished but its checkpoint is missing" in refused.stderr


def _as_format_1(run_dir: Path, old_root: Path) -> None:
    """Rewrite a manifest as format 1 wrote it: every path absolute, under ``old_root``."""
    data = json.loads(_stored(run_dir))

    def absolute(ref: dict[str, Any], key: str = "path") -> None:
        if ref and not os.path.isabs(ref[key]):
            ref[key] = str(old_root / ref[key])

    for dataset in data["datasets"].values():
        absolute(dataset)
    for stage in data["stages"]:
        for key in ("step", "total_steps", "interrupted", "log_dir"):
            stage.pop(key, None)
        absolute(stage["init"] or {})
        for teacher in stage["teachers"].values():
            absolute(teacher["checkpoint"])
        if stage["result"]:
            absolute(stage["result"]["checkpoint"])
    for entries in data["registry"].values():
        for entry in entries:
            absolute(entry["checkpoint"])
    data["format_version"] = 1
    (run_dir / MANIFEST_NAME).write_text(json.dumps(data))


def test_a_format_1_manifest_with_absolute_paths_is_migrated_after_a_move(tmp_path, cli_env, kit):
    config = kit.write(tmp_path / "cascade.yaml", kit.config())
    old = tmp_path / "old"
    killed = _run(config, old, {**cli_env, "LEDGER_KILL_AFTER": "math_rl"}, kit)
    assert killed.returncode == -signal.SIGKILL
    _as_format_1(old, old)
    assert str(old / "stages" / "sft" / "step_0003") in _stored(old)
    new = tmp_path / "new"
    shutil.move(str(old), new)

    manifest = load_manifest(new)
    assert manifest.format_version == 2
    assert manifest.stage("math_rl").result["checkpoint"]["path"] == str(new / "stages" / "math_rl" / "step_0003")
    assert manifest.datasets["code_train"]["path"] == str(new / "data" / "code_train.jsonl")
    resumed = kit.cli(["run", "--resume", str(new), "--no-report"], cli_env, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert str(old) not in _stored(new) and json.loads(_stored(new))["format_version"] == 2
    assert [s.attempts for s in load_manifest(new).stages] == [1, 1, 1, 1]  # nothing ran again


def test_paths_outside_the_run_directory_stay_absolute(tmp_path, cli_env, kit):
    checkpoint = tmp_path / "models" / "coder"
    checkpoint.mkdir(parents=True)
    (checkpoint / "state.json").write_text(json.dumps({"history": ["coder"]}))
    config = kit.config()
    config["stages"][3]["teachers"]["code"] = str(checkpoint)
    path = kit.write(tmp_path / "cascade.yaml", config)
    done = _run(path, tmp_path / "run", cli_env, kit)
    assert done.returncode == 0, done.stderr
    stored = json.loads(_stored(tmp_path / "run"))
    assert stored["stages"][3]["teachers"]["code"]["checkpoint"]["path"] == str(checkpoint)
    assert stored["stages"][3]["teachers"]["math"]["checkpoint"]["path"] == "stages/math_rl/step_0003"


# -- the local backend for real: killed, moved, stopped, resumed ------------------------------------

TINY = {
    "name": "tiny",
    "backend": "local",
    "plugins": ["local", "synthetic", "math"],
    "model": {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
              "max_position_embeddings": 64, "tokenizer": {"type": "char"}},
    "domains": {"math": "math"},
    "data": {"math_train": {"generator": "arithmetic", "n": 64, "seed": 0, "split": "train", "max_operand": 9},
             "math_val": {"generator": "arithmetic", "n": 8, "seed": 0, "split": "validation", "max_operand": 9}},
    "eval": {"sets": {"math": {"data": "math_val"}}},
    "hparams": {"common": {"num_threads": 1, "device": "cpu", "max_new_tokens": 6, "save_every": 20}},
    "logger": {"tensorboard_enabled": True, "wandb_enabled": HAS_WANDB},
    "stages": [{"name": "sft", "kind": "sft", "data": {"math": "math_train"},
                "hparams": {"steps": 300, "lr": 1.0e-3, "batch_size": 4}}],
}


def _umask_022() -> None:
    os.umask(0o022)


def _start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_PLUGINS"}
    return subprocess.Popen([sys.executable, "-m", "cascade_plugins", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=_umask_022)


def _logged_steps(log_dir: Path) -> list[int]:
    path = log_dir / "metrics.jsonl"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the line being written
            rows.append(json.loads(line))
    return [r["step"] for r in rows if "loss" in r]


def _wait_for_steps(log_dir: Path, count: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 300
    while len(_logged_steps(log_dir)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _records_beyond_the_checkpoint(run_dir: Path, checkpoints: Path) -> bool:
    kept = sorted(int(p.name.removeprefix("step_")) for p in checkpoints.glob("step_*"))
    return bool(kept) and max(_logged_steps(run_dir / "logs" / "sft"), default=0) > kept[-1]


@pytest.fixture
def shared_tmp() -> Any:
    """A folder every user can enter (pytest's own tmp folders are owner-only)."""
    folder = Path(tempfile.mkdtemp(prefix="cascade-shared-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_local_stage_killed_moved_stopped_and_resumed_keeps_one_record_per_step(shared_tmp):
    pytest.importorskip("torch")
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = shared_tmp / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY, sort_keys=False))
    first = shared_tmp / "first"
    process = _start(["run", str(config), "--run-dir", str(first), "--no-report"], shared_tmp)
    checkpoints = first / "stages" / "sft" / "checkpoints"
    _wait_for_steps(first / "logs" / "sft", 30, process)
    deadline = time.monotonic() + 300
    while not _records_beyond_the_checkpoint(first, checkpoints):  # a fast machine may be at one
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    process.kill()  # SIGKILL: the records go further than the last checkpoint (every 20 steps)
    process.communicate()
    (kept,) = checkpoints.glob("step_*")
    kept_step = int(kept.name.removeprefix("step_"))
    assert kept_step >= 20 and kept_step % 20 == 0
    assert max(_logged_steps(first / "logs" / "sft")) > kept_step

    run_dir = shared_tmp / "moved"
    shutil.move(str(first), run_dir)
    log_dir = run_dir / "logs" / "sft"
    process = _start(["run", "--resume", str(run_dir), "--no-report"], shared_tmp)
    _wait_for_steps(log_dir, 60, process)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    record = load_manifest(run_dir).stage("sft")
    step = record.interrupted["step"]
    assert record.status == "interrupted" and step >= 60 and record.interrupted["reason"] == "SIGTERM"
    saved = run_dir / "stages" / "sft" / "checkpoints" / f"step_{step:06d}"
    assert record.interrupted["checkpoint"] == str(saved) and (saved / "config.json").is_file()

    done = _start(["run", "--resume", str(run_dir)], shared_tmp)
    _, stderr = done.communicate(timeout=300)
    assert done.returncode == 0, stderr
    manifest = load_manifest(run_dir)
    result = manifest.stage("sft").result
    assert manifest.status == "finished" and result["checkpoint"]["path"] == str(
        run_dir / "stages" / "sft" / "checkpoints" / "step_000300")
    assert [m["step"] for m in result["metrics"]] == list(range(1, 301))
    log = (run_dir / "cascade.log").read_text()
    assert f"resuming from step {kept_step}" in log and f"resuming from step {step}" in log
    assert str(first) not in _stored(run_dir)

    # metrics.jsonl and TensorBoard hold every step once: what ran after the kill's checkpoint was
    # dropped, then written again
    assert _logged_steps(log_dir) == list(range(1, 301))
    events = EventAccumulator(str(log_dir))
    events.Reload()
    loss = events.Scalars("loss")
    assert [e.step for e in loss] == list(range(1, 301))
    assert [e.value for e in loss] == pytest.approx([m["loss"] for m in result["metrics"]], rel=1e-6)
    assert [e.step for e in events.Scalars("validation/math")] == [300]
    assert len(list(log_dir.glob("events.out.tfevents.*"))) == 3  # one file per process

    if HAS_WANDB:
        # one W&B run per stage: three offline segments, the stage's run id (a new id only where a
        # crashed process's W&B service still held the run when the stage resumed)
        run_id = (log_dir / "wandb_run_id").read_text().strip()
        segments = sorted((log_dir / "wandb").glob("offline-run-*"), key=lambda p: p.stat().st_mtime)
        assert len(segments) >= 3 and re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", segments[-1].name)
        records = (segments[-1] / f"run-{run_id}.wandb").read_bytes()
        assert b"tiny" in records and b"sft" in records and b"loss" in records  # group, name, a metric

    # the report plots the curves too
    assert "training curves" in (run_dir / "report.md").read_text()
    _check_shared(run_dir)


def _check_shared(run_dir: Path) -> None:
    """Written under umask 022: files 0644 (or more), folders 0755; and another user reads them."""
    for path in [run_dir, *run_dir.rglob("*")]:
        if path.is_symlink() or path.name == ".lock":
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        wanted = 0o755 if path.is_dir() else 0o644
        assert mode & wanted == wanted, f"{path} is {oct(mode)}"
    if os.geteuid() != 0:
        return
    def as_nobody() -> None:
        os.setgid(NOBODY)
        os.setuid(NOBODY)

    # another user reads every file (cat fails on the first one it may not open)
    read = subprocess.run(["find", str(run_dir), "-type", "f", "!", "-name", ".lock", "-exec", "cat", "{}", "+"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, preexec_fn=as_nobody,
                          timeout=120)
    assert read.returncode == 0 and not read.stderr, read.stderr
    names = {p.name for p in run_dir.rglob("*")}
    assert {"model.safetensors", "report.md", "manifest.json", "metrics.jsonl", "result.json"} <= names
