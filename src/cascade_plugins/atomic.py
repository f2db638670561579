"""Atomic file writes: a reader (or a crash) sees the old file or the new one, never half of one.

Every file the project writes that someone may read back — manifests, results, scored JSONL,
reports, checkpoints' metadata — goes through here: write a temp file in the same folder, fsync,
then ``os.replace`` it over the target.

Files and folders get the permissions the process's umask gives (``0666 & ~umask`` for files,
``0777 & ~umask`` for folders), as a plain ``open`` or ``mkdir`` would: ``tempfile.mkstemp`` and
``mkdtemp`` make them owner-only, which locks other users of a shared machine out of run
directories.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

__all__ = ["atomic_writer", "make_temp_dir", "share_like_folder", "write_json_atomic", "write_text_atomic"]

_ATTEMPTS = 100


def _temp_name(folder: Path, prefix: str, suffix: str) -> Path:
    return folder / f"{prefix}{secrets.token_hex(6)}{suffix}"


def _create_temp_file(folder: Path, prefix: str, suffix: str) -> tuple[int, Path]:
    """A new, exclusively created file in ``folder``; the umask applies to its mode."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(_ATTEMPTS):
        path = _temp_name(folder, prefix, suffix)
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file in {folder}")


def make_temp_dir(parent: str | Path, prefix: str) -> Path:
    """A new folder in ``parent`` (``<prefix><random>``), with the umask's permissions; for
    writing a directory aside before renaming it into place."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(_ATTEMPTS):
        path = _temp_name(parent, prefix, "")
        try:
            path.mkdir(0o777)
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"could not create a temporary folder in {parent}")


def share_like_folder(folder: str | Path) -> None:
    """Give every file under ``folder`` (made by :func:`make_temp_dir`) the umask's file mode,
    read off the folder's own mode: some writers (safetensors) create files owner-only."""
    folder = Path(folder)
    folder_mode = stat.S_IMODE(folder.stat().st_mode)
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            executable = stat.S_IMODE(path.stat().st_mode) & 0o111
            path.chmod((folder_mode & 0o666) | (folder_mode & 0o111 if executable else 0))


@contextmanager
def atomic_writer(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temp file next to ``path``; on success it replaces ``path``, on error it vanishes."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp_file(path.parent, f".{path.name}.", ".tmp")
    try:
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if mode == "w" else {})) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; not every file system allows opening a folder.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_writer(path) as handle:
        handle.write(text)


def write_json_atomic(path: str | Path, data: Any, *, indent: int | None = 1) -> None:
    with atomic_writer(path) as handle:
        json.dump(data, handle, indent=indent, default=str)
        handle.write("\n")
