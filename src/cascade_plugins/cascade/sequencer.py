"""The sequencer: runs a plan's pending stages through the backend, one after another.

Run directory layout::

    <run_dir>/manifest.json      the run's state, rewritten atomically after every transition
    <run_dir>/config.yaml        the config the run goes on with (``--resume`` reads it)
    <run_dir>/configs/<hash>.yaml  every config the run ran under, never overwritten; each stage's
                                 record names the one it ran with (``config_hash``, ``ran_with``)
    <run_dir>/data/<name>.jsonl  generated datasets
    <run_dir>/stages/<name>/     each stage's output folder (the backend's checkpoints and resume state)
    <run_dir>/cascade.log        progress and messages

    <run_dir>/logs/<name>/       each stage's metrics.jsonl, TensorBoard events, W&B run (``logger:``)

Guarantees: a finished stage never runs again; an interrupted stage is handed the same
``output_dir`` again so the backend resumes from its own last checkpoint; a run whose config
changed is refused unless ``allow_config_change`` (then finished stages keep what they ran with,
and the changes to them that were not applied are listed and recorded); a failing stage stops the cascade, is recorded
as ``failed`` with its error, and runs again (resuming) on the next ``cascade run``. SIGINT and
SIGTERM mark the stage ``interrupted`` after its backend saved a checkpoint where it can
(:mod:`cascade_plugins.cascade.interrupts`).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import time
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from cascade_plugins.atomic import write_text_atomic
from cascade_plugins.cascade.generated_data import sha256_of, write_generated_dataset
from cascade_plugins.cascade.interrupts import DEFAULT_GRACE_SECONDS, StopController
from cascade_plugins.cascade.manifest import (
    MANIFEST_NAME,
    RunManifest,
    StageRecord,
    load_manifest,
    save_manifest,
)
from cascade_plugins.cascade.plan import Plan, PlannedStage, check_with_backend
from cascade_plugins.cascade.progress import CascadeProgress
from cascade_plugins.cascade.registry import RegistryError, TeacherRegistry
from cascade_plugins.interfaces import Backend, CheckpointRef, StageInterrupted, StageResult, StageSpec
from cascade_plugins.plugins import PluginRegistry, get_registry

__all__ = [
    "CONFIG_ARCHIVE",
    "CONFIG_SNAPSHOT",
    "CascadeError",
    "RunDirError",
    "Sequencer",
    "StageFailed",
    "config_changes",
    "is_locked",
    "run_lock",
    "write_generated_dataset",
]

CONFIG_SNAPSHOT = "config.yaml"
CONFIG_ARCHIVE = "configs"
LOCK_NAME = ".lock"
#: the live step is written to the manifest at most this often (seconds)
PROGRESS_INTERVAL = 2.0


class CascadeError(Exception):
    """The cascade cannot go on; the message says why and what to do."""


class RunDirError(CascadeError):
    """The run directory refuses this run (changed config, another run holds it, lost checkpoint)."""


class StageFailed(CascadeError):
    def __init__(self, stage: str, error: str):
        self.stage = stage
        self.error = error
        super().__init__(f"stage {stage!r} failed: {error}")


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``<run_dir>/.lock`` for the duration; a second ``cascade run`` on it is refused. The
    kernel drops the lock when the process dies, so a killed run never leaves it stale."""
    path = run_dir / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise RunDirError(f"another cascade run (pid {holder}) is using {run_dir}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def is_locked(run_dir: Path) -> bool:
    """Is a live ``cascade run`` holding ``run_dir``?"""
    path = Path(run_dir) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(data, list):
        out = {}
        for index, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}[{index}]"))
        return out or {prefix: []}
    return {prefix: data}


