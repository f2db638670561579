"""The plan of a cascade: what runs, in which order, from which checkpoints, on which data.

This module holds the plan's data only. :mod:`cascade_plugins.cascade.resolve` builds it from a
validated :class:`CascadeConfig` (every check before any compute), and
:mod:`cascade_plugins.cascade.problems` says where in the YAML each problem is.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import importlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cascade_plugins.config import LoadedConfig
from cascade_plugins.config.schema import BEST_PREFIX, CascadeConfig
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec

__all__ = [
    "DatasetSource",
    "InitRef",
    "Plan",
    "PlanNote",
    "PlannedStage",
    "TeacherRef",
    "config_hash",
    "deep_merge",
]

KeyPath = tuple[str | int, ...]


# ------------------------------------------------------------------------------------------
# Plan data
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanNote:
    """A backend's note on some stages (``StageProblem`` with ``severity="note"``), located in
    the YAML like a problem."""

    stages: tuple[str, ...]
    key_path: str
    file: str | None
    line: int | None
    message: str

    def who(self) -> str:
        return f"stage {self.stages[0]!r}" if len(self.stages) == 1 else "stages " + ", ".join(map(repr, self.stages))

    def describe(self) -> dict[str, Any]:
        return {"stages": list(self.stages), "key_path": self.key_path, "file": self.file, "line": self.line,
                "message": self.message}

    def __str__(self) -> str:
        where = (self.file or "<config>") + (f":{self.line}" if self.line is not None else "")
        return f"{self.who()}: {self.message} ({where}: {self.key_path})"


@dataclass(frozen=True)
class DatasetSource:
    """Where a stage's or eval set's rows come from."""

    #: the dataset's name under ``data:`` (``None``: a path written directly in a stage)
    name: str | None
    #: absolute JSONL path (generated data: inside the run's data folder, written before stage 1)
    path: str
    generator: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path}
        if self.generator:
            out["generator"] = self.generator
            out["kwargs"] = dict(self.kwargs)
        return out


@dataclass(frozen=True)
class InitRef:
    """A stage's starting checkpoint: the base model, an earlier stage's output, or a path."""

    kind: Literal["base", "stage", "path"]
    stage: str | None = None
    path: str | None = None

    def describe(self) -> str:
        if self.kind == "base":
            return "base"
        return f"stage:{self.stage}" if self.kind == "stage" else f"path:{self.path}"


@dataclass(frozen=True)
class TeacherRef:
    """A ``mopd`` teacher: the registry's best checkpoint for a domain, a stage's output, or a path."""

    kind: Literal["best", "stage", "path"]
    #: the domain (``best``), the stage name (``stage``) or the absolute path (``path``)
    value: str

    def describe(self) -> str:
        return f"{BEST_PREFIX}{self.value}" if self.kind == "best" else f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class PlannedStage:
    index: int
    name: str
    kind: Literal["sft", "grpo", "mopd"]
    domains: list[str]
    data: dict[str, DatasetSource]
    rewards: dict[str, RewardSpec]
    hparams: dict[str, Any]
    init: InitRef
    teachers: dict[str, TeacherRef]
    loss: RewardSpec | None
    seed: int
    #: a side branch: its checkpoint does not lead to the last stage's (e.g. a teacher trained
    #: from an earlier checkpoint)
    branch: bool

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "domains": list(self.domains),
            "data": {d: src.path for d, src in self.data.items()},
            "rewards": {d: _spec_dict(r) for d, r in self.rewards.items()},
            "init": self.init.describe(),
            "branch": self.branch,
            "teachers": {d: t.describe() for d, t in self.teachers.items()},
            "loss": _spec_dict(self.loss) if self.loss else None,
            "hparams": copy.deepcopy(self.hparams),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Plan:
    """The resolved cascade: what runs, in which order, from which checkpoints, on which data."""

    config: CascadeConfig
    run_dir: Path
    #: relative paths in the config (data files, checkpoints) are resolved against this folder
    base_dir: Path
    datasets: dict[str, DatasetSource]
    eval: dict[str, tuple[DatasetSource, RewardSpec]]
    stages: list[PlannedStage]
    config_hash: str
    loaded: LoadedConfig | None = None
    #: what the backend's check had to say that is not a problem (``check_plan`` fills it)
    notes: tuple[PlanNote, ...] = ()

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def log_dir(self) -> Path:
        """``logger.log_dir`` (relative: inside the run directory), default ``<run_dir>/logs``."""
        configured = self.config.logger.log_dir
        if configured is None:
            return self.run_dir / "logs"
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.run_dir / path

    def stage_logger(self, stage: PlannedStage) -> dict[str, Any]:
        """The ``logger:`` keys the user set, with this stage's own ``log_dir`` and W&B identity
        (one run per stage, grouped by the cascade); backends add their own defaults."""
        logger = self.config.logger
        section = logger.model_dump(mode="json", exclude_unset=True)
        section["log_dir"] = str(self.log_dir / stage.name)
        section["wandb"] = {
            "group": self.config.name or "cascade", "name": stage.name, "job_type": stage.kind, **logger.wandb,
        }
        return section

    def stage(self, name: str) -> PlannedStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / "stages" / name

    def lineage(self, name: str) -> list[str]:
        """The chain of stages whose checkpoints lead to ``name``'s start, oldest first."""
        chain: list[str] = []
        stage: PlannedStage | None = self.stage(name)
        while stage is not None:
            chain.append(stage.name)
            stage = self.stage(stage.init.stage) if stage.init.kind == "stage" and stage.init.stage else None
        return chain[::-1]

    def generated(self) -> dict[str, DatasetSource]:
        return {name: src for name, src in self.datasets.items() if src.generator}

    def with_data_dir(self, data_dir: Path) -> Plan:
        """The same plan with generated datasets written to (and read from) ``data_dir``."""

        def move(src: DatasetSource) -> DatasetSource:
            if not src.generator or src.name is None:
                return src
            return dataclasses.replace(src, path=str(data_dir / f"{src.name}.jsonl"))

        return dataclasses.replace(
            self,
            datasets={n: move(s) for n, s in self.datasets.items()},
            eval={d: (move(s), r) for d, (s, r) in self.eval.items()},
            stages=[dataclasses.replace(st, data={d: move(s) for d, s in st.data.items()}) for st in self.stages],
        )

    def spec_for(
        self,
        stage: PlannedStage,
        init: CheckpointRef | None,
        teachers: Mapping[str, CheckpointRef] | None = None,
    ) -> StageSpec:
        """The backend's view of ``stage`` once its init and teacher checkpoints are known."""
        return StageSpec(
            name=stage.name,
            kind=stage.kind,
            data={d: src.path for d, src in stage.data.items()},
            rewards=dict(stage.rewards),
            hparams=copy.deepcopy(stage.hparams),
            output_dir=str(self.stage_dir(stage.name)),
            init=init,
            teachers=dict(teachers or {}),
            eval={d: (src.path, reward) for d, (src, reward) in self.eval.items()},
            model=copy.deepcopy(self.config.model),
            loss=stage.loss,
            seed=stage.seed,
            logger=self.stage_logger(stage),
        )

    def placeholder_spec(self, stage: PlannedStage) -> StageSpec:
        """``spec_for`` before anything ran. Checkpoints the cascade will make have
        ``CheckpointRef.stage`` set (the stage, or ``best:<domain>`` for registry teachers) and do not
        exist yet, so ``Backend.check`` must only require paths whose ``stage`` is ``None``."""
        teachers = {d: self._placeholder(t) for d, t in stage.teachers.items()}
        init = None
        if stage.init.kind == "stage" and stage.init.stage:
            init = CheckpointRef(path=str(self.stage_dir(stage.init.stage)), stage=stage.init.stage)
        elif stage.init.kind == "path" and stage.init.path:
            init = CheckpointRef(path=stage.init.path)
        return self.spec_for(stage, init, teachers)

    def _placeholder(self, teacher: TeacherRef) -> CheckpointRef:
        if teacher.kind == "stage":
            return CheckpointRef(path=str(self.stage_dir(teacher.value)), stage=teacher.value)
        if teacher.kind == "path":
            return CheckpointRef(path=teacher.value)
        # ``stage`` set: made by the cascade, so backends must not expect it on disk yet
        return CheckpointRef(path=teacher.describe(), stage=teacher.describe())

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``cascade plan --json``)."""
        return {
            "name": self.config.name,
            "backend": self.config.backend.model_dump(),
            "run_dir": str(self.run_dir),
            "config_hash": self.config_hash,
            "datasets": {n: s.describe() for n, s in self.datasets.items()},
            "eval": {
                "every_n_steps": self.config.eval.every_n_steps,
                "sets": {d: {"data": s.path, "reward": _spec_dict(r)} for d, (s, r) in self.eval.items()},
            },
            "registry": self.config.registry.model_dump(),
            "stages": [stage.describe() for stage in self.stages],
        }


def _spec_dict(spec: RewardSpec) -> dict[str, Any]:
    return {"name": spec.name, "options": dict(spec.options)}


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings left to right; nested mappings merge, anything else is replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def config_hash(config: CascadeConfig) -> str:
    """A hash of the config's meaning (not its formatting); ``run_dir`` is left out because the
    same run may be moved or named on the command line, ``logger`` because tracking can be turned
    on or off for a run that goes on."""
    data = config.model_dump(mode="json", exclude={"run_dir", "logger"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# the resolution lives in its own module; these names stay importable from here
_RESOLUTION = ("check_plan", "check_with_backend", "resolve_plan")


def __getattr__(name: str) -> Any:
    if name in _RESOLUTION:
        return getattr(importlib.import_module("cascade_plugins.cascade.resolve"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
