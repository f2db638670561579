"""Ctrl-C and SIGTERM on a real ``cascade run`` process: the running stage saves a checkpoint of the
step it is in, is marked ``interrupted`` (never ``failed``), ``cascade status`` shows it and the
live step, and the next run resumes from that checkpoint with every step done exactly once."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins.cascade.manifest import load_manifest

STAGES = ("sft", "math_rl", "code_rl", "mopd")


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _start(config: Path, run_dir: Path, env: dict[str, str], *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cascade_plugins", "run", str(config), "--run-dir", str(run_dir), "--no-report",
         *extra],
        env=env, cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(condition: Any, process: subprocess.Popen[str], limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def _stage_state(run_dir: Path, stage: str) -> Any:
    try:
        return load_manifest(run_dir).stage(stage)
    except Exception:
        return None  # not written yet


@pytest.fixture
def setup(tmp_path, cli_env, kit):
    config = kit.config()
    config["stages"][1]["hparams"]["steps"] = 6
    path = kit.write(tmp_path / "cascade.yaml", config)
    events = tmp_path / "events.jsonl"
    return path, tmp_path / "run", events, {**cli_env, "LEDGER_EVENTS": str(events)}


def _check_resumed(run_dir: Path, events: Path, kit: Any, stopped_at: int) -> None:
    manifest = load_manifest(run_dir)
    assert manifest.status == "finished" and [s.status for s in manifest.stages] == ["finished"] * 4
    assert manifest.stage("math_rl").attempts == 2 and manifest.stage("math_rl").interrupted is None
    recorded = _events(events)
    steps = [(e["stage"], e["step"]) for e in recorded if e["event"] == "step"]
    assert len(steps) == len(set(steps))  # nothing done twice
    assert [n for s, n in steps if s == "math_rl"] == [1, 2, 3, 4, 5, 6]
    # the second attempt started right after the step saved on the way out
    pids = [e["pid"] for e in recorded if e["event"] == "step" and e["stage"] == "math_rl"]
    assert pids[:stopped_at] == [pids[0]] * stopped_at and len(set(pids[stopped_at:])) == 1
    assert pids[stopped_at] != pids[0]
    final = json.loads((run_dir / "stages" / "mopd" / "step_0003" / "state.json").read_text())
    history = kit.history("sft", "math_rl", "code_rl", "mopd")
    assert final["history"] == [h for h in history if not h.startswith("math_rl:")][:4] + [
        f"math_rl:{n}" for n in range(1, 7)] + [h for h in history if h.startswith(("code_rl", "mopd"))]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_the_current_step_marks_interrupted_and_resumes(setup, kit, signum):
    config, run_dir, events, env = setup
    process = _start(config, run_dir, {**env, "LEDGER_STEP_SECONDS": "0.3"})
    _wait_for(lambda: (run_dir / "stages" / "math_rl" / "step_0002").exists(), process)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert process.returncode == 128 + signum, stderr
    assert f"{name}: stopping after the current step" in stderr
    assert f"resume with: cascade run --resume {run_dir}" in stderr and "Traceback" not in stderr

    manifest = load_manifest(run_dir)
    record = manifest.stage("math_rl")
    assert manifest.status == "interrupted"
    assert record.status == "interrupted" and record.error is None
    stopped = [e for e in _events(events) if e["event"] == "stopped"]
    assert [(e["stage"], e["reason"]) for e in stopped] == [("math_rl", name)]
    step = stopped[0]["step"]
    assert 2 <= step < 6 and record.step == step
    assert record.interrupted["reason"] == name and record.interrupted["step"] == step
    saved = Path(record.interrupted["checkpoint"])
    assert saved == run_dir / "stages" / "math_rl" / f"step_{step:04d}" and saved.is_dir()
    assert [s.status for s in manifest.stages] == ["finished", "interrupted", "pending", "pending"]

    status = kit.cli(["status", str(run_dir)], env, cwd=config.parent)
    assert status.returncode == 0
    row = next(line for line in status.stdout.splitlines() if "math_rl" in line)
    assert "interrupted" in row and f"{name}: step {step} saved" in row and f"{step}/6" in row

    resumed = kit.cli(["run", "--resume", str(run_dir), "--no-report"], env, cwd=config.parent)
    assert resumed.returncode == 0, resumed.stderr
    _check_resumed(run_dir, events, kit, step)


def test_status_shows_the_live_step_of_a_running_stage(setup, kit):
    config, run_dir, _, env = setup
    slow = kit.config()
    slow["stages"][1]["hparams"]["steps"] = 200  # long enough to be looked at twice while it runs
    kit.write(config, slow)
    process = _start(config, run_dir, {**env, "LEDGER_STEP_SECONDS": "0.2"})
    _wait_for(lambda: getattr(_stage_state(run_dir, "math_rl"), "step", None) is not None, process)
    status = kit.cli(["status", str(run_dir)], env, cwd=config.parent)
    row = next(line for line in status.stdout.splitlines() if "math_rl" in line)
    assert "running" in row and re.search(r"\b\d+/200\b", row), row
    live = json.loads(kit.cli(["status", str(run_dir), "--json"], env, cwd=config.parent).stdout)
    assert live["alive"] is True
    math_rl = next(s for s in live["stages"] if s["name"] == "math_rl")
    assert math_rl["status"] == "running" and math_rl["total_steps"] == 200 and 1 <= math_rl["step"] < 200
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143


def test_a_step_that_does_not_finish_in_time_is_stopped_without_a_checkpoint(setup, kit):
    config, run_dir, _, env = setup
    slow = {**env, "LEDGER_STEP_SECONDS": "300", "LEDGER_IGNORE_STOP": "1"}
    process = _start(config, run_dir, slow, "--stop-timeout", "1")
    _wait_for(lambda: getattr(_stage_state(run_dir, "sft"), "status", None) == "running", process)
    process.send_signal(signal.SIGTERM)
    # bounded: the 300 s step is cut short once the 1 s grace has passed
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    record = load_manifest(run_dir).stage("sft")
    assert record.status == "interrupted" and record.interrupted["checkpoint"] is None
    assert record.interrupted["reason"] == "SIGTERM (no checkpoint within 1 s)"
    assert "nothing saved" in kit.cli(["status", str(run_dir)], env, cwd=config.parent).stdout
    assert not list((run_dir / "stages" / "sft").glob("step_*"))

    resumed = kit.cli(["run", "--resume", str(run_dir), "--no-report"], env, cwd=config.parent)
    assert resumed.returncode == 0, resumed.stderr
    assert [s.status for s in load_manifest(run_dir).stages] == ["finished"] * 4


def test_a_second_signal_stops_at_once(setup, kit):
    config, run_dir, _, env = setup
    process = _start(config, run_dir, {**env, "LEDGER_STEP_SECONDS": "300", "LEDGER_IGNORE_STOP": "1"})
    _wait_for(lambda: getattr(_stage_state(run_dir, "sft"), "status", None) == "running", process)
    process.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert process.poll() is None  # still finishing its step (the default grace is 60 s)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    record = load_manifest(run_dir).stage("sft")
    assert record.status == "interrupted" and record.interrupted == {**record.interrupted, "reason": "SIGINT",
                                                                     "checkpoint": None}
