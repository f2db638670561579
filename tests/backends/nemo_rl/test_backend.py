"""The backend's planning and process handling. The stage process is replaced by a small script
at the command boundary; the real stage runner is exercised in integration/."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cascade_plugins.backends.nemo_rl.backend import NemoRLBackend, StageDeferred
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageResult, StageSpec


class Reporter:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def start(self, total_steps: int, description: str = "") -> None:
        self.events.append(("start", total_steps))

    def step(self, step: int, metrics) -> None:
        self.events.append(("step", step))

    def log(self, message: str) -> None:
        self.events.append(("log", message))


@pytest.fixture
def root(tmp_path: Path) -> Path:
    base = tmp_path / "nemo_rl" / "examples" / "configs" / "grpo_math_1B.yaml"
    base.parent.mkdir(parents=True)
    base.write_text("grpo: {}\n")
    return tmp_path / "nemo_rl"


def _spec(tmp_path: Path, **hparams) -> StageSpec:
    return StageSpec(
        name="stage1", kind="grpo", data={"math": str(tmp_path / "m.jsonl")},
        rewards={"math": RewardSpec("nemo_rl_env", {"env": "math"})},
        hparams={"steps": 2, **hparams}, output_dir=str(tmp_path / "out" / "stage1"),
        init=CheckpointRef(str(tmp_path / "sft")),
    )


def test_check_reports_owned_keys_missing_base_and_bad_kind(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit")
    assert backend.check(_spec(tmp_path)) == []
    problems = backend.check(_spec(tmp_path, nemo_rl={"defaults": "examples/nope.yaml",
                                                      "overrides": {"policy": {"model_name": "x"}}}))
    assert any(p.startswith("hparams.nemo_rl.overrides.policy.model_name:") for p in problems)
    assert any(p.startswith("hparams.nemo_rl.defaults: NeMo RL config not found") for p in problems)
    bad = _spec(tmp_path)
    bad.kind = "dpo"  # type: ignore[assignment]
    assert backend.check(bad) == ["the nemo_rl backend runs sft, grpo and mopd stages, not 'dpo'"]
    assert backend.check(_spec(tmp_path, lr=-1))[0].startswith("hparams.lr:")
    runner = NemoRLBackend(nemo_rl_root=str(root), python=str(tmp_path / "missing" / "python"))
    assert any("does not exist" in p for p in runner.check(_spec(tmp_path)))


def test_emit_writes_config_and_a_runnable_command(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit", launcher="srun --ntasks=1", env={"HF_HOME": "/h"})
    spec = _spec(tmp_path)
    with pytest.raises(StageDeferred, match=r"command\.sh"):
        backend.run_stage(spec, Reporter())
    work = Path(spec.output_dir) / "nemo_rl"
    config = yaml.safe_load((work / "stage.yaml").read_text())
    assert config["defaults"] == str(root / "examples/configs/grpo_math_1B.yaml")
    assert config["checkpointing"]["checkpoint_dir"] == str(Path(spec.output_dir) / "checkpoints")
    command = (work / "command.sh").read_text()
    assert "exec srun --ntasks=1 " in command and "-m cascade_plugins.backends.nemo_rl.stage_runner" in command
    assert "export HF_HOME=/h" in command and "export PYTHONPATH=" in command
    assert json.loads((work / "spec.json").read_text())["name"] == "stage1"
    subprocess.run(["bash", "-n", str(work / "command.sh")], check=True)  # valid shell


FAKE_STAGE = """
import json, sys
args = sys.argv[1:]
print("========================= Step 1/2 =========================", flush=True)
print("========================= Step 2/2 =========================", flush=True)
if "FAIL" in open(args[args.index("--config") + 1]).read():
    sys.exit(3)
result = {"stage": args[args.index("--stage") + 1],
          "checkpoint": {"path": args[args.index("--hf-dir") + 1], "format": "hf", "stage": "stage1", "step": 2},
          "metrics": [{"step": 2, "loss": 0.5}], "validation": {"accuracy": 0.75}}
json.dump(result, open(args[args.index("--result") + 1], "w"))
"""


def _fake_python(tmp_path: Path) -> str:
    """A 'python' that runs FAKE_STAGE whatever module it is asked to run."""
    script = tmp_path / "fake_stage.py"
    script.write_text(FAKE_STAGE)
    exe = tmp_path / "python"
    exe.write_text(f'#!/bin/sh\nshift 2\nexec {sys.executable} {script} "$@"\n')
    exe.chmod(0o755)
    return str(exe)


def test_run_stage_streams_progress_and_returns_the_result(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(nemo_rl_root=str(root), python=_fake_python(tmp_path))
    reporter = Reporter()
    spec = _spec(tmp_path)
    result = backend.run_stage(spec, reporter)
    assert result == StageResult.from_dict(json.loads((Path(spec.output_dir) / "nemo_rl/result.json").read_text()))
    assert result.validation == {"accuracy": 0.75}
    assert [e for e in reporter.events if e[0] != "log"] == [("start", 2), ("step", 1), ("step", 2)]
    assert "Step 2/2" in (Path(spec.output_dir) / "nemo_rl/stage.log").read_text()
    # a finished stage is not run again
    again = Reporter()
    assert backend.run_stage(spec, again) == result
    assert any("reusing" in e[1] for e in again.events if e[0] == "log")


def test_a_failed_stage_raises_with_the_log_tail(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(nemo_rl_root=str(root), python=_fake_python(tmp_path))
    spec = _spec(tmp_path, nemo_rl={"overrides": {"logger": {"note": "FAIL"}}})
    with pytest.raises(RuntimeError, match=r"(?s)failed \(exit 3\).*Step 2/2"):
        backend.run_stage(spec, Reporter())


SLOW_STAGE = """
import os, sys, time
open(os.environ["STAGE_PID_FILE"], "w").write(str(os.getpid()))
print("========================= Step 1/100 =========================", flush=True)
time.sleep(600)
"""


def test_an_interrupted_stage_takes_its_process_down(tmp_path: Path, root: Path) -> None:
    """Ctrl-C / SIGTERM reach the sequencer as an exception inside run_stage: the NeMo RL process
    must not go on training unwatched."""
    script = tmp_path / "slow_stage.py"
    script.write_text(SLOW_STAGE)
    exe = tmp_path / "python"
    exe.write_text(f'#!/bin/sh\nexec {sys.executable} {script}\n')
    exe.chmod(0o755)
    pid_file = tmp_path / "stage.pid"
    backend = NemoRLBackend(nemo_rl_root=str(root), python=str(exe), env={"STAGE_PID_FILE": str(pid_file)})

    class StopAtFirstStep(Reporter):
        def step(self, step: int, metrics) -> None:
            raise KeyboardInterrupt("SIGTERM")

    with pytest.raises(KeyboardInterrupt):
        backend.run_stage(_spec(tmp_path), StopAtFirstStep())
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # reaped: gone, not a zombie
