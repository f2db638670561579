"""The embedded host on a stop request, and its records: metrics.jsonl always, TensorBoard when
enabled, relative checkpoint names in result.json so a stage folder can move."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from cascade_plugins.backends.local import tracking
from cascade_plugins.backends.local.tracking import StageTracker, TrackingSettings, check_tracking
from cascade_plugins.interfaces import StageInterrupted, StageSpec

from .conftest import RecordingReporter, state_dict_of


class StoppingReporter(RecordingReporter):
    """Asks the stage to stop (as SIGTERM would) once it reported ``stop_at``."""

    def __init__(self, stop_at: int):
        super().__init__()
        self.stop_at = stop_at

    def stop_requested(self) -> str | None:
        return "SIGTERM" if self.steps and self.steps[-1][0] >= self.stop_at else None


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_stop_request_saves_the_current_step_and_resume_matches_an_uninterrupted_run(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path
) -> None:
    straight = backend.run_stage(make_spec("sft", name="straight", hparams={"save_every": 0}), RecordingReporter())
    spec = make_spec("sft", name="stopped", hparams={"save_every": 0},
                     logger={"log_dir": str(tmp_path / "logs" / "stopped")})
    with pytest.raises(StageInterrupted) as info:
        backend.run_stage(spec, StoppingReporter(stop_at=3))
    saved = Path(spec.output_dir) / "checkpoints" / "step_000003"
    assert (info.value.reason, info.value.step, info.value.checkpoint) == ("SIGTERM", 3, str(saved))
    assert sorted(p.name for p in saved.parent.iterdir()) == ["step_000003"]  # save_every 0: only this one

    reporter = RecordingReporter()
    resumed = backend.run_stage(spec, reporter)
    assert [s for s, _ in reporter.steps] == [4, 5, 6]
    a, b = state_dict_of(straight.checkpoint.path), state_dict_of(resumed.checkpoint.path)
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = _rows(tmp_path / "logs" / "stopped" / "metrics.jsonl")
    assert [r["step"] for r in rows if "loss" in r] == [1, 2, 3, 4, 5, 6]
    assert [r for r in rows if "validation/letters" in r] == [
        {"step": 6, "validation/letters": resumed.validation["letters"]}
    ]


def test_result_names_checkpoints_relative_to_the_stage_folder(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path
) -> None:
    spec = make_spec("sft", name="here", hparams={"steps": 4, "save_every": 2, "eval_every": 2})
    backend.run_stage(spec, RecordingReporter())
    stored = json.loads((Path(spec.output_dir) / "result.json").read_text())
    assert stored["checkpoint"]["path"] == "checkpoints/step_000004"
    assert stored["evaluations"][0]["checkpoint"]["path"] == "checkpoints/step_000002"
    state = json.loads((Path(spec.output_dir) / "checkpoints" / "step_000004" / "state.json").read_text())
    assert state["evaluations"][0]["checkpoint"]["path"] == "checkpoints/step_000002"

    moved = tmp_path / "moved"
    shutil.move(spec.output_dir, moved)
    spec.output_dir = str(moved)
    again = backend.run_stage(spec, RecordingReporter())
    assert again.checkpoint.path == str(moved / "checkpoints" / "step_000004")
    assert again.evaluations[0]["checkpoint"]["path"] == str(moved / "checkpoints" / "step_000002")


def test_metrics_after_the_checkpoint_are_dropped_on_resume(tmp_path: Path) -> None:
    settings = TrackingSettings()
    with StageTracker(settings, tmp_path, resume_step=0) as tracker:
        for step in range(1, 6):
            tracker.log(step, {"loss": 1.0 / step, "note": "text is kept in the JSONL"})
        tracker.log_validation(4, {"math": 0.5})
    (tmp_path / "metrics.jsonl").open("a").write('{"step": 6, "lo')  # torn by a kill
    with StageTracker(settings, tmp_path, resume_step=4) as tracker:
        tracker.log(5, {"loss": 0.3})
    rows = _rows(tmp_path / "metrics.jsonl")
    assert [(r["step"], r.get("loss")) for r in rows] == [(1, 1.0), (2, 0.5), (3, 1 / 3), (4, 0.25), (4, None),
                                                          (5, 0.3)]
    assert rows[0]["note"] == "text is kept in the JSONL" and rows[4] == {"step": 4, "validation/math": 0.5}


def test_tensorboard_events_are_read_back_with_the_tensorboard_package(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    settings = TrackingSettings(tensorboard_enabled=True)
    with StageTracker(settings, tmp_path, resume_step=0) as tracker:
        for step in range(1, 8):
            tracker.log(step, {"loss": float(step), "reward/math": step / 10, "flag": True, "name": "x"})
    with StageTracker(settings, tmp_path, resume_step=5) as tracker:  # resumed from step 5
        for step in range(6, 9):
            tracker.log(step, {"loss": 10.0 * step})
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert sorted(events.Tags()["scalars"]) == ["loss", "reward/math"]  # numbers only
    assert [(e.step, e.value) for e in events.Scalars("loss")] == [
        (1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0), (6, 60.0), (7, 70.0), (8, 80.0)
    ]


def test_logger_problems_are_named_before_any_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    assert check_tracking({"tensorboard_enabled": True, "monitor_gpus": True}) == []
    assert [i.key for i in check_tracking({"mlflow_enabled": True})] == [("logger", "mlflow_enabled")]
    assert [i.key for i in check_tracking({"wandb_enabled": "sometimes"})] == [("logger", "wandb_enabled")]
    # the optional packages are looked up where they are imported from
    monkeypatch.setattr(tracking, "_installed", lambda module: False)
    problems = check_tracking({"tensorboard_enabled": True, "wandb_enabled": True})
    assert [(i.key, i.hint) for i in problems] == [
        (("logger", "tensorboard_enabled"), "or set it to false"), (("logger", "wandb_enabled"), "or set it to false"),
    ]


def test_the_local_check_reports_logger_problems(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    (problem,) = backend.check(make_spec("sft", logger={"swanlab_enabled": True}))
    assert (problem.stage, problem.key) == ("sft", ("logger", "swanlab_enabled"))


def test_wandb_offline_run_when_installed(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    settings = TrackingSettings(wandb_enabled=True, wandb={"group": "quickstart", "name": "sft", "job_type": "sft"})
    with StageTracker(settings, tmp_path, resume_step=0, config={"lr": 0.1}) as tracker:
        tracker.log(1, {"loss": 0.5})
    run_id = (tmp_path / "wandb_run_id").read_text().strip()
    with StageTracker(settings, tmp_path, resume_step=1) as tracker:
        tracker.log(2, {"loss": 0.25})
    runs = sorted((tmp_path / "wandb").glob("offline-run-*"))
    # one run, resumed (wandb adds "-1" to the folder of a resume within the same second)
    assert len(runs) == 2 and all(re.fullmatch(rf"offline-run-\d{{8}}_\d{{6}}-{run_id}(-\d+)?", r.name) for r in runs)
    records = (runs[0] / f"run-{run_id}.wandb").read_bytes()
    assert b"quickstart" in records and b"loss" in records and b"cascade" in records  # group, metric, project
