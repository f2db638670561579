"""``ledger``: a small, deterministic, resumable backend for sequencer tests.

Its "model" is a ledger: the list of every optimizer step applied on the way to a checkpoint
(``["base", "sft:1", "sft:2", ..., "mopd:3"]``). Each step writes a checkpoint folder atomically,
so after any crash the latest complete checkpoint says exactly which steps it contains, and the
final checkpoint of the last stage proves that every stage of its lineage ran each step once.

Validation scores are configured per stage (``hparams.validation``), so registry tests know which
checkpoint must win. Faults are injected through environment variables, as a real crash would:

- ``LEDGER_KILL_AT=stage:step``   SIGKILL this process before committing that step;
- ``LEDGER_FAIL_AT=stage:step``   raise an error there (a failing stage);
- ``LEDGER_KILL_AFTER=stage``     SIGKILL in the ``cascade_stage_finished`` hook of that stage,
  i.e. after the manifest recorded it and before the next stage starts;
- ``LEDGER_EVENTS=path``          append every committed step and lifecycle hook call to this file
  (JSON lines);
- ``LEDGER_STEP_SECONDS=x``       sleep x seconds per step (to kill from outside mid-stage);
- ``LEDGER_IGNORE_STOP=1``        never look at stop requests (a backend that cannot save in time).

After each committed step it polls ``reporter.stop_requested()``: on SIGINT / SIGTERM it stops
there, its checkpoint of that step being the resume point.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from cascade_plugins import hookimpl
from cascade_plugins.interfaces import (
    CheckpointRef,
    RewardResult,
    Sample,
    StageInterrupted,
    StageResult,
    StageSpec,
    stop_requested,
)

STATE = "state.json"
ALLOWED_HPARAMS = {"steps", "validation", "evaluations", "eval_every", "lr"}


def read_state(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / STATE).read_text())


def _fault(variable: str, where: str) -> bool:
    return os.environ.get(variable) == where


def _log_event(event: str, **fields: Any) -> None:
    target = os.environ.get("LEDGER_EVENTS")
    if target:
        with open(target, "a") as handle:
            handle.write(json.dumps({"event": event, "pid": os.getpid(), **fields}) + "\n")


def _write_checkpoint(folder: Path, state: dict[str, Any]) -> None:
    """Atomic: the folder appears complete or not at all."""
    tmp = folder.with_name(f".{folder.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    (tmp / STATE).write_text(json.dumps(state))
    os.replace(tmp, folder)


def _step_of(folder: Path) -> int:
    return int(folder.name.split("_")[1])


class LedgerBackend:
    name = "ledger"
    graceful_stop = True

    def __init__(self, **options: Any):
        unknown = set(options) - {"label"}
        if unknown:
            raise TypeError(f"unknown options {sorted(unknown)}")
        self.options = options

    def check(self, spec: StageSpec) -> list[str]:
        problems = [f"hparams.{key}: not a ledger setting" for key in spec.hparams if key not in ALLOWED_HPARAMS]
        steps = spec.hparams.get("steps")
        if not isinstance(steps, int) or steps < 1:
            problems.append(f"hparams.steps: must be a positive integer, got {steps!r}")
        for domain, path in spec.data.items():
            if not Path(path).is_file():
                problems.append(f"data for {domain} not found: {path}")
        return problems

    def run_stage(self, spec: StageSpec, reporter: Any) -> StageResult:
        out = Path(spec.output_dir)
        steps: int = spec.hparams["steps"]
        done = sorted((p for p in out.glob("step_*") if p.is_dir()), key=_step_of)
        if done:
            state = read_state(done[-1])
            start = _step_of(done[-1])
        else:
            history = read_state(spec.init.path)["history"] if spec.init else ["base"]
            state = {
                "history": list(history),
                "teachers": {d: read_state(t.path)["history"][-1] for d, t in spec.teachers.items()},
                "rows": {d: len(Path(p).read_text().splitlines()) for d, p in spec.data.items()},
            }
            start = 0
        reporter.start(steps, f"ledger {spec.kind}")
        delay = float(os.environ.get("LEDGER_STEP_SECONDS", "0"))
        for step in range(start + 1, steps + 1):
            where = f"{spec.name}:{step}"
            if _fault("LEDGER_KILL_AT", where):
                os.kill(os.getpid(), signal.SIGKILL)
            if _fault("LEDGER_FAIL_AT", where):
                raise RuntimeError(f"injected failure at {where}")
            time.sleep(delay)
            state["history"].append(where)
            _write_checkpoint(out / f"step_{step:04d}", state)
            _log_event("step", stage=spec.name, step=step)
            reporter.step(step, {"loss": 1.0 / step})
            reason = None if os.environ.get("LEDGER_IGNORE_STOP") else stop_requested(reporter)
            if reason:
                _log_event("stopped", stage=spec.name, step=step, reason=reason)
                raise StageInterrupted(reason, step=step, checkpoint=str(out / f"step_{step:04d}"))
        validation = {d: float(v) for d, v in spec.hparams.get("validation", {}).items() if d in spec.eval}
        evaluations = [
            {"step": int(step), "scores": {d: float(v) for d, v in scores.items()},
             "checkpoint": CheckpointRef(str(out / f"step_{int(step):04d}"), stage=spec.name, step=int(step)).to_dict()}
            for step, scores in spec.hparams.get("evaluations", {}).items()
        ]
        return StageResult(
            stage=spec.name,
            checkpoint=CheckpointRef(str(out / f"step_{steps:04d}"), stage=spec.name, step=steps),
            metrics=[{"step": s, "loss": 1.0 / s} for s in range(1, steps + 1)],
            validation=validation,
            evaluations=evaluations,
        )


class NonEmpty:
    """Reward 1 for a non-empty response."""

    name = "nonempty"
    reward_range = (0.0, 1.0)

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        return [RewardResult(float(bool(s.response.strip())), "correct" if s.response.strip() else "incorrect")
                for s in samples]

    def close(self) -> None:
        pass


class LedgerLoss:
    name = "ledger_loss"

    def __init__(self, **options: Any):
        self.options = options


def ledger_rows(n: int = 4, seed: int = 0, domain: str = "math") -> Iterator[dict[str, Any]]:
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    for index in range(n):
        yield {"prompt": f"{domain} question {seed}-{index}", "domain": domain, "answer": str(index)}


ledger_rows.name = "ledger_rows"  # type: ignore[attr-defined]


@hookimpl
def register_backends(register: Any) -> None:
    register(LedgerBackend)


@hookimpl
def register_rewards(register: Any) -> None:
    register(NonEmpty)


@hookimpl
def register_losses(register: Any) -> None:
    register(LedgerLoss)


@hookimpl
def register_datasets(register: Any) -> None:
    register(ledger_rows)


@hookimpl
def cascade_stage_started(stage: Any, run_dir: str) -> None:
    _log_event("started", stage=stage.name, init=stage.init.path if stage.init else None,
               teachers={d: t.path for d, t in stage.teachers.items()})


@hookimpl
def cascade_stage_finished(stage: Any, result: Any, run_dir: str) -> None:
    _log_event("finished", stage=stage.name, checkpoint=result.checkpoint.path)
    if _fault("LEDGER_KILL_AFTER", stage.name):
        os.kill(os.getpid(), signal.SIGKILL)


@hookimpl
def cascade_finished(run_dir: str, manifest: Any) -> None:
    _log_event("cascade_finished", stages=[s["name"] for s in manifest["stages"]])
