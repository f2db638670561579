"""``cascade judge``: grade one solution on a problem package exactly as the ``competition`` reward does."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.judge import Judge, JudgeReport
from cascade_plugins.sandbox import SandboxUnavailable

_EXTENSIONS = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp"}
_STYLE = {"AC": "green", "SKIPPED": "dim"}


def _language_of(path: Path, language: str | None) -> str:
    if language:
        return language
    try:
        return _EXTENSIONS[path.suffix.lower()]
    except KeyError:
        raise click.BadParameter(
            f"cannot tell the language of {path.name!r} from its extension; pass --language cpp|python",
            param_hint="SOLUTION_FILE",
        ) from None


def _points(value: float) -> str:
    return f"{value:g}"


def render(report: JudgeReport, console: Console, *, show_tests: bool = False) -> None:
    scored = report.kind == "scoring"
    table = Table(title=f"{report.problem} ({report.scoring})", title_justify="left")
    table.add_column("group" if report.scoring in ("pass-fail", "kattis-groups") else "subtask")
    table.add_column("verdict")
    if scored:
        table.add_column("score", justify="right")
    table.add_column("tests passed", justify="right")
    for group in report.groups:
        style = _STYLE.get(group.verdict, "red")
        points = [f"{_points(group.score)} / {_points(group.max_score)}"] if scored else []
        table.add_row(group.name, f"[{style}]{group.verdict}[/]", *points, f"{group.passed} / {group.tests}")
    style = _STYLE.get(report.verdict, "red")
    passed = sum(1 for t in report.tests if t.verdict == "AC")
    total_points = [f"[bold]{_points(report.score)} / {_points(report.max_score)}[/]"] if scored else []
    table.add_section()
    table.add_row(
        "[bold]total[/]", f"[bold {style}]{report.verdict}[/]", *total_points, f"{passed} / {len(report.tests)}"
    )
    console.print(table)
    if show_tests:
        tests = Table(title="tests", title_justify="left")
        for column in ("test", "verdict", "time (s)", "memory (MiB)", "message"):
            tests.add_column(column)
        for test in report.tests:
            tests.add_row(
                test.name,
                f"[{_STYLE.get(test.verdict, 'red')}]{test.verdict}[/]",
                f"{test.time_s:.3f}",
                f"{test.memory_kb / 1024:.1f}",
                test.message[:80],
            )
        console.print(tests)
    else:
        first = next((t for t in report.tests if t.verdict not in ("AC", "SKIPPED")), None)
        if first is not None:
            console.print(f"first failure: {first.name}: {first.verdict} {first.message}".rstrip())
    if report.compile_message:
        console.print("[red]compilation failed:[/]")
        console.print(report.compile_message, markup=False, highlight=False)


@click.command()
@click.argument("problem_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("solution_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--language", type=click.Choice(["cpp", "python"]), help="Default: from the file extension.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option("--tests", "show_tests", is_flag=True, help="Also print one row per test.")
@click.option(
    "--isolation",
    type=click.Choice(["auto", "required", "none"]),
    default="auto",
    show_default=True,
    help="Sandbox isolation (see docs/sandbox.md).",
)
def judge(
    problem_dir: Path, solution_file: Path, language: str | None, as_json: bool, show_tests: bool, isolation: str
) -> None:
    """Judge SOLUTION_FILE on the problem package PROBLEM_DIR (Kattis format, see docs/competition.md).

    Prints the verdict per test group (or IOI subtask) and the total: exactly what the
    ``competition`` reward sees.
    """
    chosen = _language_of(solution_file, language)
    source = solution_file.read_text(encoding="utf-8", errors="replace")
    grader = Judge(isolation=isolation)
    try:
        report = grader.judge(problem_dir, source, chosen)
    except (ProblemPackageError, SandboxUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        grader.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render(report, Console(), show_tests=show_tests)
