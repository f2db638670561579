"""Errors raised while loading a problem package or a submission."""

from __future__ import annotations

from pathlib import Path


class ProblemPackageError(ValueError):
    """A problem package is malformed; the message names the file (and key) at fault."""

    def __init__(self, path: str | Path, message: str, *, key: str | None = None) -> None:
        self.path = str(path)
        self.key = key
        where = f"{self.path}: {key}" if key else self.path
        super().__init__(f"{where}: {message}")


class UnsupportedFeature(ProblemPackageError):
    """The package (or submission) uses something the format allows but this judge does not do,
    such as a language it cannot run; the message names the file and the feature."""
