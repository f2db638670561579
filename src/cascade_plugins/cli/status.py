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
    """Show the stages of the cascade run in RUN_DIR: status, starting point, steps, checkpoint and
    validation scores. A stage left 'running' by a run that is no longer alive shows as interrupted."""
    try:
        manifest = load_manifest(run_dir)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    alive = is_locked(Path(run_dir))
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
        metrics = result.get("metrics") or []
        steps = str(metrics[-1].get("step", len(metrics))) if metrics else "–"
        scores = ", ".join(f"{d}={v:.3f}" for d, v in (result.get("validation") or {}).items()) or "–"
        start = (record.parent or record.start) + (" (branch)" if record.branch else "")
        checkpoint = (result.get("checkpoint") or {}).get("path", "–")
        if record.status == "failed" and record.error:
            checkpoint = f"[red]{record.error}[/]"
        table.add_row(str(index), record.name, record.kind, f"[{_STYLE[state]}]{state}[/]", start,
                      str(record.attempts), steps, _duration(record), scores, checkpoint)
    console.print(table)
    for record in manifest.stages:
        for domain, teacher in record.teachers.items():
            source = teacher.get("stage") or teacher["checkpoint"]["path"]
            score = f" (score {teacher['score']:.3f})" if teacher.get("score") is not None else ""
            console.print(f"  {record.name}: teacher for {domain} = {source} step {teacher.get('step')}{score}, "
                          f"rule {teacher.get('rule')}", highlight=False)
