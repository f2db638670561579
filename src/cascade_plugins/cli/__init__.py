"""The ``cascade`` command line. Each sub-command lives in its own module of this package."""

from __future__ import annotations

import click

from cascade_plugins import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cascade")
def cli() -> None:
    """Cascade RL and multi-domain on-policy distillation (MOPD) as NeMo RL plugins."""


def _add_commands() -> None:
    # One import per sub-command module; each module defines one click command (or group).
    from cascade_plugins.cli import plugins_cmd, score

    cli.add_command(plugins_cmd.plugins)
    cli.add_command(score.score)
    from cascade_plugins.cli import plan, report, run, status

    cli.add_command(plan.plan)
    cli.add_command(run.run)
    cli.add_command(status.status)
    cli.add_command(report.report)
    from cascade_plugins.cli import judge

    cli.add_command(judge.judge)


_add_commands()


def main() -> None:
    cli()
