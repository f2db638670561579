"""Registers the ``nemo_rl`` backend and the ``nemo_rl_env`` reward (imports neither NeMo RL nor Ray)."""

from __future__ import annotations

from typing import Any

from cascade_plugins import hookimpl
from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward


def make_backend(**options: Any) -> Any:
    from cascade_plugins.backends.nemo_rl.backend import NemoRLBackend

    return NemoRLBackend(**options)


make_backend.name = "nemo_rl"  # type: ignore[attr-defined]


@hookimpl
def register_backends(register: Any) -> None:
    register(make_backend)


@hookimpl
def register_rewards(register: Any) -> None:
    register(HostEnvironmentReward)
