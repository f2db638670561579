"""Registers the ``nemo_rl`` backend and the ``nemo_rl_env`` reward (imports neither NeMo RL nor Ray)."""

from __future__ import annotations

from typing import Any

from cascade_plugins import hookimpl
from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward
from cascade_plugins.plugins import LazyFactory


@hookimpl
def register_backends(register: Any) -> None:
    register(LazyFactory("nemo_rl", "cascade_plugins.backends.nemo_rl.backend:NemoRLBackend"))


@hookimpl
def register_rewards(register: Any) -> None:
    register(HostEnvironmentReward)
