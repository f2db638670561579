"""``cascade plugins``: what every loaded plugin registered."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from cascade_plugins.plugins import PluginError, get_registry


@click.command()
@click.option("--kind", type=click.Choice(["reward", "loss", "backend", "dataset"]), help="Only this kind.")
def plugins(kind: str | None) -> None:
    """List every registered reward, loss, backend and dataset with its provider."""
    try:
        registry = get_registry()
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    table = Table(title="cascade plugins")
    for column in ("name", "kind", "plugin", "distribution", "version"):
        table.add_column(column)
    for reg in registry.all(kind):  # type: ignore[arg-type]
        table.add_row(reg.name, reg.kind, reg.plugin, reg.distribution, reg.version)
    Console().print(table)
