"""The run manifest: the single record of a cascade run's state, rewritten atomically after every
transition (temp file in the same folder, fsync, rename, fsync of the folder), so a crash at any
instant leaves either the previous or the next complete manifest on disk, never a torn one.

Paths inside the run directory (generated data, checkpoints, log folders) are stored relative to
it, so a run directory can be moved or copied: the copy's manifest points at the copy's own
checkpoints. Paths outside it (a base checkpoint, a data file) stay absolute. In memory every path
is absolute: :func:`load_manifest` joins relative ones to the folder it read from, and
:func:`save_manifest` makes them relative again. Manifests of format 1 stored absolute paths;
they are migrated when read, also after the folder was moved.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
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
FORMAT_VERSION = 2

#: ``interrupted``: stopped on SIGINT / SIGTERM (``StageRecord.interrupted`` says what was saved);
#: a stage left ``running`` by a process that died without a word also shows as interrupted
StageStatus = Literal["pending", "running", "finished", "failed", "interrupted"]
RunStatus = Literal["pending", "running", "finished", "failed", "interrupted"]


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
    #: the last optimizer step the backend reported (live while running) and the stage's total
    step: int | None = None
    total_steps: int | None = None
    #: why and where it stopped on request: ``{"reason", "step", "checkpoint"}`` (``checkpoint``
    #: ``None``: nothing was saved on the way out; the stage resumes from its last periodic one)
    interrupted: dict[str, Any] | None = None
    #: the stage's experiment-tracking folder (``metrics.jsonl``, TensorBoard events, W&B)
    log_dir: str | None = None
    #: the hash of the config the stage's last attempt ran with (its snapshot:
    #: ``configs/<hash>.yaml``); a finished stage keeps it when the run goes on under a changed config
    config_hash: str | None = None
    #: the stage as it ran: kind, data, rewards, merged hparams, start point, teachers, seed
    #: (``PlannedStage.describe()`` of its last attempt)
    ran_with: dict[str, Any] | None = None


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
    #: earlier configs, kept when a run continued under a changed config on request:
    #: ``{"config_hash", "config" (its snapshot), "until", "dropped_stages", "not_applied"}``
    #: (``not_applied``: finished stage -> the changes to it that were not applied, since it does
    #: not run again)
    config_history: list[dict[str, Any]] = Field(default_factory=list)

    def stage(self, name: str) -> StageRecord:
        for record in self.stages:
            if record.name == name:
                return record
        raise KeyError(f"stage {name!r} is not in the manifest")

    def has_stage(self, name: str) -> bool:
        return any(record.name == name for record in self.stages)


def _path_slots(data: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str]]:
    """``(mapping, key)`` of every path a manifest dump holds."""

    def checkpoint(ref: Any) -> Iterator[tuple[dict[str, Any], str]]:
        if isinstance(ref, dict) and isinstance(ref.get("path"), str):
            yield ref, "path"

    for dataset in (data.get("datasets") or {}).values():
        if isinstance(dataset, dict) and isinstance(dataset.get("path"), str):
            yield dataset, "path"
    for stage in data.get("stages") or []:
        if not isinstance(stage, dict):
            continue
        yield from checkpoint(stage.get("init"))
        for teacher in (stage.get("teachers") or {}).values():
            if isinstance(teacher, dict):
                yield from checkpoint(teacher.get("checkpoint"))
        result = stage.get("result") or {}
        if isinstance(result, dict):
            yield from checkpoint(result.get("checkpoint"))
            for evaluation in result.get("evaluations") or []:
                if isinstance(evaluation, dict):
                    yield from checkpoint(evaluation.get("checkpoint"))
        if isinstance(stage.get("log_dir"), str):
            yield stage, "log_dir"
        ran_with_data = (stage.get("ran_with") or {}).get("data")
        if isinstance(ran_with_data, dict):
            for domain, path in ran_with_data.items():
                if isinstance(path, str):
                    yield ran_with_data, domain
        interrupted = stage.get("interrupted")
        if isinstance(interrupted, dict) and isinstance(interrupted.get("checkpoint"), str):
            yield interrupted, "checkpoint"
    for entries in (data.get("registry") or {}).values():
        for entry in entries or []:
            if isinstance(entry, dict):
                yield from checkpoint(entry.get("checkpoint"))


def _relative_to(path: str, root: str) -> str | None:
    """``path`` relative to ``root`` when it lies inside it (``None`` otherwise)."""
    if path == root:
        return "."
    prefix = root.rstrip(os.sep) + os.sep
    return Path(path[len(prefix):]).as_posix() if path.startswith(prefix) else None


def _former_root(data: dict[str, Any]) -> str | None:
    """Where a format-1 manifest's run directory was when its absolute paths were written: the
    part before ``/stages/<name>/`` of a stage's checkpoint, or before ``/data/<name>.jsonl`` of
    generated data."""
    for stage in data.get("stages") or []:
        if not isinstance(stage, dict):
            continue
        marker = f"{os.sep}stages{os.sep}{stage.get('name')}{os.sep}"
        for ref in ((stage.get("result") or {}).get("checkpoint"), stage.get("init")):
            path = ref.get("path") if isinstance(ref, dict) else None
            if isinstance(path, str) and marker in path:
                return path[: path.index(marker)]
    for name, dataset in (data.get("datasets") or {}).items():
        path = dataset.get("path") if isinstance(dataset, dict) else None
        if isinstance(path, str) and dataset.get("generator"):
            match = re.match(rf"^(.*){re.escape(os.sep)}data{re.escape(os.sep)}{re.escape(name)}\.jsonl$", path)
            if match:
                return match.group(1)
    return None


def _absolute(data: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Join the stored relative paths to ``run_dir``; a format-1 manifest's absolute paths under
    its former location are moved to ``run_dir`` first."""
    root = str(run_dir)
    version = data.get("format_version", 1)
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise ManifestError(
            f"{run_dir / MANIFEST_NAME} has format {version}; this version of cascade-plugins reads up to "
            f"{FORMAT_VERSION}: upgrade it"
        )
    former = _former_root(data) if version == 1 else None
    for slot, key in _path_slots(data):
        path = slot[key]
        if os.path.isabs(path):
            inside = _relative_to(path, former) if former is not None else None
            if inside is not None:
                slot[key] = os.path.normpath(os.path.join(root, inside))
        else:
            slot[key] = os.path.normpath(os.path.join(root, path))
    data["format_version"] = FORMAT_VERSION
    return data


def _relative(data: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    root = str(run_dir)
    for slot, key in _path_slots(data):
        inside = _relative_to(os.path.normpath(slot[key]), root) if os.path.isabs(slot[key]) else None
        if inside is not None:
            slot[key] = inside
    return data


def save_manifest(run_dir: Path, manifest: RunManifest) -> None:
    manifest.updated_at = time.time()
    run_dir = Path(run_dir).resolve()
    data = _relative(manifest.model_dump(mode="json"), run_dir)
    write_text_atomic(run_dir / MANIFEST_NAME, json.dumps(data, indent=2) + "\n")


def load_manifest(run_dir: str | Path) -> RunManifest:
    path = Path(run_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{run_dir} is not a cascade run directory: {path} does not exist")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ManifestError(f"{path} is not a valid run manifest: not a JSON object")
        return RunManifest.model_validate(_absolute(data, Path(run_dir).resolve()))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ManifestError(f"{path} is not a valid run manifest: {exc}") from None
