"""Registering our environments and data processor into NeMo RL, idempotently.

NeMo RL needs two entries per environment: ``register_env(name, fqn)`` (which raises on a
duplicate name) and ``ACTOR_ENVIRONMENT_REGISTRY[fqn]`` (without it ``create_env`` raises
``No actor environment registered``). Both go through :class:`~.compat.EnvRegistries`, the
boundary to NeMo RL, so the logic here is tested with plain dicts. This module depends on
:mod:`.compat`, never the other way round.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.compat import EnvRegistries
from cascade_plugins.backends.nemo_rl.names import PROCESSOR_NAME, env_class_fqn, env_name_for_reward
from cascade_plugins.interfaces import PluginLookup

__all__ = ["EnvRegistries", "RegistrationConflictError", "register_all", "register_environment",
           "register_environments", "register_processor"]


class RegistrationConflictError(ValueError):
    """A name is already registered in NeMo RL for something else."""


def _registered_fqn(entry: Any) -> str | None:
    if isinstance(entry, dict):
        return entry.get("actor_class_fqn")
    return getattr(entry, "actor_class_fqn", None)


def register_environment(env_name: str, registries: EnvRegistries) -> str:
    """Register ``env_name`` (``cascade_<reward>``) in both registries; returns its FQN.

    Registering again is a no-op; a name NeMo RL already maps to another class is an error.
    """
    fqn = env_class_fqn(env_name)
    existing = registries.env_registry.get(env_name)
    if existing is None:
        registries.register_env(env_name, fqn)
    elif _registered_fqn(existing) != fqn:
        raise RegistrationConflictError(
            f"NeMo RL environment {env_name!r} is already registered for {_registered_fqn(existing)!r}, "
            f"not {fqn!r}; rename one of them"
        )
    registries.actor_registry.setdefault(fqn, registries.system_executable)
    return fqn


def register_processor(registries: EnvRegistries, function: Any) -> None:
    """Register our data processor under :data:`PROCESSOR_NAME`, once."""
    existing = registries.processor_registry.get(PROCESSOR_NAME)
    if existing is None:
        registries.register_processor(PROCESSOR_NAME, function)
    elif existing is not function and getattr(existing, "__qualname__", None) != function.__qualname__:
        raise RegistrationConflictError(
            f"NeMo RL data processor {PROCESSOR_NAME!r} is already registered for {existing!r}"
        )


def register_environments(
    env_names: Iterable[str] | None = None,
    *,
    rewards: Iterable[str] | None = None,
    registries: EnvRegistries | None = None,
    registry: PluginLookup | None = None,
) -> dict[str, str]:
    """Register environments by name (``cascade_math``) and/or by reward (``math``).

    With neither given, every reward of ``registry`` is registered: by default the plugins this
    process may load (``CASCADE_PLUGINS``), for a NeMo RL user's own entry script. Returns
    name -> FQN.
    """
    if registries is None:
        registries = compat.env_registries()
    names = list(env_names or [])
    if rewards is not None:
        names += [env_name_for_reward(r) for r in rewards]
    if env_names is None and rewards is None:
        from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward

        if registry is None:
            from cascade_plugins.plugins import get_registry

            registry = get_registry()
        names = [env_name_for_reward(r) for r in registry.names("reward") if r != HostEnvironmentReward.name]
    return {name: register_environment(name, registries) for name in dict.fromkeys(names)}


def register_all(
    env_names: Iterable[str] | None = None,
    *,
    rewards: Iterable[str] | None = None,
    registries: EnvRegistries | None = None,
    registry: PluginLookup | None = None,
) -> dict[str, str]:
    """Everything a NeMo RL entry script needs: our environments and our data processor."""
    from cascade_plugins.backends.nemo_rl.data import cascade_data_processor

    if registries is None:
        registries = compat.env_registries()
    register_processor(registries, cascade_data_processor)
    return register_environments(env_names, rewards=rewards, registries=registries, registry=registry)
