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
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageProblem, StageResult, StageSpec
from cascade_plugins.plugins import load_plugins

#: the plan's registry of a cascade with ``plugins: [nemo_rl, math, mopd]``
REGISTRY = load_plugins(["nemo_rl", "math", "mopd"], use_env=False)


def errors(problems: list[StageProblem]) -> list[StageProblem]:
    return [p for p in problems if p.is_error]


def error_keys(problems: list[StageProblem]) -> list[tuple[str | int, ...]]:
    return [p.key for p in errors(problems)]


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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit")
    assert errors(backend.check(_spec(tmp_path))) == []
    problems = backend.check(_spec(tmp_path, nemo_rl={"defaults": "examples/nope.yaml",
                                                      "overrides": {"policy": {"model_name": "x"}}}))
    assert set(error_keys(problems)) == {
        ("hparams", "nemo_rl", "overrides", "policy", "model_name"), ("hparams", "nemo_rl", "defaults")}
    owned = next(p for p in problems if p.key[-1] == "model_name")
    assert owned.hint == "remove it" and owned.stage == "stage1"
    bad = _spec(tmp_path)
    bad.kind = "dpo"  # type: ignore[assignment]
    assert error_keys(backend.check(bad)) == [("kind",)]
    assert error_keys(backend.check(_spec(tmp_path, lr=-1))) == [("hparams", "lr")]
    runner = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), python=str(tmp_path / "missing" / "python"))
    assert error_keys(runner.check(_spec(tmp_path))) == [("backend", "python")]


def test_rewards_and_losses_come_from_the_plan_registry(tmp_path: Path, root: Path) -> None:
    """A reward the plan's plugins do not register is not ours, even if installed; the stage's
    loss is resolved by name there and refused when the MOPD path cannot feed or express it."""
    only_math = NemoRLBackend(load_plugins(["nemo_rl", "math"], use_env=False), nemo_rl_root=str(root), mode="emit")
    code = _spec(tmp_path)
    code.rewards = {"math": RewardSpec("code")}
    assert error_keys(only_math.check(code)) == [("rewards", "math")]
    config = only_math.stage_config(_our_reward_spec(tmp_path))
    # the reward workers load the plan's plugins, not whatever is installed
    assert config["env"]["cascade_math"]["plugins"] == ["math", "nemo_rl"]

    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit")

    def mopd(loss: RewardSpec | None) -> StageSpec:
        spec = _our_reward_spec(tmp_path)
        spec.kind, spec.teachers, spec.loss = "mopd", {"math": CheckpointRef(str(tmp_path / "t"))}, loss
        return spec

    assert errors(backend.check(mopd(None))) == []
    assert errors(backend.check(mopd(RewardSpec("mopd", {"outcome_weight": 0.5})))) == []  # outcome advantages fed
    assert error_keys(backend.check(mopd(RewardSpec("mopdd")))) == [("loss",)]
    (topk,) = errors(backend.check(mopd(RewardSpec("mopd_topk"))))
    assert topk.key == ("loss",) and "teacher_topk" in topk.message
    assert error_keys(backend.check(mopd(RewardSpec("mopd", {"importance_ratio_maxx": 2})))) == [("loss", "options")]
    written = backend.stage_config(mopd(RewardSpec("mopd", {"outcome_weight": 0.5})))
    assert written["cascade_mopd"]["loss"] == {"name": "mopd", "options": {"outcome_weight": 0.5}}
    assert written["cascade_mopd"]["plugins"] == ["math", "mopd", "nemo_rl"]


def test_emit_writes_config_and_a_runnable_command(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit", launcher="srun --ntasks=1",
                            env={"HF_HOME": "/h"})
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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), python=_fake_python(tmp_path))
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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), python=_fake_python(tmp_path))
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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), python=str(exe), env={"STAGE_PID_FILE": str(pid_file)})

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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit", env={"HF_HOME": "/h"})
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
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit")
    metric_key = ("hparams", "nemo_rl", "overrides", "checkpointing", "metric_name")
    assert errors(backend.check(_our_reward_spec(tmp_path))) == []
    wrong = {"checkpointing": {"metric_name": "val:total_reward/mean"}}
    (problem,) = errors(backend.check(_our_reward_spec(tmp_path, **wrong)))
    assert problem.key == metric_key
    assert "'val:accuracy', 'val:avg_length'" in problem.message
    # pass@k is reported with several generations per validation prompt
    assert errors(backend.check(_our_reward_spec(tmp_path, grpo={"val_num_generations_per_prompt": 4},
                                                 checkpointing={"metric_name": "val:pass_k"}))) == []
    # Gym validation reports Gym's rollout metrics too: not second-guessed
    assert errors(backend.check(_our_reward_spec(tmp_path, env={"should_use_nemo_gym": True}, **wrong))) == []
    # a train metric is not checked against validation
    assert errors(backend.check(_our_reward_spec(tmp_path, checkpointing={"metric_name": "train:loss"}))) == []
    bad_prefix = backend.check(_our_reward_spec(tmp_path, checkpointing={"metric_name": "accuracy"}))
    assert error_keys(bad_prefix) == [metric_key]


def test_select_best_needs_validation_and_a_metric(tmp_path: Path, root: Path) -> None:
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit")
    no_validation = backend.check(_our_reward_spec(tmp_path, "best", grpo={"val_period": 0},
                                                   checkpointing={"metric_name": "val:accuracy"}))
    assert error_keys(no_validation) == [("hparams", "nemo_rl", "select")]
    assert errors(no_validation)[0].hint == "use select: last or give the stage validation"
    no_metric = backend.check(_our_reward_spec(tmp_path, "best", grpo={"val_period": 5}))
    assert error_keys(no_metric) == [("hparams", "nemo_rl", "select")]


def test_notes_say_gym_stages_cannot_be_ranked(tmp_path: Path, root: Path) -> None:
    base = root / "examples/configs/grpo_math_1B.yaml"
    base.write_text("grpo: {val_period: 5}\nenv: {should_use_nemo_gym: true}\n")
    backend = NemoRLBackend(REGISTRY, nemo_rl_root=str(root), mode="emit")
    gym = StageSpec(
        name="if_rl", kind="grpo", data={"if": str(tmp_path / "if.jsonl")},
        rewards={"if": RewardSpec("nemo_rl_env", {"env": "nemo_gym"})},
        hparams={"steps": 2}, output_dir=str(tmp_path / "out" / "if_rl"), init=CheckpointRef(str(tmp_path / "sft")),
    )
    found = backend.check(gym)
    assert errors(found) == []
    notes = [p for p in found if p.severity == "note"]
    assert any("'best:<domain>' teachers never choose it" in n.message for n in notes)
    assert all(n.stage == "if_rl" for n in notes)
    ours = backend.check(_our_reward_spec(tmp_path))
    assert not any("best:<domain>" in n.message for n in ours)
