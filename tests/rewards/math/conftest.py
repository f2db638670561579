"""Fixtures of the math reward tests: one shared reward (its worker pool starts once)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).parent
DATA = HERE / "data"
if str(HERE) not in sys.path:  # math_labelled_pairs is shared with benchmarks/math_bench.py
    sys.path.insert(0, str(HERE))

from cascade_plugins.rewards.math import MathReward  # noqa: E402


@pytest.fixture(scope="session")
def math_reward() -> Iterator[MathReward]:
    reward = MathReward(workers=2, timeout=10.0)
    yield reward
    reward.close()
