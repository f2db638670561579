"""``cascade score``: stream JSONL samples through any registered reward."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


def _parse_line(number: int, raw: str) -> tuple[dict[str, Any] | None, Sample | None, str | None]:
    """``(row, sample, error)``: a row that is JSON but not a valid sample keeps its keys."""
    try:
        row = json.loads(raw)
    except ValueError as exc:
        return None, None, f"line {number}: invalid JSON: {exc}"
    try:
        return row, Sample.from_dict(row), None
    except (ValueError, TypeError) as exc:
        return (row if isinstance(row, dict) else None), None, f"line {number}: {exc}"


def score_rows(reward: Reward, rows: list[tuple[int, str]]) -> list[dict[str, Any]]:
    """Score one chunk of ``(line_number, raw_line)``; malformed lines become ``error`` rows."""
    parsed = [(number, raw, *_parse_line(number, raw)) for number, raw in rows]
    samples = [sample for _, _, _, sample, _ in parsed if sample is not None]
    try:
        results = reward.score(samples) if samples else []
        if len(results) != len(samples):
            raise RuntimeError(f"reward returned {len(results)} results for {len(samples)} samples")
    except Exception:
        # A reward should never raise; isolate the culprit instead of losing the batch.
        results = []
        for sample in samples:
            try:
                results.append(reward.score([sample])[0])
            except Exception as exc:
                results.append(_error_result(reward, f"reward raised {type(exc).__name__}: {exc}"))
    scored = iter(results)
    out: list[dict[str, Any]] = []
    for number, raw, row, sample, error in parsed:
        result = next(scored) if sample is not None else _error_result(reward, error or "malformed")
        base = dict(row) if row is not None else {"line": number, "raw": raw[:2000].rstrip("\n")}
        base.update(result.to_dict())
        out.append(base)
    return out


def _read_lines(handle: IO[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(handle, start=1):
        if line.strip():
            yield number, line


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
    else:
        with atomic_writer(path) as handle:
            yield handle


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
def score(reward_name: str, input_path: str, output_path: Path | None, workers: int, batch_size: int,
          settings: tuple[str, ...]) -> None:
    """Score JSONL samples with a reward: each output line is the input line plus
    `reward`, `verdict` and `details`; a summary table goes to stderr."""
    options = dict(parse_option(s) for s in settings)
    try:
        reward = get_registry().make_reward(reward_name, **options)
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc
    except (TypeError, ValueError) as exc:
        raise click.ClickException(f"bad options for reward {reward_name!r}: {exc}") from exc

    err = Console(stderr=True)
    verdicts: Counter[str] = Counter()
    total_reward = 0.0
    count = 0
    started = time.perf_counter()
    source = sys.stdin if input_path == "-" else open(input_path, encoding="utf-8")  # noqa: SIM115
    try:
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
                    for row in scored:
                        sink.write(json.dumps(row, ensure_ascii=False) + "\n")
                        verdicts[row["verdict"]] += 1
                        total_reward += float(row["reward"])
                        count += 1
                    progress.advance(task, len(scored))
    finally:
        reward.close()
    elapsed = time.perf_counter() - started
    table = Table(title=f"cascade score --reward {reward_name}")
    table.add_column("samples", justify="right")
    table.add_column("mean reward", justify="right")
    table.add_column("verdicts")
    table.add_column("samples/s", justify="right")
    mean = total_reward / count if count else 0.0
    table.add_row(str(count), f"{mean:.4f}", ", ".join(f"{k}: {v}" for k, v in verdicts.most_common()),
                  f"{count / elapsed:.1f}" if elapsed > 0 else "-")
    err.print(table)
