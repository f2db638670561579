"""Agreement of ``cascade judge`` with the labelled submissions of Kattis / ICPC problem packages.

    .venv/bin/python benchmarks/kattis_examples_bench.py PATH [PATH ...] [--problems a,b] [--workers N]

Every folder with a ``problem.yaml`` under the given paths is a package (for example the
``examples/`` of Kattis' problem-package-format or problemtools, or ``test/problems`` of
BAPCtools; check them out yourself, nothing is downloaded). Every labelled submission of a package
(a file or folder in ``submissions/<label>/``) is judged with the library call ``cascade judge``
makes, and its verdict is compared with what its label asks for, as the format defines it:

- the folder: ``accepted`` (all AC), ``wrong_answer`` / ``time_limit_exceeded`` / ``run_time_error``
  (all AC or that verdict, at least one of it), ``rejected`` (at least one of WA/TLE/RTE),
  ``brute_force`` (AC/RTE/TLE, at least one RTE/TLE), ``partially_accepted`` (AC, less than full score);
- ``submissions/submissions.yaml``: glob keys with ``permitted`` / ``required`` (also per test group);
- ``@EXPECTED_RESULTS@:`` in the source (DOMjudge), for folders outside those above.

Verdicts compare in the format's vocabulary (AC, WA, TLE, RTE). Submissions named ``*.bad.*``
(BAPCtools: deliberately mislabelled, to test the tool) and ``*.disabled`` are left out.
Submissions in languages the judge does not run are counted as ``unsupported``, not judged; so are
those of a package whose tests are written by a generator and not on disk (``no data``: run
``bt generate`` first); a package the judge refuses otherwise is one disagreement per submission,
with the reason printed. The table shows
per package: labelled submissions, unsupported, judged, agreeing, and the seconds spent judging.
Agreement is over the judged ones. Not a test: it measures, and prints what disagreed.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.judge import Judge, JudgeReport
from cascade_plugins.rewards.competition.languages import language_of_file

FORMAT_VERDICTS = ("AC", "WA", "TLE", "RTE")
#: our verdicts in the format's vocabulary (PE only comes from testlib checkers)
AS_FORMAT = {"AC": "AC", "WA": "WA", "PE": "WA", "TLE": "TLE", "RE": "RTE", "MLE": "RTE", "OLE": "RTE"}
DEFAULT_FOLDERS: dict[str, dict[str, list[str]]] = {
    "accepted": {"permitted": ["AC"]},
    "rejected": {"required": ["RTE", "TLE", "WA"]},
    "wrong_answer": {"permitted": ["AC", "WA"], "required": ["WA"]},
    "time_limit_exceeded": {"permitted": ["AC", "TLE"], "required": ["TLE"]},
    "run_time_error": {"permitted": ["AC", "RTE"], "required": ["RTE"]},
    "brute_force": {"permitted": ["AC", "RTE", "TLE"], "required": ["RTE", "TLE"]},
}
DOMJUDGE = {
    "CORRECT": "AC", "ACCEPTED": "AC", "WRONG-ANSWER": "WA", "WRONG_ANSWER": "WA", "NO-OUTPUT": "WA",
    "TIMELIMIT": "TLE", "TIME_LIMIT_EXCEEDED": "TLE", "RUN-ERROR": "RTE", "RUN_TIME_ERROR": "RTE",
    "OUTPUT-LIMIT": "RTE", "MEMORY-LIMIT": "RTE", "COMPILER-ERROR": "CE",
}  # fmt: skip
EXPECTED_RESULTS = re.compile(r"@EXPECTED_RESULTS@:\s*([^\n]*)", re.IGNORECASE)
IGNORED_SUFFIXES = (".disabled", ".template", ".gitkeep", ".md", ".txt", ".yaml")


def glob_regex(glob: str) -> re.Pattern[str]:
    """The format's globs: ``*`` within one name, ``{a,b}`` alternatives, a directory matches all below it."""
    parts = re.split(r"{([^{}]*)}", glob.strip().removesuffix("/"))
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else "(" + "|".join(re.escape(p.strip()) for p in part.split(",")) + ")"
        for i, part in enumerate(parts)
    )
    return re.compile("^" + pattern.replace(re.escape("*"), "[^/]*") + "(/|$)")


