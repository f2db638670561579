"""Atomic writes leave the old file or the new one, never a half-written one."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins.atomic import (
    atomic_writer,
    make_temp_dir,
    share_like_folder,
    write_json_atomic,
    write_text_atomic,
)
from cascade_plugins.plugins import LazyFactory


def test_successful_write_replaces_the_file(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "manifest.json"
    write_json_atomic(target, {"stage": 1})
    write_json_atomic(target, {"stage": 2})
    assert json.loads(target.read_text()) == {"stage": 2}
    assert [p.name for p in target.parent.iterdir()] == ["manifest.json"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("half of the new")
        raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["report.md"]


def test_binary_mode_and_bad_mode(tmp_path: Path) -> None:
    with atomic_writer(tmp_path / "blob", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "blob").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="mode"), atomic_writer(tmp_path / "x", "a"):
        pass


def test_lazy_factory_imports_only_when_called() -> None:
    factory = LazyFactory("ordered", "collections:OrderedDict")
    assert factory.name == "ordered"
    assert factory(a=1) == {"a": 1}
    with pytest.raises(ValueError, match=r"package\.module:attribute"):
        LazyFactory("bad", "collections.OrderedDict")
    with pytest.raises(ModuleNotFoundError):
        LazyFactory("missing", "no_such_module_here:thing")()


@pytest.fixture
def umask() -> Any:
    """Set the process umask for one test (and put the old one back)."""
    previous = os.umask(0o022)
    os.umask(previous)

    def set_to(value: int) -> None:
        os.umask(value)

    yield set_to
    os.umask(previous)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"), [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700),
                                                             (0o002, 0o664, 0o775)])
def test_files_and_folders_get_the_umask_permissions(tmp_path: Path, umask: Any, mask: int, file_mode: int,
                                                     dir_mode: int) -> None:
    umask(mask)
    write_text_atomic(tmp_path / "report.md", "x")
    with atomic_writer(tmp_path / "plot.png", "wb") as handle:
        handle.write(b"png")
    folder = make_temp_dir(tmp_path, ".step_1.")
    assert stat.S_IMODE((tmp_path / "report.md").stat().st_mode) == file_mode
    assert stat.S_IMODE((tmp_path / "plot.png").stat().st_mode) == file_mode
    assert stat.S_IMODE(folder.stat().st_mode) == dir_mode
    assert folder.name.startswith(".step_1.")


def test_share_like_folder_opens_owner_only_files_as_the_umask_says(tmp_path: Path, umask: Any) -> None:
    umask(0o022)
    folder = make_temp_dir(tmp_path, ".ckpt.")
    weights = folder / "model.safetensors"
    weights.write_bytes(b"w")
    weights.chmod(0o600)  # what safetensors does
    (folder / "sub").mkdir()
    script = folder / "sub" / "run.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o700)
    share_like_folder(folder)
    assert stat.S_IMODE(weights.stat().st_mode) == 0o644
    assert stat.S_IMODE(script.stat().st_mode) == 0o755  # executable stays executable
