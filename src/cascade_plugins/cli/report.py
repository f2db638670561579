"""``cascade report RUN_DIR``: the domain x stage score table (Markdown) and a PNG plot."""

from __future__ import annotations

import sys

import click

from cascade_plugins.cascade.manifest import ManifestError
from cascade_plugins.cascade.report import DEFAULT_TOLERANCE, write_report

__all__ = ["report"]


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--output", type=click.Path(file_okay=False), help="Folder for report.md and report.png "
              "(default: RUN_DIR).")
@click.option("--tolerance", type=float, default=DEFAULT_TOLERANCE, show_default=True,
              help="Score change below which nothing is marked as forgetting or recovery.")
def report(run_dir: str, output: str | None, tolerance: float) -> None:
    """Write RUN_DIR/report.md (every domain's validation score after every stage, forgetting and
    recovery marked), report.png (the scores and training curves through the cascade) and, when
    scores exist, recovery.png (each domain against its MOPD teachers), and print the Markdown."""
    try:
        md, png, text = write_report(run_dir, output, tolerance)
    except ManifestError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(text)
    missing = " (no plot: matplotlib missing, or no scores and no training metrics yet)"
    click.echo(f"report: {md}" + (f", plot: {png}" if png else missing), err=True)
