"""``cascade judge`` against Kattis problemtools' ``verifyproblem`` on the test suite's packages, in one run.

    .venv/bin/python benchmarks/competition_bench.py [--verifyproblem PATH] [--problems sum,guess]

problemtools is the anchor; install it in a separate venv (``python -m venv /tmp/pt &&
/tmp/pt/bin/pip install problemtools``) and pass its ``verifyproblem``. Every submission of
``tests/rewards/competition/problems/*/submissions`` is judged by both with the same time limit;
the table shows both verdicts and the seconds per submission (ours: one warm ``Judge``, checker
compiled once; problemtools: one ``verifyproblem -s`` call per submission). Not a pass/fail test.

The packages are adapted for problemtools in a temporary copy: ``limits.time_limit`` becomes
``-t``, ``grading.yaml`` is dropped, ``memory_limit_exceeded/`` moves to ``run_time_error/`` (Kattis
has no MLE verdict), and Python runs on CPython instead of PyPy (a ``languages.yaml`` override).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml
from rich.console import Console
from rich.table import Table

from cascade_plugins.rewards.competition.judge import Judge
from cascade_plugins.rewards.competition.package import load_problem

PROBLEMS = Path(__file__).resolve().parents[1] / "tests" / "rewards" / "competition" / "problems"
LANGUAGES = {".cpp": "cpp", ".py": "python"}
SKIPPED_FOLDERS = {"compile_error", "partial"}  # no Kattis category for these
KATTIS_FOLDER = {"memory_limit_exceeded": "run_time_error"}
PYTHON_OVERRIDE = """python3:
    name: 'Python 3'
    priority: 850
    files: '*.py *.py3'
    compile: 'python3 -m py_compile {files}'
    run: 'python3 "{mainfile}"'
"""
_VERDICT = re.compile(r"(?:OK: |got )(AC|WA|TLE|RTE|MLE|OLE|JE|PE)\b")


def kattis_copy(problem: Path, target: Path) -> float:
    """Copy ``problem`` to ``target`` in legacy Kattis form; returns its time limit."""
    shutil.copytree(problem, target)
    config = yaml.safe_load((target / "problem.yaml").read_text())
    time_limit = float(config.get("limits", {}).pop("time_limit", 2.0))
    (target / "problem.yaml").write_text(yaml.safe_dump(config))
    (target / "grading.yaml").unlink(missing_ok=True)
    for folder in list((target / "submissions").iterdir()):
        if folder.name in SKIPPED_FOLDERS:
            shutil.rmtree(folder)
        elif folder.name in KATTIS_FOLDER:
            destination = folder.parent / KATTIS_FOLDER[folder.name]
            destination.mkdir(exist_ok=True)
            for item in folder.iterdir():
                item.rename(destination / item.name)
            folder.rmdir()
    return time_limit


def run_problemtools(verifyproblem: str, package: Path, submission: str, time_limit: float, env: dict[str, str]):
    started = time.perf_counter()
    completed = subprocess.run(
        [verifyproblem, str(package), "-p", "submissions", "-s", f"^{re.escape(submission)}$", "-t", f"{time_limit:g}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )
    elapsed = time.perf_counter() - started
    found = _VERDICT.search(completed.stdout + completed.stderr)
    return (found.group(1) if found else "?"), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--verifyproblem", default=shutil.which("verifyproblem"), help="problemtools' verifyproblem")
    parser.add_argument("--problems", default="sum,hypot,split,divisors,guess")
    args = parser.parse_args()
    console = Console(width=150)
    if not args.verifyproblem:
        console.print("[yellow]problemtools not found: only our side is timed (see --verifyproblem)[/]")

    table = Table(title="competition judge vs Kattis problemtools (same packages, same time limit)")
    for column in ("submission", "expected", "ours", "problemtools", "agree", "ours s", "problemtools s"):
        table.add_column(column, justify="right" if column.endswith(" s") else "left")
    judge = Judge()
    totals = {"ours": 0.0, "anchor": 0.0, "agree": 0, "n": 0}
    with tempfile.TemporaryDirectory() as scratch:
        xdg = Path(scratch) / "xdg" / "problemtools"
        xdg.mkdir(parents=True)
        (xdg / "languages.yaml").write_text(PYTHON_OVERRIDE)
        env = dict(os.environ, XDG_CONFIG_HOME=str(xdg.parent))
        for name in args.problems.split(","):
            problem = PROBLEMS / name
            anchor_copy = Path(scratch) / name
            time_limit = kattis_copy(problem, anchor_copy)
            assert load_problem(problem).limits.time_limit_s == time_limit
            for path in sorted((problem / "submissions").glob("*/*.*")):
                folder = path.parent.name
                if folder in SKIPPED_FOLDERS:
                    continue
                started = time.perf_counter()
                ours = judge.judge(problem, path.read_text(), LANGUAGES[path.suffix]).verdict
                ours_s = time.perf_counter() - started
                anchor, anchor_s = "-", float("nan")
                if args.verifyproblem:
                    kattis_name = f"{KATTIS_FOLDER.get(folder, folder)}/{path.name}"
                    anchor, anchor_s = run_problemtools(args.verifyproblem, anchor_copy, kattis_name, time_limit, env)
                    totals["anchor"] += anchor_s
                agree = anchor.replace("RTE", "RE") == ours or (ours == "MLE" and anchor == "RTE")
                totals["ours"] += ours_s
                totals["agree"] += int(agree)
                totals["n"] += 1
                table.add_row(
                    f"{name}/{folder}/{path.name}",
                    folder,
                    ours,
                    anchor,
                    "yes" if agree else "NO",
                    f"{ours_s:.2f}",
                    f"{anchor_s:.2f}",
                )
    judge.close()
    table.add_section()
    table.add_row(
        "total", "", "", "", f"{totals['agree']}/{totals['n']}", f"{totals['ours']:.1f}", f"{totals['anchor']:.1f}"
    )
    console.print(table)


if __name__ == "__main__":
    main()
