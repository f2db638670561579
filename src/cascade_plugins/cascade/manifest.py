"""The run manifest: the single record of a cascade run's state, rewritten atomically after every
transition (temp file in the same folder, fsync, rename, fsync of the folder), so a crash at any
instant leaves either the previous or the next complete manifest on disk, never a torn one."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_plugins.atomic import write_text_atomic

__all__ = [
    "MANIFEST_NAME",
    "ManifestError",
    "RunManifest",
    "StageRecord",
    "load_manifest",
    "save_manifest",
]

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1

StageStatus = Literal["pending", "running", "finished", "failed"]
RunStatus = Literal["pending", "running", "finished", "failed"]


class ManifestError(Exception):
    """A run directory whose manifest is missing or invalid."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StageRecord(_Model):
    name: str
    kind: str
    status: StageStatus = "pending"
    #: the domains the stage trains on
    domains: list[str] = Field(default_factory=list)
    #: the stage it starts from (``None``: the base model or a checkpoint path)
    parent: str | None = None
    #: where it starts, as the plan says it: ``base``, ``stage:<name>`` or ``path:<path>``
    start: str = "base"
    #: a side branch: its checkpoint does not lead to the last stage's
    branch: bool = False
    #: how many times the stage was started (a resume after a crash counts again)
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    #: the checkpoint the stage started from (``CheckpointRef.to_dict()``; ``None``: base model)
    init: dict[str, Any] | None = None
    #: domain -> the chosen teacher ``{"checkpoint": {...}, "stage", "step", "score", "rule"}``
    teachers: dict[str, dict[str, Any]] = Field(default_factory=dict)
    #: ``StageResult.to_dict()`` once finished
    result: dict[str, Any] | None = None
    error: str | None = None


class RunManifest(_Model):
    format_version: int = FORMAT_VERSION
    name: str | None = None
    status: RunStatus = "pending"
    config_hash: str
    #: where relative paths of the config resolve (the working folder of the first run)
    base_dir: str
    backend: str
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)
    #: dataset name -> {"path", "rows", "sha256"} of generated data
    datasets: dict[str, dict[str, Any]] = Field(default_factory=dict)
    stages: list[StageRecord]
    #: domain -> registry entries ``{"stage", "step", "checkpoint", "score"}`` in production order
    registry: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    #: earlier config hashes, kept when a run continued under a changed config on request
    config_history: list[dict[str, Any]] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(f"stage {name!r} is not in the manifest")

    def has_stage(self, name: str) -> bool:
        return any(record.name == name for record in self.stages)


def save_manifest(run_dir: Path, manifest: RunManifest) -> None:
    manifest.updated_at = time.time()
    write_text_atomic(Path(run_dir) / MANIFEST_NAME, manifest.model_dump_json(indent=2) + "\n")


def load_manifest(run_dir: str | Path) -> RunManifest:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{run_dir} is not a cascade run directory: {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return RunManifest.model_validate(data)
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ManifestError(f"{path} is not a valid run manifest: {exc}") from None
