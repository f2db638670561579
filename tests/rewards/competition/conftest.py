"""Shared fixtures: the real problem packages of this folder and one judge for the session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade_plugins.rewards.competition.judge import Judge

PROBLEMS = Path(__file__).parent / "problems"


@pytest.fixture(scope="session")
def judge() -> Iterator[Judge]:
    grader = Judge()
    yield grader
    grader.close()


@pytest.fixture
def copy_problem(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Copy a package of ``problems/`` into a temporary folder (to break it or extend it)."""

    def copy(name: str) -> Path:
        target = tmp_path / name
        shutil.copytree(PROBLEMS / name, target)
        return target

    return copy
