"""``cascade run``: run (or continue) a cascade in a run directory."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from cascade_plugins.cascade.interrupts import DEFAULT_GRACE_SECONDS, EXIT_CODES
from cascade_plugins.cascade.loading import default_run_dir, load_cascade_config
from cascade_plugins.cascade.manifest import MANIFEST_NAME, ManifestError, load_manifest
from cascade_plugins.cascade.plan import check_plan
from cascade_plugins.cascade.report import write_report
from cascade_plugins.cascade.sequencer import CONFIG_SNAPSHOT, CascadeError, RunDirError, Sequencer, StageFailed
from cascade_plugins.config import ConfigError
from cascade_plugins.interfaces import StageInterrupted

__all__ = ["run"]


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1)
@click.option("--run-dir", help="Where the run lives (default: the config's run_dir or runs/<name>).")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False),
              help="Continue the run in this directory with the config it was started with.")
@click.option("--allow-config-change", is_flag=True,
              help="Continue a run whose config changed; finished stages are kept.")
@click.option("--no-report", is_flag=True, help="Do not write report.md / report.png at the end.")
@click.option("--stop-timeout", type=click.FloatRange(min=0), default=DEFAULT_GRACE_SECONDS, show_default=True,
              metavar="SECONDS", help="On SIGINT/SIGTERM, how long the running stage may take to finish its "
              "step and save a checkpoint before it is stopped without one.")
def run(args: tuple[str, ...], run_dir: str | None, resume_dir: str | None, allow_config_change: bool,
        no_report: bool, stop_timeout: float) -> None:
    """Run the cascade in CONFIG (ARGS: CONFIG [OVERRIDES...]), or continue one with
    --resume RUN_DIR [OVERRIDES...].

    Running again on an existing run directory continues where it stopped: finished stages are
    kept, an interrupted stage resumes from its own last checkpoint. Ctrl-C (SIGINT) or SIGTERM
    saves a checkpoint of the running stage (local backend) and marks it interrupted; a second
    signal stops at once. Exit status: 0 done, 1 a stage failed (the run stays resumable), 2 the
    config or run directory was refused before any compute, 130 / 143 interrupted by SIGINT /
    SIGTERM (resumable).
    """
    if resume_dir is not None:
        target = Path(resume_dir)
        config_path, overrides = target / CONFIG_SNAPSHOT, args
        if run_dir is not None and Path(run_dir).resolve() != target.resolve():
            raise click.UsageError("give either --resume RUN_DIR or --run-dir, not two different folders")
        if not (target / MANIFEST_NAME).is_file():
            click.echo(f"{target} is not a cascade run directory (no {MANIFEST_NAME})", err=True)
            sys.exit(2)
    elif not args:
        raise click.UsageError("give a CONFIG file, or --resume RUN_DIR")
    else:
        config_path, overrides = Path(args[0]), args[1:]
        target = None
    try:
        config, loaded = load_cascade_config(config_path, overrides)
        if target is None:
            target = Path(run_dir) if run_dir else default_run_dir(config)
        base_dir = None
        if (target / MANIFEST_NAME).is_file():
            # relative paths keep meaning what they meant when the run started
            base_dir = load_manifest(target).base_dir
        resolved = check_plan(config, loaded, run_dir=target, base_dir=base_dir)
        sequencer = Sequencer(resolved, allow_config_change=allow_config_change, config_data=loaded.data,
                              stop_grace_seconds=stop_timeout)
        manifest = sequencer.run()
    except (ConfigError, RunDirError, ManifestError) as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    except StageFailed as exc:
        click.echo(f"{exc}\nthe run is resumable: cascade run --resume {target}", err=True)
        sys.exit(1)
    except CascadeError as exc:
        click.echo(f"{exc}\nresume with: cascade run --resume {target}", err=True)
        sys.exit(1)
    except StageInterrupted as exc:
        click.echo(f"interrupted by {exc.describe()}\nresume with: cascade run --resume {target}", err=True)
        sys.exit(EXIT_CODES.get(exc.reason.split()[0], 130))
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted; resume with: cascade run --resume {target}", err=True)
        sys.exit(130)
    click.echo(f"cascade finished: {len(manifest.stages)} stages in {target}", err=True)
    if not no_report:
        md, png, text = write_report(target)
        click.echo(text)
        click.echo(f"report: {md}" + (f", plot: {png}" if png else ""), err=True)
