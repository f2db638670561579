"""``cascade score``: stream JSONL samples through any registered reward.

Every line becomes an output row, in order; a line that cannot be scored (not UTF-8, not JSON, not
a sample, or the reward's ``error`` verdict) becomes an ``error`` row and is named on stderr as
``FILE:LINE: why``. The exit status is 1 when any row could not be scored (``--keep-going``: 0).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any

import click
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cascade_plugins.atomic import atomic_writer
from cascade_plugins.interfaces import Reward, RewardResult, Sample, Verdict
from cascade_plugins.plugins import PluginError, get_registry


def parse_option(text: str) -> tuple[str, Any]:
    """``"tolerance=1e-6"`` -> ``("tolerance", 1e-06)``; values are YAML scalars or flow."""
    if "=" not in text:
        raise click.BadParameter(f"expected key=value, got {text!r}", param_hint="--set")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _error_result(reward: Reward, message: str) -> RewardResult:
    low, high = reward.reward_range
    return RewardResult(min(max(0.0, low), high), Verdict.ERROR, {"error": message})


#: bad lines named on stderr one by one; beyond this, only their number
MAX_REPORTED_LINES = 1000


@dataclass
class ScoredLine:
    """One input line's output row, and why it could not be scored (``None``: it was)."""

    number: int
    row: dict[str, Any]
    problem: str | None


def _parse_line(raw: str | None) -> tuple[dict[str, Any] | None, Sample | None, str | None]:
    """``(row, sample, why)``: a row that is JSON but not a valid sample keeps its keys;
    ``raw`` is ``None`` for a line that is not UTF-8."""
    if raw is None:
        return None, None, "not UTF-8 text"
    try:
        row = json.loads(raw)
    except ValueError as exc:
        return None, None, f"invalid JSON: {exc}"
    try:
        return row, Sample.from_dict(row), None
    except (ValueError, TypeError) as exc:
        return (row if isinstance(row, dict) else None), None, str(exc)


def _score_isolated(reward: Reward, samples: list[Sample]) -> list[RewardResult]:
    try:
        results = reward.score(samples) if samples else []
        if len(results) != len(samples):
            raise RuntimeError(f"reward returned {len(results)} results for {len(samples)} samples")
        return list(results)
    except Exception:
        # A reward should never raise; isolate the culprit instead of losing the batch.
        results = []
        for sample in samples:
            try:
                results.append(reward.score([sample])[0])
            except Exception as exc:
                results.append(_error_result(reward, f"reward raised {type(exc).__name__}: {exc}"))
        return results


def score_rows(reward: Reward, rows: list[tuple[int, str | None]]) -> list[ScoredLine]:
    """Score one chunk of ``(line_number, raw_line)``; malformed lines become ``error`` rows
    whose ``details.error`` starts with ``line N:``."""
    parsed = [(number, raw, *_parse_line(raw)) for number, raw in rows]
    scored = iter(_score_isolated(reward, [sample for _, _, _, sample, _ in parsed if sample is not None]))
    out: list[ScoredLine] = []
    for number, raw, row, sample, why in parsed:
        if sample is not None:
            result = next(scored)
            problem = None
            if result.verdict == Verdict.ERROR:
                problem = f"the reward could not score it: {(result.details or {}).get('error') or 'error verdict'}"
        else:
            result = _error_result(reward, f"line {number}: {why}")
            problem = why
        base = dict(row) if row is not None else {"line": number, "raw": (raw or "")[:2000].rstrip("\n")}
        base.update(result.to_dict())
        out.append(ScoredLine(number, base, problem))
    return out


def _read_lines(handle: IO[bytes]) -> Iterator[tuple[int, str | None]]:
    """``(line_number, text)`` of each non-blank line; ``text`` is ``None`` when not UTF-8."""
    for number, line in enumerate(handle, start=1):
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            yield number, None
            continue
        if text.strip():
            yield number, text


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
    else:
        with atomic_writer(path) as handle:
            yield handle


