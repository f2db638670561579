"""Experiment tracking of one stage on the embedded host (the cascade's ``logger:`` section).

Everything goes to the stage's own folder, ``<log_dir>/<stage>/`` (``StageSpec.logger["log_dir"]``):

- ``metrics.jsonl``: always; one JSON object per optimizer step (``{"step": 3, "loss": ...}``)
  and one per evaluation (``{"step": 20, "validation/math": 0.8}``);
- TensorBoard event files with ``tensorboard_enabled`` (``torch.utils.tensorboard``, which needs
  the ``tensorboard`` package of the ``local`` extra): ``tensorboard --logdir <run_dir>/logs``
  shows one run per stage;
- an offline W&B run under ``wandb/`` with ``wandb_enabled`` (needs the optional ``wandb``
  package): project ``cascade``, group = the cascade, name = the stage, unless ``logger.wandb``
  says otherwise; ``wandb sync`` uploads it later.

A resumed stage continues the same records: rows after its checkpoint's step are dropped from
``metrics.jsonl``, TensorBoard purges them (``purge_step``), and W&B reuses the stage's run id.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_plugins.atomic import write_text_atomic
from cascade_plugins.backends.local.config import format_validation_error

__all__ = ["METRICS_FILE", "StageTracker", "TrackingSettings", "check_tracking", "parse_tracking"]

METRICS_FILE = "metrics.jsonl"
logger = logging.getLogger(__name__)
_WANDB_ID_FILE = "wandb_run_id"


class TrackingSettings(BaseModel):
    """``StageSpec.logger`` as the local host reads it; keys only NeMo RL uses are ignored here
    (``monitor_gpus``, ``gpu_monitoring``, ``num_val_samples_to_print``) or refused when enabled
    (``mlflow_enabled``, ``swanlab_enabled``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    log_dir: str | None = None
    tensorboard_enabled: bool = False
    wandb_enabled: bool = False
    mlflow_enabled: bool = False
    swanlab_enabled: bool = False
    wandb: dict[str, Any] = Field(default_factory=dict)


def parse_tracking(section: Mapping[str, Any]) -> TrackingSettings:
    try:
        return TrackingSettings.model_validate(dict(section))
    except ValidationError as exc:
        raise ValueError("; ".join(format_validation_error(exc, "logger", TrackingSettings))) from None


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def check_tracking(section: Mapping[str, Any]) -> list[str]:
    """Problems with the ``logger:`` section on this host, found without writing anything."""
    try:
        settings = parse_tracking(section)
    except ValueError as exc:
        return [str(exc)]
    problems = []
    for key, name in (("mlflow_enabled", "MLflow"), ("swanlab_enabled", "SwanLab")):
        if getattr(settings, key):
            problems.append(
                f"logger.{key}: the local backend writes metrics.jsonl, TensorBoard and W&B; {name} is "
                "only passed on to NeMo RL (backend nemo_rl)"
            )
    if settings.tensorboard_enabled and not _installed("tensorboard"):
        problems.append(
            "logger.tensorboard_enabled: needs the 'tensorboard' package (pip install 'cascade-plugins[local]'), "
            "or set it to false"
        )
    if settings.wandb_enabled and not _installed("wandb"):
        problems.append("logger.wandb_enabled: needs the 'wandb' package (pip install wandb), or set it to false")
    return problems


def _numbers(metrics: Mapping[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(float(value)):
            out[key] = float(value)
    return out


class StageTracker:
    """The records of one stage; ``resume_step`` is the step of the checkpoint it continues from
    (0: from the start). Use as a context manager so files and runs are closed on any exit."""

    def __init__(
        self,
        settings: TrackingSettings,
        log_dir: Path,
        resume_step: int = 0,
        config: Mapping[str, Any] | None = None,
    ):
        self.settings = settings
        self.dir = Path(log_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self._metrics = self._open_metrics(resume_step)
        self._writer: Any = None
        self._run: Any = None
        try:
            if settings.tensorboard_enabled:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(self.dir), purge_step=resume_step + 1)
            if settings.wandb_enabled:
                self._run = self._start_wandb(dict(config or {}))
        except BaseException:
            self.close()
            raise

    def _open_metrics(self, resume_step: int) -> IO[str]:
        path = self.dir / METRICS_FILE
        if path.is_file():
            kept, dropped = [], False
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    dropped = True  # a line torn by a crash
                    continue
                if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= resume_step:
                    kept.append(line + "\n")
                else:
                    dropped = True
            if dropped:
                write_text_atomic(path, "".join(kept))
        return path.open("a", encoding="utf-8")

    def _start_wandb(self, config: dict[str, Any]) -> Any:
        import wandb

        id_file = self.dir / _WANDB_ID_FILE
        run_id = id_file.read_text(encoding="utf-8").strip() if id_file.is_file() else ""
        if not run_id:
            run_id = secrets.token_hex(6)  # W&B run ids: up to 64 letters and digits
            write_text_atomic(id_file, run_id + "\n")
        options: dict[str, Any] = {"project": "cascade", "mode": "offline", **self.settings.wandb}
        options.setdefault("settings", wandb.Settings(silent=True, console="off"))
        options.update(dir=str(self.dir), id=run_id, resume="allow", config=config)
        try:
            return wandb.init(**options)
        except Exception as exc:
            # After a crash (SIGKILL) the killed process's W&B service may still hold the run: go
            # on as a new run of the same group (metrics.jsonl and TensorBoard continue as they
            # are) rather than fail the resumed stage.
            if "in use" not in str(exc):
                raise
        fresh = secrets.token_hex(6)
        logger.warning("W&B run %s is still held by a crashed process; continuing as run %s", run_id, fresh)
        write_text_atomic(id_file, fresh + "\n")
        options["id"] = fresh
        return wandb.init(**options)

    def log(self, step: int, metrics: Mapping[str, Any]) -> None:
        """One optimizer step's metrics."""
        self._metrics.write(json.dumps({"step": step, **{k: v for k, v in metrics.items() if k != "step"}},
                                       default=str) + "\n")
        self._metrics.flush()
        self._scalars(step, _numbers(metrics))

    def log_validation(self, step: int, scores: Mapping[str, float]) -> None:
        values = {f"validation/{domain}": float(score) for domain, score in sorted(scores.items())}
        self._metrics.write(json.dumps({"step": step, **values}) + "\n")
        self._metrics.flush()
        self._scalars(step, values)

    def _scalars(self, step: int, values: Mapping[str, float]) -> None:
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, value, step)
        if self._run is not None and values:
            self._run.log(dict(values), step=step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._run is not None:
            self._run.finish()
            self._run = None
        if not self._metrics.closed:
            self._metrics.close()

    def __enter__(self) -> StageTracker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