@dataclass
class Constraint:
    permitted: set[str]
    required: set[str]
    tests: re.Pattern[str] | None = None  # a test group glob; None: every test

    def check(self, test_verdicts: list[tuple[str, str]]) -> str | None:
        """Why our per-test verdicts break this constraint (None: they satisfy it)."""
        judged = [(n, v) for n, v in test_verdicts if self.tests is None or self.tests.match(n)]
        if not judged:
            return None  # nothing of that group ran (an earlier rejection stopped the judging)
        bad = [f"{n}={v}" for n, v in judged if v not in self.permitted]
        if bad:
            return f"not permitted: {', '.join(bad[:3])}"
        if not any(v in self.required for _, v in judged):
            return f"none of {sorted(self.required)}"
        return None


def _constraint(entry: dict[str, Any], tests: re.Pattern[str] | None = None) -> Constraint | None:
    if "permitted" not in entry and "required" not in entry:
        return None
    permitted = set(entry.get("permitted") or FORMAT_VERDICTS)
    return Constraint(permitted, set(entry.get("required") or permitted), tests)


@dataclass
class Expectation:
    constraints: list[Constraint] = field(default_factory=list)
    final: set[str] | None = None  # @EXPECTED_RESULTS@: the final verdict is one of these
    partial: bool = False  # partially_accepted: AC without the full score
    language: str | None = None
    entrypoint: str | None = None

    def disagreement(self, report: JudgeReport) -> str | None:
        verdict = AS_FORMAT.get(report.verdict, report.verdict)
        if self.final is not None:
            return None if verdict in self.final else f"got {verdict}, expected one of {sorted(self.final)}"
        if self.partial:
            if verdict != "AC" or report.score >= report.max_score:
                return f"got {verdict} with {report.score:g}/{report.max_score:g}, expected a partial score"
            return None
        if verdict not in FORMAT_VERDICTS:
            return f"got {verdict}"
        tests = [(t.name, AS_FORMAT.get(t.verdict, t.verdict)) for t in report.tests if t.verdict != "SKIPPED"]
        for constraint in self.constraints:
            why = constraint.check(tests)
            if why is not None:
                return f"got {verdict}: {why}"
        return None


def expectations(root: Path, submission: Path) -> Expectation:
    name = submission.relative_to(root / "submissions").as_posix()
    folder = name.split("/")[0]
    entries: dict[str, dict[str, Any]] = dict(DEFAULT_FOLDERS)
    listing = root / "submissions" / "submissions.yaml"
    if listing.is_file():
        listed = yaml.safe_load(listing.read_text()) or {}
        entries.update({str(k): v for k, v in listed.items() if isinstance(v, dict)})
    expectation = Expectation(partial=folder == "partially_accepted")
    for glob, entry in entries.items():
        if not glob_regex(glob).match(name):
            continue
        expectation.language = entry.get("language", expectation.language)
        expectation.entrypoint = entry.get("entrypoint", expectation.entrypoint)
        if (constraint := _constraint(entry)) is not None:
            expectation.constraints.append(constraint)
        for key, sub in entry.items():
            if isinstance(sub, dict) and (constraint := _constraint(sub, glob_regex(key))) is not None:
                expectation.constraints.append(constraint)
    if folder not in DEFAULT_FOLDERS and folder != "partially_accepted":
        for path in [submission] if submission.is_file() else sorted(submission.rglob("*")):
            found = EXPECTED_RESULTS.search(path.read_text(errors="replace")) if path.is_file() else None
            if found:
                expectation.final = {DOMJUDGE.get(v.strip().upper(), v.strip().upper()) for v in found[1].split(",")}
                break
    return expectation


def labelled_submissions(root: Path) -> Iterator[Path]:
    for folder in sorted((root / "submissions").iterdir()) if (root / "submissions").is_dir() else []:
        if not folder.is_dir() or folder.name.startswith("."):
            continue
        for item in sorted(folder.iterdir()):
            if item.name.startswith(".") or item.name.endswith(IGNORED_SUFFIXES) or ".bad." in item.name:
                continue
            yield item


def packages(paths: Iterable[Path]) -> list[Path]:
    found = []
    for path in paths:
        for problem_yaml in sorted(path.rglob("problem.yaml")):
            root = problem_yaml.parent
            if not any(part in ("submissions", "data") for part in root.relative_to(path).parts):
                found.append(root)
    return found


@dataclass
class Row:
    problem: str
    labelled: int = 0
    unsupported: int = 0
    no_data: int = 0
    judged: int = 0
    agree: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    #: (language, agreed) per judged submission
    outcomes: list[tuple[str, bool]] = field(default_factory=list)


