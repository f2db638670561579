"""Config errors that name the file, the key path and the line of every problem."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

KeyPath = tuple[str | int, ...]


def format_key_path(path: Sequence[str | int]) -> str:
    """``("stages", 2, "kind")`` -> ``"stages[2].kind"``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str | None
    key_path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        return f"{where}: {self.key_path}: {self.message}"


class ConfigError(Exception):
    """One or more problems in a config; ``str()`` lists them one per line."""

    def __init__(self, problems: Sequence[ConfigProblem] | ConfigProblem | str):
        if isinstance(problems, str):
            problems = [ConfigProblem(None, "<root>", None, problems)]
        elif isinstance(problems, ConfigProblem):
            problems = [problems]
        # the same problem found twice (e.g. by two checks of one stage) is listed once
        self.problems: list[ConfigProblem] = list(dict.fromkeys(problems))
        super().__init__(self._render())

    def _render(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in config:"
        return "\n".join([head, *(f"  {p}" for p in self.problems)])
