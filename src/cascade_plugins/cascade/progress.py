"""A rich progress display for a cascade run, and the :class:`StageReporter` backends report to.

On a terminal it shows one live bar per stage with the latest metrics; elsewhere (CI logs, pipes)
it prints a plain line every tenth of a stage. Every message and step also goes to
``<run_dir>/cascade.log``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

__all__ = ["CascadeProgress", "RichStageReporter", "format_metrics"]

#: metrics shown next to the bar, in this order of preference
_SHOWN = ("loss", "reward", "reward_mean", "kl", "lr")


def format_metrics(metrics: Mapping[str, Any], limit: int = 3) -> str:
    keys = [k for k in _SHOWN if k in metrics]
    keys += [k for k in metrics if k not in keys and k != "step"]
    parts = []
    for key in keys:
        value = metrics[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        parts.append(f"{key}={value:.4g}")
        if len(parts) == limit:
            break
    return " ".join(parts)


class CascadeProgress:
    """The display of one ``cascade run``; use as a context manager around the stages."""

    def __init__(self, console: Console | None = None, log_path: Path | None = None):
        self.console = console or Console(stderr=True)
        self.log_path = log_path
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]{task.fields[stage]}[/]"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            disable=not self.live,
        )

    def __enter__(self) -> CascadeProgress:
        self.progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.progress.stop()

    def message(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)
        self.write_log(text)

    def write_log(self, text: str) -> None:
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as handle:
                handle.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {text}\n")

    def reporter(self, stage: str) -> RichStageReporter:
        return RichStageReporter(self, stage)


class RichStageReporter:
    """The :class:`~cascade_plugins.interfaces.StageReporter` of one stage."""

    def __init__(self, display: CascadeProgress, stage: str):
        self.display = display
        self.stage = stage
        self.task: TaskID | None = None
        self.total = 0
        self._next_plain = 0

    def start(self, total_steps: int, description: str = "") -> None:
        self.total = max(int(total_steps), 0)
        info = description
        if self.task is None:
            self.task = self.display.progress.add_task(
                description or self.stage, total=self.total or None, stage=self.stage, info=info
            )
        else:
            self.display.progress.update(self.task, total=self.total or None, info=info)
        self._next_plain = 0
        self.display.write_log(f"[{self.stage}] start: {self.total} steps {description}".rstrip())

    def step(self, step: int, metrics: Mapping[str, Any]) -> None:
        shown = format_metrics(metrics)
        if self.task is not None:
            self.display.progress.update(self.task, completed=step, info=shown)
        if not self.display.live and step >= self._next_plain:
            total = f"/{self.total}" if self.total else ""
            self.display.console.print(f"[{self.stage}] step {step}{total} {shown}", highlight=False, markup=False)
            self._next_plain = step + max(1, math.ceil(self.total / 10)) if self.total else step + 1
        self.display.write_log(f"[{self.stage}] step {step} {json.dumps(dict(metrics), default=str)}")

    def log(self, message: str) -> None:
        self.display.message(f"[{self.stage}] {message}")
