"""``cascade judge``: grade one solution on a problem package exactly as the ``competition`` reward does."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.judge import Judge, JudgeReport
from cascade_plugins.rewards.competition.languages import language_code, language_of_file
from cascade_plugins.sandbox import SandboxUnavailable

_STYLE = {"AC": "green", "SKIPPED": "dim"}


class _Unsupported(click.ClickException):
    """The format allows it, the judge does not do it: exit code 2, like a usage error."""

    exit_code = 2


def _check_language(path: Path, language: str | None) -> None:
    if language or path.is_dir() or language_of_file(path) is not None:
        return
    raise click.BadParameter(
        f"cannot tell the language of {path.name!r} from its extension; pass --language cpp|python|c",
        param_hint="SOLUTION",
    )


def _language(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            language_code(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


def _verdict(verdict: str, cause: str) -> str:
    return f"{verdict} ({cause})" if cause else verdict


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
                f"[{_STYLE.get(test.verdict, 'red')}]{_verdict(test.verdict, test.cause)}[/]",
                f"{test.time_s:.3f}",
                f"{test.memory_kb / 1024:.1f}",
                test.message[:80],
            )
        console.print(tests)
    else:
        first = next((t for t in report.tests if t.verdict not in ("AC", "SKIPPED")), None)
        if first is not None:
            verdict = _verdict(first.verdict, first.cause)
            console.print(f"first failure: {first.name}: {verdict} {first.message}".rstrip(), markup=False)
    if report.compile_message:
        console.print("[red]compilation failed:[/]")
        console.print(report.compile_message, markup=False, highlight=False)


@click.command()
@click.argument("problem_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("solution", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--language",
    callback=_language,
    help="cpp, python, c, or a C++ dialect such as c++20 (compiled as gnu++20). Default: from the file extensions.",
)
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
    problem_dir: Path, solution: Path, language: str | None, as_json: bool, show_tests: bool, isolation: str
) -> None:
    """Judge SOLUTION (a source file, or a folder of them) on the problem package PROBLEM_DIR
    (Kattis / ICPC format, see docs/competition.md).

    Prints the verdict per test group (or IOI subtask) and the total: exactly what the
    ``competition`` reward sees. Exit code 1: a broken package; 2: something the format allows
    but the judge does not do (a language it cannot run, say).
    """
    _check_language(solution, language)
    grader = Judge(isolation=isolation)
    try:
        report = grader.judge_files(problem_dir, solution, language=language)
    except UnsupportedFeature as exc:
        raise _Unsupported(str(exc)) from None
    except (ProblemPackageError, SandboxUnavailable) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        grader.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        render(report, Console(), show_tests=show_tests)