def _open_input(input_path: str) -> IO[bytes]:
    if input_path == "-":
        return sys.stdin.buffer
    try:
        return open(input_path, "rb")
    except OSError as exc:
        raise click.ClickException(f"cannot read --input {input_path}: {exc.strerror or exc}") from None


@click.command()
@click.option("--reward", "reward_name", required=True, help="Registered reward name (see `cascade plugins`).")
@click.option("--input", "input_path", required=True, type=click.Path(dir_okay=False, allow_dash=True),
              help="JSONL samples (response, ground_truth/tests/problem, ...); '-' for stdin.")
@click.option("--output", "output_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write scored JSONL (atomically). Default: stdout.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256),
              help="Batches scored concurrently.")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(1, 100_000))
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", help="Reward option (repeatable).")
@click.option("--keep-going", is_flag=True,
              help="Exit 0 even when some lines could not be scored (they are still error rows and named on stderr).")
def score(reward_name: str, input_path: str, output_path: Path | None, workers: int, batch_size: int,
          settings: tuple[str, ...], keep_going: bool) -> None:
    """Score JSONL samples with a reward: each output line is the input line plus
    `reward`, `verdict` and `details`; a summary table goes to stderr, and so does each line that
    could not be scored (FILE:LINE: why). Exit status 1 when any line could not be scored, unless
    --keep-going."""
    options = dict(parse_option(s) for s in settings)
    try:
        reward = get_registry().make_reward(reward_name, **options)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise click.ClickException(f"bad options for reward {reward_name!r}: {exc}") from exc

    err = Console(stderr=True)
    shown_name = "<stdin>" if input_path == "-" else input_path
    verdicts: Counter[str] = Counter()
    bad = 0
    total_reward = 0.0
    count = 0
    started = time.perf_counter()
    try:
        source = _open_input(input_path)
        with source, _output(output_path) as sink, Progress(
            TextColumn("[bold]scoring[/bold]"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            console=err, transient=False, disable=not err.is_terminal and os.environ.get("CASCADE_PROGRESS") != "1",
        ) as progress, ThreadPoolExecutor(max_workers=workers) as pool:
            task = progress.add_task("score", total=None)
            lines = _read_lines(source)
            while True:
                chunks = [list(islice(lines, batch_size)) for _ in range(workers)]
                chunks = [c for c in chunks if c]
                if not chunks:
                    break
                for scored in pool.map(lambda chunk: score_rows(reward, chunk), chunks):
                    for line in scored:
                        sink.write(json.dumps(line.row, ensure_ascii=False) + "\n")
                        verdicts[line.row["verdict"]] += 1
                        total_reward += float(line.row["reward"])
                        count += 1
                        if line.problem is not None:
                            bad += 1
                            if bad <= MAX_REPORTED_LINES:
                                progress.console.print(f"{shown_name}:{line.number}: {line.problem}",
                                                       highlight=False, markup=False, soft_wrap=True)
                    progress.advance(task, len(scored))
    except OSError as exc:  # e.g. --output inside a file, or the disk is full
        what = f"cannot write --output {output_path}: " if output_path is not None else ""
        raise click.ClickException(f"{what}{exc.strerror or exc}: {exc.filename}") from None
    finally:
        reward.close()
    elapsed = time.perf_counter() - started
    if bad > MAX_REPORTED_LINES:
        err.print(f"... and {bad - MAX_REPORTED_LINES} more lines that could not be scored", highlight=False,
                  soft_wrap=True)
    table = Table(title=f"cascade score --reward {reward_name}")
    table.add_column("samples", justify="right")
    table.add_column("mean reward", justify="right")
    table.add_column("verdicts")
    table.add_column("samples/s", justify="right")
    mean = total_reward / count if count else 0.0
    table.add_row(str(count), f"{mean:.4f}", ", ".join(f"{k}: {v}" for k, v in verdicts.most_common()),
                  f"{count / elapsed:.1f}" if elapsed > 0 else "-")
    err.print(table)
    if bad:
        verb = "kept as error rows" if keep_going else "see above; --keep-going accepts them"
        err.print(f"{bad} of {count} lines could not be scored ({verb})", highlight=False, soft_wrap=True)
        if not keep_going:
            sys.exit(1)