def language_of(submission: Path, given: str | None) -> str:
    """The submission's language by the format's extension table (for the per-language totals)."""
    if given:
        return {"python": "python3"}.get(given, given)
    paths = [submission] if submission.is_file() else sorted(p for p in submission.rglob("*") if p.is_file())
    found = [code for p in paths if (code := language_of_file(p)) is not None]
    return max(set(found), key=found.count) if found else "?"


def judge_package(judge: Judge, root: Path, base: Path) -> Row:
    row = Row(root.relative_to(base).as_posix() if root != base else root.name)
    for submission in labelled_submissions(root):
        row.labelled += 1
        expectation = expectations(root, submission)
        label = submission.relative_to(root / "submissions").as_posix()
        started = time.perf_counter()
        try:
            report = judge.judge_files(
                root, submission, language=expectation.language, entrypoint=expectation.entrypoint
            )
        except UnsupportedFeature as exc:
            row.seconds += time.perf_counter() - started
            row.unsupported += 1
            row.notes.append(f"{label}: unsupported: {exc}")
            continue
        except ProblemPackageError as exc:
            row.seconds += time.perf_counter() - started
            if "bt generate" in str(exc):  # the tests are not on disk: the error says how to write them
                row.no_data += 1
                if row.no_data == 1:
                    row.notes.append(f"no test data: {exc}")
                continue
            row.judged += 1
            row.outcomes.append((language_of(submission, expectation.language), False))
            row.notes.append(f"{label}: error: {exc}")
            continue
        row.seconds += time.perf_counter() - started
        row.judged += 1
        why = expectation.disagreement(report)
        row.outcomes.append((language_of(submission, expectation.language), why is None))
        if why is None:
            row.agree += 1
        else:
            row.notes.append(f"{label}: {why}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path, help="checkouts (or folders) holding problem packages")
    parser.add_argument("--problems", help="comma-separated package folder names to keep")
    parser.add_argument("--workers", type=int, default=None, help="sandbox workers (default: CPUs)")
    args = parser.parse_args()
    keep = set(args.problems.split(",")) if args.problems else None
    judge = Judge(max_workers=args.workers)
    rows: list[Row] = []
    try:
        for base in args.paths:
            base = base.resolve()
            for root in packages([base]):
                if keep is None or root.name in keep:
                    rows.append(judge_package(judge, root, base))
    finally:
        judge.close()
    console = Console(width=max(100, Console().width))
    table = Table(title="cascade judge vs labelled submissions", title_justify="left")
    for column in ("problem", "submissions", "unsupported", "no data", "judged", "agree", "%", "seconds"):
        table.add_column(column, justify="left" if column == "problem" else "right")
    for row in rows:
        share = f"{100 * row.agree / row.judged:.0f}" if row.judged else "-"
        table.add_row(
            row.problem, str(row.labelled), str(row.unsupported), str(row.no_data), str(row.judged), str(row.agree),
            share, f"{row.seconds:.1f}",
        )  # fmt: skip
    total = Row("total")
    for row in rows:
        total.labelled += row.labelled
        total.unsupported += row.unsupported
        total.no_data += row.no_data
        total.judged += row.judged
        total.agree += row.agree
        total.seconds += row.seconds
    table.add_section()
    share = f"{100 * total.agree / total.judged:.1f}" if total.judged else "-"
    table.add_row(
        "[bold]total[/]", str(total.labelled), str(total.unsupported), str(total.no_data), str(total.judged),
        str(total.agree), share, f"{total.seconds:.1f}",
    )  # fmt: skip
    console.print(table)
    by_language = Table(title="judged submissions by language", title_justify="left")
    for column in ("language", "judged", "agree", "%"):
        by_language.add_column(column, justify="left" if column == "language" else "right")
    outcomes = [outcome for row in rows for outcome in row.outcomes]
    for language in sorted({language for language, _ in outcomes}):
        agreed = [ok for lang, ok in outcomes if lang == language]
        by_language.add_row(language, str(len(agreed)), str(sum(agreed)), f"{100 * sum(agreed) / len(agreed):.1f}")
    main_ones = [ok for lang, ok in outcomes if lang in ("python3", "cpp")]
    if main_ones:
        by_language.add_section()
        by_language.add_row("python3 + cpp", str(len(main_ones)), str(sum(main_ones)),
                            f"{100 * sum(main_ones) / len(main_ones):.1f}")  # fmt: skip
    console.print(by_language)
    for row in rows:
        for note in row.notes:
            print(f"{row.problem}/{note}")


if __name__ == "__main__":
    main()
