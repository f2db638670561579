"""``cascade status RUN_DIR``: a table of a run's stages."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cascade_plugins.cascade.manifest import ManifestError, StageRecord, load_manifest
from cascade_plugins.cascade.sequencer import is_locked

__all__ = ["status"]

_STYLE = {"finished": "green", "running": "cyan", "failed": "red", "pending": "dim", "interrupted": "yellow"}


def _shown_path(path: str, run_dir: Path) -> str:
    """Paths inside the run directory relative to it (shorter, and true after a move)."""
    try:
        return str(Path(path).relative_to(run_dir))
    except ValueError:
        return path


def _steps(record: StageRecord) -> str:
    metrics = (record.result or {}).get("metrics") or []
    if record.status == "finished" and metrics:
        return str(metrics[-1].get("step", len(metrics)))
    if record.step is not None:
        return f"{record.step}/{record.total_steps}" if record.total_steps else str(record.step)
    return "–"


def _outcome(record: StageRecord, run_dir: Path) -> str:
    """The checkpoint column: the output checkpoint, the error, or what an interruption saved."""
    if record.status == "failed" and record.error:
        return f"[red]{record.error}[/]"
    if record.status == "interrupted" and record.interrupted:
        info = record.interrupted
        if info.get("checkpoint"):
            return f"{info['reason']}: step {info['step']} saved ({_shown_path(info['checkpoint'], run_dir)})"
        return f"{info['reason']}: nothing saved; resumes from its last checkpoint"
    path = (record.result or {}).get("checkpoint", {}).get("path")
    return _shown_path(path, run_dir) if path else "–"


def _duration(record: StageRecord) -> str:
    if record.started_at is None:
        return "–"
    end = record.finished_at if record.finished_at is not None else None
    if end is None:
        return "–"
    return str(dt.timedelta(seconds=round(end - record.started_at)))


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
def status(run_dir: str, as_json: bool) -> None:
    """Show the stages of the cascade run in RUN_DIR: status, starting point, steps (live while a
    stage runs: done/total), checkpoint and validation scores. A stage stopped by SIGINT/SIGTERM,
    or left 'running' by a run that is no longer alive, shows as interrupted."""
    try:
        manifest = load_manifest(run_dir)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    alive = is_locked(Path(run_dir))
    root = Path(run_dir).resolve()
    if as_json:
        click.echo(json.dumps({**manifest.model_dump(mode="json"), "alive": alive}, indent=2))
        return
    run_state = manifest.status if alive or manifest.status != "running" else "interrupted"
    console = Console(width=max(Console().width, 120))
    table = Table(title=f"{manifest.name or 'cascade'} · {run_state} · backend {manifest.backend}")
    for column in ("#", "stage", "kind", "status", "starts from", "attempts", "steps", "time", "validation",
                   "checkpoint"):
        table.add_column(column, overflow="fold")
    for index, record in enumerate(manifest.stages, start=1):
        state = record.status
        if state == "running" and not alive:
            state = "interrupted"
        result = record.result or {}
        scores = ", ".join(f"{d}={v:.3f}" for d, v in (result.get("validation") or {}).items()) or "–"
        start = (record.parent or record.start) + (" (branch)" if record.branch else "")
        table.add_row(str(index), record.name, record.kind, f"[{_STYLE[state]}]{state}[/]", start,
                      str(record.attempts), _steps(record), _duration(record), scores, _outcome(record, root))
    console.print(table)
    not_applied: dict[str, list[str]] = {}
    for change in manifest.config_history:
        for stage, changes in (change.get("not_applied") or {}).items():
            not_applied.setdefault(stage, []).extend(changes)
    for record in manifest.stages:
        if record.config_hash is not None and record.config_hash != manifest.config_hash:
            skipped = f"; not applied to it: {'; '.join(not_applied[record.name])}" if not_applied.get(
                record.name) else ""
            console.print(f"  {record.name}: ran with configs/{record.config_hash}.yaml (an earlier config)"
                          f"{skipped}", highlight=False)
        for domain, teacher in record.teachers.items():
            source = teacher.get("stage") or teacher["checkpoint"]["path"]
            score = f" (score {teacher['score']:.3f})" if teacher.get("score") is not None else ""
            console.print(f"  {record.name}: teacher for {domain} = {source} step {teacher.get('step')}{score}, "
                          f"rule {teacher.get('rule')}", highlight=False)
