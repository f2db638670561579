"""Registers the ``competition`` reward (a built-in plugin, loaded like any third-party one)."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.hookspecs import Register
from cascade_plugins.rewards.competition.reward import CompetitionReward


@hookimpl
def register_rewards(register: Register) -> None:
    register(CompetitionReward)