def config_changes(old: Mapping[str, Any], new: Mapping[str, Any], limit: int = 12) -> list[str]:
    """Human-readable differences between two config dumps (``key: old -> new``)."""
    before, after = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(before) | set(after)):
        if before.get(key, "<unset>") != after.get(key, "<unset>"):
            lines.append(f"{key}: {before.get(key, '<unset>')!r} -> {after.get(key, '<unset>')!r}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def _absolute_result(result: StageResult) -> StageResult:
    """The result with its checkpoint paths absolute (a backend may return relative ones)."""
    data = result.to_dict()
    refs = [data["checkpoint"], *(e["checkpoint"] for e in data["evaluations"] if e.get("checkpoint"))]
    for ref in refs:
        ref["path"] = os.path.abspath(ref["path"])
    return StageResult.from_dict(data)


class _TrackedReporter:
    """The reporter a backend gets: the display's, plus the live step in the manifest (at most
    every ``PROGRESS_INTERVAL`` seconds) and the stop request of :class:`StopController`."""

    def __init__(self, inner: Any, sequencer: Sequencer, manifest: RunManifest, record: StageRecord):
        self.inner, self.sequencer, self.manifest, self.record = inner, sequencer, manifest, record
        self._saved_at = 0.0

    def start(self, total_steps: int, description: str = "") -> None:
        self.record.total_steps = int(total_steps) or None
        self.inner.start(total_steps, description)

    def step(self, step: int, metrics: Mapping[str, Any]) -> None:
        self.inner.step(step, metrics)
        self.record.step = int(step)
        now = time.monotonic()
        if now - self._saved_at >= PROGRESS_INTERVAL:
            self._saved_at = now
            save_manifest(self.sequencer.run_dir, self.manifest)

    def log(self, message: str) -> None:
        self.inner.log(message)

    def stop_requested(self) -> str | None:
        return self.sequencer.stopper.requested()


class Sequencer:
    """Runs ``plan`` in ``plan.run_dir``; see the module docstring for the guarantees."""

    def __init__(
        self,
        plan: Plan,
        *,
        registry: PluginRegistry | None = None,
        display: CascadeProgress | None = None,
        allow_config_change: bool = False,
        config_data: Mapping[str, Any] | None = None,
        stop_grace_seconds: float = DEFAULT_GRACE_SECONDS,
    ):
        self.plan = plan
        self.stopper = StopController(stop_grace_seconds)
        self.run_dir = plan.run_dir
        self.registry = registry or get_registry(plan.config.plugins)
        self.display = display
        self.allow_config_change = allow_config_change
        #: what ``config.yaml`` records (the resolved YAML data; default: the validated config)
        self.config_data = dict(config_data) if config_data is not None else (
            dict(plan.loaded.data) if plan.loaded is not None else plan.config.model_dump(mode="json")
        )
        #: messages about the run directory, shown once the display is up
        self._notes: list[str] = []

    # -- public ---------------------------------------------------------------------------------

    def run(self) -> RunManifest:
        """Run every pending stage; returns the final manifest. Raises :class:`StageFailed` (the
        run stays resumable), :class:`RunDirError`, ``ConfigError`` from the backend check, or
        :class:`StageInterrupted` after SIGINT / SIGTERM (the run is marked ``interrupted``)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with run_lock(self.run_dir), self.stopper.installed():
            self._remove_stale_temp_files()
            manifest = self._open_manifest()
            display = self.display or CascadeProgress(log_path=self.run_dir / "cascade.log")
            if display.log_path is None:
                display.log_path = self.run_dir / "cascade.log"
            self.display = display
            for note in self._notes:
                display.message(note)
            try:
                self._materialize_datasets(manifest)
                backend = check_with_backend(self.plan, self.registry)
                with display:
                    return self._run_stages(manifest, backend)
            except StageInterrupted:
                if manifest.status != "interrupted":
                    manifest.status = "interrupted"
                    save_manifest(self.run_dir, manifest)
                raise

    # -- run directory --------------------------------------------------------------------------

    def _remove_stale_temp_files(self) -> None:
        # temp files of atomic writes interrupted by a crash; the real files are intact
        for pattern in (f".{MANIFEST_NAME}.*.tmp", f".{CONFIG_SNAPSHOT}.*.tmp", f"{CONFIG_ARCHIVE}/.*.tmp",
                        "data/.*.tmp"):
            for leftover in glob.glob(str(self.run_dir / pattern)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)

    def _open_manifest(self) -> RunManifest:
        if not (self.run_dir / MANIFEST_NAME).exists():
            manifest = RunManifest(
                name=self.plan.config.name,
                config_hash=self.plan.config_hash,
                base_dir=str(self.plan.base_dir),
                backend=self.plan.config.backend.name,
                stages=[self._new_record(s) for s in self.plan.stages],
            )
            self._write_snapshot()
            save_manifest(self.run_dir, manifest)
            return manifest
        manifest = load_manifest(self.run_dir)
        if manifest.config_hash != self.plan.config_hash:
            # before any stage started (e.g. the backend check refused the first attempt) nothing
            # was computed under the old config, so the new one is taken as it is
            nothing_ran = not any(record.attempts for record in manifest.stages)
            if not (self.allow_config_change or nothing_ran):
                raise RunDirError(self._refusal())
            self._adopt_changed_config(manifest)
        for record in manifest.stages:
            if record.status == "finished":
                self._check_finished(record)
        return manifest

    def _refusal(self) -> str:
        lines = [f"the config differs from the one {self.run_dir} was started with:"]
        snapshot = self.run_dir / CONFIG_SNAPSHOT
        if snapshot.is_file():
            old = yaml.safe_load(snapshot.read_text(encoding="utf-8")) or {}
            lines += [f"  {change}" for change in config_changes(old, self.config_data)]
        lines.append(
            "pass --allow-config-change to continue with the new config (finished stages are kept), "
            "or use another --run-dir"
        )
        return "\n".join(lines)

    def _adopt_changed_config(self, manifest: RunManifest) -> None:
        old = {r.name: r for r in manifest.stages}
        planned = {s.name for s in self.plan.stages}
        self._archive_current_snapshot(manifest.config_hash)
        not_applied: dict[str, list[str]] = {}
        for stage in self.plan.stages:
            record = old.get(stage.name)
            if record is None or record.status != "finished" or record.ran_with is None:
                continue
            changes = config_changes(record.ran_with, stage.describe())
            if changes:
                not_applied[stage.name] = changes
                ran_under = record.config_hash or manifest.config_hash
                self._notes.append(
                    f"stage {stage.name} is finished and does not run again: its changes are not applied "
                    f"({'; '.join(changes)}); it keeps the config it ran with "
                    f"({CONFIG_ARCHIVE}/{ran_under}.yaml)"
                )
        manifest.config_history.append(
            {"config_hash": manifest.config_hash, "config": f"{CONFIG_ARCHIVE}/{manifest.config_hash}.yaml",
             "until": time.time(), "dropped_stages": [name for name in old if name not in planned],
             "not_applied": not_applied}
        )
        manifest.config_hash = self.plan.config_hash
        stages = []
        for stage in self.plan.stages:
            record = old.get(stage.name) or self._new_record(stage)
            if record.status != "finished":
                # inputs of unfinished stages are chosen again under the new config
                record.init, record.teachers = None, {}
            stages.append(record)
        manifest.stages = stages
        self._write_snapshot()
        save_manifest(self.run_dir, manifest)

    @staticmethod
    def _new_record(stage: PlannedStage) -> StageRecord:
        return StageRecord(
            name=stage.name, kind=stage.kind, domains=list(stage.domains), parent=stage.init.stage,
            start=stage.init.describe(), branch=stage.branch,
        )

    def _write_snapshot(self) -> None:
        """``config.yaml`` (what the run goes on with) and its copy in ``configs/`` (kept for good)."""
        text = yaml.safe_dump(self.config_data, sort_keys=False)
        archived = self.run_dir / CONFIG_ARCHIVE / f"{self.plan.config_hash}.yaml"
        if not archived.is_file():
            archived.parent.mkdir(exist_ok=True)
            write_text_atomic(archived, text)
        write_text_atomic(self.run_dir / CONFIG_SNAPSHOT, text)

    def _archive_current_snapshot(self, old_hash: str) -> None:
        """Keep the ``config.yaml`` a run directory of an earlier version holds before it is replaced."""
        current = self.run_dir / CONFIG_SNAPSHOT
        archived = self.run_dir / CONFIG_ARCHIVE / f"{old_hash}.yaml"
        if current.is_file() and not archived.is_file():
            archived.parent.mkdir(exist_ok=True)
            write_text_atomic(archived, current.read_text(encoding="utf-8"))

    def _check_finished(self, record: StageRecord) -> None:
        result = record.result or {}
        path = (result.get("checkpoint") or {}).get("path")
        if not path or not Path(path).exists():
            raise RunDirError(
                f"stage {record.name!r} is finished but its checkpoint is missing ({path}); "
                "restore it or start a new run directory"
            )

    # -- data -----------------------------------------------------------------------------------

    def _materialize_datasets(self, manifest: RunManifest) -> None:
        """Write generated datasets once; a file whose recorded hash still matches is kept."""
        for name, source in self.plan.generated().items():
            path = Path(source.path)
            recorded = manifest.datasets.get(name)
            if (
                recorded is not None
                and recorded.get("path") == str(path)
                and recorded.get("kwargs") == dict(source.kwargs)
                and path.is_file()
                and sha256_of(path) == recorded.get("sha256")
            ):
                continue
            manifest.datasets[name] = write_generated_dataset(source, self.registry)
            save_manifest(self.run_dir, manifest)

    # -- stages ---------------------------------------------------------------------------------

    def _run_stages(self, manifest: RunManifest, backend: Backend) -> RunManifest:
        assert self.display is not None
        hook = self.registry.hook
        teacher_registry = TeacherRegistry(self.plan.config.registry)
        total = len(self.plan.stages)
        for position, stage in enumerate(self.plan.stages, start=1):
            record = manifest.stage(stage.name)
            if record.status == "finished":
                assert record.result is not None
                teacher_registry.record(StageResult.from_dict(record.result))
                continue
            try:
                spec = self._prepare_stage(stage, record, manifest, teacher_registry)
            except CascadeError as exc:
                self._record_failure(manifest, record, exc, self.plan.stage_dir(stage.name))
                raise
            record.status, record.error, record.interrupted = "running", None, None
            record.attempts += 1
            record.started_at = time.time()
            record.log_dir = spec.logger.get("log_dir")
            record.config_hash, record.ran_with = self.plan.config_hash, stage.describe()
            manifest.status = "running"
            try:
                # from the moment the manifest says "running", a signal is a stop request to this stage
                with self.stopper.stage(graceful=bool(getattr(backend, "graceful_stop", False))):
                    save_manifest(self.run_dir, manifest)
                    Path(spec.output_dir).mkdir(parents=True, exist_ok=True)
                    again = f", attempt {record.attempts}" if record.attempts > 1 else ""
                    self.display.message(
                        f"stage {position}/{total}: {stage.name} ({stage.kind}) from {stage.init.describe()}{again}"
                    )
                    reporter = _TrackedReporter(self.display.reporter(stage.name), self, manifest, record)
                    hook.cascade_stage_started(stage=spec, run_dir=str(self.run_dir))
                    result = backend.run_stage(spec, reporter)
                self._check_result(spec, result)
                result = _absolute_result(result)
            except KeyboardInterrupt as exc:
                raise self._record_interrupt(manifest, record, exc) from None
            except BaseException as exc:
                self._record_failure(manifest, record, exc, Path(spec.output_dir))
                if isinstance(exc, Exception):
                    raise StageFailed(stage.name, record.error or repr(exc)) from exc
                raise
            record.result = result.to_dict()
            record.status = "finished"
            record.finished_at = time.time()
            teacher_registry.record(result)
            manifest.registry = teacher_registry.to_dict()
            save_manifest(self.run_dir, manifest)
            scores = ", ".join(f"{d}={v:.3f}" for d, v in result.validation.items())
            self.display.message(f"stage {stage.name} finished{': ' + scores if scores else ''}")
            self._call_hook("cascade_stage_finished", manifest, stage=spec, result=result, run_dir=str(self.run_dir))
            if self.stopper.requested() and position < total:
                # the request came as the stage ended: it is finished, the next one does not start
                reason = self.stopper.requested() or "interrupted"
                self.display.message(f"{reason}: stopping before stage {self.plan.stages[position].name}")
                manifest.status = "interrupted"
                save_manifest(self.run_dir, manifest)
                raise StageInterrupted(reason)
        manifest.status = "finished"
        save_manifest(self.run_dir, manifest)
        self._call_hook(
            "cascade_finished", manifest, run_dir=str(self.run_dir), manifest=manifest.model_dump(mode="json")
        )
        return manifest

    def _call_hook(self, name: str, run_manifest: RunManifest, **kwargs: Any) -> None:
        try:
            getattr(self.registry.hook, name)(**kwargs)
        except Exception as exc:
            run_manifest.status = "failed"
            save_manifest(self.run_dir, run_manifest)
            raise CascadeError(f"a plugin's {name} hook failed: {type(exc).__name__}: {exc}") from exc

    def _prepare_stage(
        self, stage: PlannedStage, record: StageRecord, manifest: RunManifest, teacher_registry: TeacherRegistry
    ) -> StageSpec:
        init = self._init_checkpoint(stage, manifest)
        if record.attempts and record.teachers:
            # a resumed stage keeps the teachers it started with
            teachers = record.teachers
        else:
            teachers = {d: self._teacher(stage, d, manifest, teacher_registry) for d in stage.teachers}
        for domain, chosen in teachers.items():
            path = chosen["checkpoint"]["path"]
            if not Path(path).exists():
                raise RunDirError(
                    f"teacher checkpoint of stage {stage.name!r} for domain {domain!r} is missing: {path}"
                )
        record.domains, record.parent, record.branch = list(stage.domains), stage.init.stage, stage.branch
        record.start = stage.init.describe()
        record.init = init.to_dict() if init is not None else None
        record.teachers = teachers
        return self.plan.spec_for(
            stage, init, {d: CheckpointRef.from_dict(t["checkpoint"]) for d, t in teachers.items()}
        )

    def _stage_checkpoint(self, name: str, manifest: RunManifest) -> CheckpointRef:
        record = manifest.stage(name)
        if record.status != "finished" or record.result is None:
            raise RunDirError(f"stage {name!r} has not finished, so its checkpoint does not exist yet")
        return CheckpointRef.from_dict(record.result["checkpoint"])

    def _init_checkpoint(self, stage: PlannedStage, manifest: RunManifest) -> CheckpointRef | None:
        if stage.init.kind == "base":
            return None
        if stage.init.kind == "stage":
            assert stage.init.stage is not None
            return self._stage_checkpoint(stage.init.stage, manifest)
        assert stage.init.path is not None
        return CheckpointRef(path=stage.init.path)

    def _teacher(
        self, stage: PlannedStage, domain: str, manifest: RunManifest, teacher_registry: TeacherRegistry
    ) -> dict[str, Any]:
        ref = stage.teachers[domain]
        if ref.kind == "path":
            return {"checkpoint": CheckpointRef(path=ref.value).to_dict(), "rule": "path"}
        if ref.kind == "stage":
            checkpoint = self._stage_checkpoint(ref.value, manifest)
            return {"checkpoint": checkpoint.to_dict(), "stage": ref.value, "step": checkpoint.step, "rule": "stage"}
        try:
            return teacher_registry.select(ref.value, self.registry.hook)
        except RegistryError as exc:
            raise CascadeError(f"stage {stage.name!r}, teacher for {domain!r} ({ref.describe()}): {exc}") from exc

    def _check_result(self, spec: StageSpec, result: Any) -> None:
        if not isinstance(result, StageResult):
            raise TypeError(f"the backend returned {type(result).__name__}, not a StageResult")
        if result.stage != spec.name:
            raise ValueError(f"the backend returned the result of stage {result.stage!r} for stage {spec.name!r}")
        if not Path(result.checkpoint.path).exists():
            raise FileNotFoundError(f"the backend's output checkpoint does not exist: {result.checkpoint.path}")

    def _record_interrupt(self, manifest: RunManifest, record: StageRecord, exc: KeyboardInterrupt) -> StageInterrupted:
        """Mark the stage ``interrupted`` (never ``failed``: nothing went wrong); returns what to raise."""
        if not isinstance(exc, StageInterrupted):
            exc = StageInterrupted(self.stopper.requested() or "SIGINT")
        checkpoint = os.path.abspath(exc.checkpoint) if exc.checkpoint else None
        record.status, record.error = "interrupted", None
        if exc.step is not None:
            record.step = exc.step
        record.interrupted = {"reason": exc.reason, "step": exc.step, "checkpoint": checkpoint, "at": time.time()}
        manifest.status = "interrupted"
        save_manifest(self.run_dir, manifest)
        if self.display is not None:
            self.display.message(f"stage {record.name} interrupted: {exc.describe()}")
        return StageInterrupted(exc.reason, step=exc.step, checkpoint=checkpoint)

    def _record_failure(self, manifest: RunManifest, record: StageRecord, exc: BaseException, output_dir: Path) -> None:
        record.status = "failed"
        record.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        manifest.status = "failed"
        save_manifest(self.run_dir, manifest)
        with contextlib.suppress(OSError):
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            output_dir.mkdir(parents=True, exist_ok=True)
            write_text_atomic(output_dir / "error.txt", trace)
        if self.display is not None:
            self.display.message(f"stage {record.name} failed: {record.error}")
