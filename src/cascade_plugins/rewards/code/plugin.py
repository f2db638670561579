"""Registers the built-in ``code`` reward."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.hookspecs import Register
from cascade_plugins.rewards.code.reward import CodeReward


@hookimpl
def register_rewards(register: Register) -> None:
    register(CodeReward)
