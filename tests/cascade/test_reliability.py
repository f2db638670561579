"""SIGKILL a real ``cascade run`` process at several points, resume it, and check that every
stage completed exactly once, no checkpoint was lost and the manifest is valid."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins.cascade.manifest import ManifestError, load_manifest

STAGES = ("sft", "math_rl", "code_rl", "mopd")

#: runs ``cascade`` with os.replace wrapped: on the N-th write of manifest.json the temp file is
#: cut in half and the process SIGKILLs itself before the rename (a crash mid-write)
TORN_MANIFEST_WRAPPER = """
import os, signal, sys
target = int(os.environ["KILL_ON_MANIFEST_WRITE"])
real_replace = os.replace
count = 0
def replace(src, dst, *args, **kwargs):
    global count
    if str(dst).endswith("manifest.json"):
        count += 1
        if count == target:
            os.truncate(src, os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
from cascade_plugins.cli import cli
cli(sys.argv[1:], prog_name="cascade")
"""

#: the report has a plot only where matplotlib is installed
PLOTS = importlib.util.find_spec("matplotlib") is not None


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _check_complete_run(run_dir: Path, events: Path, kit: Any) -> None:
    """The invariants after any sequence of crashes and resumes."""
    manifest = load_manifest(run_dir)  # validates
    assert manifest.status == "finished"
    assert [s.status for s in manifest.stages] == ["finished"] * 4
    for index, stage in enumerate(STAGES):
        folder = run_dir / "stages" / stage
        # every step checkpoint exists, each holding exactly the steps up to it
        assert sorted(p.name for p in folder.glob("step_*")) == ["step_0001", "step_0002", "step_0003"]
        history = kit.history(*STAGES[: index + 1])
        for step in (1, 2, 3):
            state = json.loads((folder / f"step_{step:04d}" / "state.json").read_text())
            assert state["history"] == history[: len(history) - 3 + step]
        assert manifest.stage(stage).result["checkpoint"]["path"] == str(folder / "step_0003")
    recorded = _events(events)
    # no step was committed twice, whatever was killed when
    steps = [(e["stage"], e["step"]) for e in recorded if e["event"] == "step"]
    assert len(steps) == len(set(steps))
    finished = [e["stage"] for e in recorded if e["event"] == "finished"]
    assert sorted(finished) == sorted(STAGES)  # the finished hook fired exactly once per stage
    assert not list(run_dir.glob(".manifest.json.*.tmp"))


@pytest.fixture
def setup(tmp_path, cli_env, kit):
    config = kit.write(tmp_path / "cascade.yaml", kit.config())
    events = tmp_path / "events.jsonl"
    env = {**cli_env, "LEDGER_EVENTS": str(events)}
    return config, tmp_path / "run", events, env


def _run(config: Path, run_dir: Path, env: dict[str, str], kit: Any, **extra: str):
    return kit.cli(["run", str(config), "--run-dir", str(run_dir), "--no-report"], {**env, **extra},
                   cwd=config.parent)


def test_sigkill_during_a_stage(setup, kit):
    config, run_dir, events, env = setup
    killed = _run(config, run_dir, env, kit, LEDGER_KILL_AT="code_rl:2")
    assert killed.returncode == -signal.SIGKILL
    manifest = load_manifest(run_dir)
    assert [s.status for s in manifest.stages] == ["finished", "finished", "running", "pending"]
    status = kit.cli(["status", str(run_dir)], env, cwd=config.parent)
    assert status.returncode == 0 and "interrupted" in status.stdout

    resumed = kit.cli(["run", "--resume", str(run_dir), "--no-report"], env, cwd=config.parent)
    assert resumed.returncode == 0, resumed.stderr
    _check_complete_run(run_dir, events, kit)
    assert [s.attempts for s in load_manifest(run_dir).stages] == [1, 1, 2, 1]
    # the interrupted stage resumed from its own step-1 checkpoint
    steps = [(e["stage"], e["step"], e["pid"]) for e in _events(events) if e["event"] == "step"]
    assert [(s, n) for s, n, _ in steps if s == "code_rl"] == [("code_rl", 1), ("code_rl", 2), ("code_rl", 3)]
    assert len({pid for s, n, pid in steps if s == "code_rl"}) == 2


def test_sigkill_between_stages(setup, kit):
    config, run_dir, events, env = setup
    killed = _run(config, run_dir, env, kit, LEDGER_KILL_AFTER="math_rl")
    assert killed.returncode == -signal.SIGKILL
    manifest = load_manifest(run_dir)
    assert [s.status for s in manifest.stages] == ["finished", "finished", "pending", "pending"]

    resumed = _run(config, run_dir, env, kit)  # the same command again continues the run
    assert resumed.returncode == 0, resumed.stderr
    _check_complete_run(run_dir, events, kit)
    assert [s.attempts for s in load_manifest(run_dir).stages] == [1, 1, 1, 1]


@pytest.mark.parametrize("write", [1, 7, 12])
def test_sigkill_while_the_manifest_is_written(setup, kit, write):
    """Write 1 creates the manifest (2-5 record generated data); 7 records sft finished; 12 records
    mopd running."""
    config, run_dir, events, env = setup
    killed = subprocess.run(
        [sys.executable, "-c", TORN_MANIFEST_WRAPPER, "run", str(config), "--run-dir", str(run_dir), "--no-report"],
        env={**env, "KILL_ON_MANIFEST_WRITE": str(write)}, cwd=config.parent, capture_output=True, text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list(run_dir.glob(".manifest.json.*.tmp"))) == 1  # the torn write never replaced the manifest
    if write == 1:
        with pytest.raises(ManifestError):
            load_manifest(run_dir)
    else:
        before = load_manifest(run_dir)  # the previous complete manifest
        assert before.status == "running" or before.status == "pending"

    resumed = _run(config, run_dir, env, kit)
    assert resumed.returncode == 0, resumed.stderr
    _check_complete_run(run_dir, events, kit)


def test_external_sigkill_mid_stage_then_resume(setup, kit):
    config, run_dir, events, env = setup
    process = subprocess.Popen(
        [sys.executable, "-m", "cascade_plugins", "run", str(config), "--run-dir", str(run_dir), "--no-report"],
        env={**env, "LEDGER_STEP_SECONDS": "0.3"}, cwd=config.parent,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    target = run_dir / "stages" / "math_rl" / "step_0001"
    deadline = time.monotonic() + 120
    while not target.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert load_manifest(run_dir).stage("math_rl").status == "running"

    resumed = _run(config, run_dir, env, kit)
    assert resumed.returncode == 0, resumed.stderr
    _check_complete_run(run_dir, events, kit)


def test_stage_failure_exit_code_and_resume(setup, kit):
    config, run_dir, events, env = setup
    failed = _run(config, run_dir, env, kit, LEDGER_FAIL_AT="math_rl:2")
    assert failed.returncode == 1
    assert "stage 'math_rl' failed: RuntimeError: injected failure at math_rl:2" in failed.stderr
    assert f"cascade run --resume {run_dir}" in failed.stderr
    resumed = kit.cli(["run", "--resume", str(run_dir)], env, cwd=config.parent)
    assert resumed.returncode == 0, resumed.stderr
    _check_complete_run(run_dir, events, kit)
    # the report is written at the end and printed
    assert "| domain | sft | math_rl | code_rl | mopd |" in resumed.stdout
    assert (run_dir / "report.md").is_file()
    assert (run_dir / "report.png").is_file() == PLOTS  # without matplotlib: the table only
