"""Atomic writes leave the old file or the new one, never a half-written one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade_plugins.atomic import atomic_writer, write_json_atomic, write_text_atomic
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
