"""Registers the ``math`` reward with the plugin manager."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.rewards.math.reward import MathReward


@hookimpl
def register_rewards(register) -> None:  # type: ignore[no-untyped-def]
    register(MathReward)
