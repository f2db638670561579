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


def test_emit_writes_ray_sub_and_ray_job_launchers(tmp_path: Path, root: Path) -> None:
    (root / "examples/configs/grpo_math_1B.yaml").write_text("grpo: {}\ncluster: {num_nodes: 4, gpus_per_node: 8}\n")
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit", env={"HF_HOME": "/h"})
    layout = backend.emit(_spec(tmp_path))
    ray_sub = layout.ray_sub.read_text()
    assert f"COMMAND='bash {layout.command}'" in ray_sub
    assert '--nodes="${NUM_NODES:-4}"' in ray_sub and f"{root / 'ray.sub'}" in ray_sub
    ray_job = layout.ray_job.read_text()
    runtime_env = json.loads(ray_job.split("--runtime-env-json '")[1].split("'")[0])
    assert runtime_env["env_vars"]["PYTHONPATH"].split(":")[0] == str(Path(__file__).resolve().parents[3] / "src")
    assert runtime_env["env_vars"]["HF_HOME"] == "/h"
    assert ray_job.rstrip().endswith(f"-- bash {layout.command}")
    for script in (layout.ray_sub, layout.ray_job):
        subprocess.run(["bash", "-n", str(script)], check=True)
    # without CONTAINER / MOUNTS, ray_sub.sh stops before sbatch and says which is missing
    done = subprocess.run(["bash", str(layout.ray_sub)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"})
    assert done.returncode != 0 and "CONTAINER" in done.stderr


def _our_reward_spec(tmp_path: Path, select: str = "last", **overrides) -> StageSpec:
    (tmp_path / "val.jsonl").write_text('{"prompt": "p", "ground_truth": "1"}\n')
    return StageSpec(
        name="code_rl", kind="grpo", data={"math": str(tmp_path / "m.jsonl")},
        rewards={"math": RewardSpec("math")}, eval={"math": (str(tmp_path / "val.jsonl"), RewardSpec("math"))},
        hparams={"steps": 2, "nemo_rl": {"select": select, "overrides": overrides}},
        output_dir=str(tmp_path / "out" / "code_rl"), init=CheckpointRef(str(tmp_path / "sft")),
    )


def test_check_catches_a_metric_the_stage_validation_does_not_report(tmp_path: Path, root: Path) -> None:
    """Recipe stages validated by our environments report val:accuracy; NeMo RL raises 'Metric
    total_reward/mean not found' at the first checkpoint, so the plan must refuse it."""
    (root / "examples/configs/grpo_math_1B.yaml").write_text(
        "grpo: {val_period: 10, val_num_generations_per_prompt: 1}\n"
        "checkpointing: {metric_name: 'val:accuracy'}\nenv: {should_use_nemo_gym: false}\n")
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit")
    assert backend.check(_our_reward_spec(tmp_path)) == []
    wrong = {"checkpointing": {"metric_name": "val:total_reward/mean"}}
    problems = backend.check(_our_reward_spec(tmp_path, **wrong))
    assert len(problems) == 1
    assert problems[0].startswith("hparams.nemo_rl.overrides.checkpointing.metric_name: 'val:total_reward/mean' is "
                                  "not reported by this stage's validation")
    assert "'val:accuracy', 'val:avg_length'" in problems[0]
    # pass@k is reported with several generations per validation prompt
    assert backend.check(_our_reward_spec(tmp_path, grpo={"val_num_generations_per_prompt": 4},
                                          checkpointing={"metric_name": "val:pass_k"})) == []
    # Gym validation reports Gym's rollout metrics too: not second-guessed
    assert backend.check(_our_reward_spec(tmp_path, env={"should_use_nemo_gym": True}, **wrong)) == []
    # a train metric is not checked against validation
    assert backend.check(_our_reward_spec(tmp_path, checkpointing={"metric_name": "train:loss"})) == []
    bad_prefix = backend.check(_our_reward_spec(tmp_path, checkpointing={"metric_name": "accuracy"}))
    assert bad_prefix == ["hparams.nemo_rl.overrides.checkpointing.metric_name: 'accuracy' must be "
                          "'val:<metric>' or 'train:<metric>'"]


def test_select_best_needs_validation_and_a_metric(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit")
    no_validation = backend.check(_our_reward_spec(tmp_path, "best", grpo={"val_period": 0},
                                                   checkpointing={"metric_name": "val:accuracy"}))
    assert len(no_validation) == 1 and no_validation[0].startswith("hparams.nemo_rl.select: 'best' ranks")
    no_metric = backend.check(_our_reward_spec(tmp_path, "best", grpo={"val_period": 5}))
    assert no_metric == ["hparams.nemo_rl.select: 'best' needs checkpointing.metric_name (e.g. 'val:accuracy')"]


def test_plan_notes_say_gym_stages_cannot_be_ranked(tmp_path: Path, root: Path) -> None:
    base = root / "examples/configs/grpo_math_1B.yaml"
    base.write_text("grpo: {val_period: 5}\nenv: {should_use_nemo_gym: true}\n")
    backend = NemoRLBackend(nemo_rl_root=str(root), mode="emit")
    gym = StageSpec(
        name="if_rl", kind="grpo", data={"if": str(tmp_path / "if.jsonl")},
        rewards={"if": RewardSpec("nemo_rl_env", {"env": "nemo_gym"})},
        hparams={"steps": 2}, output_dir=str(tmp_path / "out" / "if_rl"), init=CheckpointRef(str(tmp_path / "sft")),
    )
    notes = backend.plan_notes(gym)
    assert any("'best:<domain>' teachers never choose it" in n for n in notes)
    ours = _our_reward_spec(tmp_path)
    assert not any("best:<domain>" in n for n in backend.plan_notes(ours))
