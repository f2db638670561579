"""``cascade plan CONFIG [overrides...]``: validate a cascade and print its resolved plan."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.tree import Tree

from cascade_plugins.cascade.loading import default_run_dir, load_cascade_config
from cascade_plugins.cascade.plan import Plan, check_plan
from cascade_plugins.config import ConfigError

__all__ = ["build_checked_plan", "plan", "print_plan"]


def build_checked_plan(
    config_path: str, overrides: tuple[str, ...], run_dir: str | None, notes: list[str] | None = None
) -> Plan:
    """Load, resolve and check a cascade without touching its run directory: generated datasets
    are written to a temporary folder for the backend's checks. Raises ``ConfigError`` listing
    every problem, the static ones and the backend's, each once. With ``notes``, the backend's
    remarks on each stage are appended to it as ``"<stage>: <note>"``."""
    config, loaded = load_cascade_config(config_path, overrides)
    return check_plan(config, loaded, run_dir=run_dir or default_run_dir(config), notes=notes)


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return str(value)


def print_plan(resolved: Plan, console: Console) -> None:
    config = resolved.config
    console.print(
        f"[bold]Plan[/] {config.name} · backend [bold]{config.backend.name}[/] · "
        f"{len(resolved.stages)} stages · run dir {resolved.run_dir} · config {resolved.config_hash[:12]}",
        highlight=False,
    )
    stages = Table(title="stages, in order")
    for column in ("#", "stage", "kind", "starts from", "data (domain: dataset)", "rewards", "teachers", "loss"):
        stages.add_column(column)
    for stage in resolved.stages:
        start = stage.init.describe() + (" [yellow](branch)[/]" if stage.branch else "")
        data = "\n".join(f"{d}: {src.name or src.path}" for d, src in stage.data.items())
        rewards = "\n".join(f"{d}: {r.name}{' ' + _short(dict(r.options)) if r.options else ''}"
                            for d, r in stage.rewards.items())
        teachers = "\n".join(f"{d}: {t.describe()}" for d, t in stage.teachers.items()) or "–"
        stages.add_row(str(stage.index + 1), stage.name, stage.kind, start, data, rewards or "–", teachers,
                       stage.loss.name if stage.loss else "–")
    console.print(stages)

    tree = Tree("[bold]checkpoint lineage[/] (base model)")
    nodes = {None: tree}
    for stage in resolved.stages:
        parent = nodes.get(stage.init.stage if stage.init.kind == "stage" else None, tree)
        label = stage.name if stage.init.kind != "path" else f"{stage.name} (from {stage.init.path})"
        nodes[stage.name] = parent.add(label + (" [yellow](branch)[/]" if stage.branch else ""))
    console.print(tree)

    hparams = Table(title="resolved hyper-parameters (hparams.common < hparams.<kind> < stage)")
    hparams.add_column("stage")
    hparams.add_column("hparams", overflow="fold")
    for stage in resolved.stages:
        hparams.add_row(stage.name, ", ".join(f"{k}={_short(v)}" for k, v in stage.hparams.items()) or "–")
    console.print(hparams)

    data = Table(title="datasets")
    for column in ("name", "source", "path"):
        data.add_column(column, overflow="fold")
    for name, source in resolved.datasets.items():
        origin = f"{source.generator} {_short(dict(source.kwargs))}" if source.generator else "file"
        data.add_row(name, origin, source.path)
    console.print(data)

    every = config.eval.every_n_steps
    evals = Table(title=f"validation after every stage{f' and every {every} steps' if every else ''}")
    for column in ("domain", "data", "reward", "registry rank"):
        evals.add_column(column)
    for domain, (source, reward) in resolved.eval.items():
        evals.add_row(domain, source.name or source.path, reward.name,
                      f"{config.registry.direction_for(domain)} {config.registry.metric}")
    console.print(evals)


@click.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.argument("overrides", nargs=-1)
@click.option("--run-dir", help="Run directory to plan for (default: the config's run_dir or runs/<name>).")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan(config: str, overrides: tuple[str, ...], run_dir: str | None, as_json: bool) -> None:
    """Validate CONFIG (with OVERRIDES such as stages.1.hparams.steps=50) and print the resolved
    plan: stage order, starting checkpoints, teachers, data and hyper-parameters. Nothing runs.

    Exit status 2 with every problem listed when the config cannot run."""
    notes: list[str] = []
    try:
        resolved = build_checked_plan(config, overrides, run_dir, notes)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({**resolved.describe(), "backend_notes": notes}, indent=2))
    else:
        console = Console(width=max(Console().width, 120))
        print_plan(resolved, console)
        if notes:
            console.print("[bold]backend notes[/]")
            for note in notes:
                console.print(f"  • {note}", highlight=False)
