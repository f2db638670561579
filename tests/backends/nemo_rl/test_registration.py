"""Registration against stand-ins for NeMo RL's registries (same duplicate-name behaviour)."""

from __future__ import annotations

import pytest

from cascade_plugins.backends.nemo_rl.names import PROCESSOR_NAME, env_class_fqn
from cascade_plugins.backends.nemo_rl.registration import (
    EnvRegistries,
    RegistrationConflictError,
    register_all,
    register_environments,
)


def _registries() -> EnvRegistries:
    envs: dict = {"math": {"actor_class_fqn": "nemo_rl.environments.math_environment.MathEnvironment"}}
    processors: dict = {}

    def register_env(name: str, fqn: str) -> None:  # NeMo RL raises on a duplicate name
        if name in envs:
            raise ValueError(f"Env name {name} already registered")
        envs[name] = {"actor_class_fqn": fqn}

    def register_processor(name: str, fn) -> None:
        if name in processors:
            raise ValueError(f"Processor name {name} already registered")
        processors[name] = fn

    return EnvRegistries(envs, register_env, {}, "/usr/bin/python3", processors, register_processor)


def test_both_registries_are_filled_and_registration_is_idempotent() -> None:
    reg = _registries()
    first = register_all(["cascade_math", "cascade_code"], registries=reg)
    again = register_all(["cascade_math"], rewards=["code"], registries=reg)
    assert first == {"cascade_math": env_class_fqn("cascade_math"), "cascade_code": env_class_fqn("cascade_code")}
    assert again == first
    assert reg.env_registry["cascade_math"] == {"actor_class_fqn": env_class_fqn("cascade_math")}
    assert reg.actor_registry == {fqn: "/usr/bin/python3" for fqn in first.values()}
    assert PROCESSOR_NAME in reg.processor_registry


def test_an_actor_registry_entry_set_by_the_user_is_kept() -> None:
    reg = _registries()
    reg.actor_registry[env_class_fqn("cascade_math")] = "uv run --extra custom"
    register_environments(["cascade_math"], registries=reg)
    assert reg.actor_registry[env_class_fqn("cascade_math")] == "uv run --extra custom"


def test_a_name_taken_by_another_class_is_a_clear_error() -> None:
    reg = _registries()
    reg.env_registry["cascade_math"] = {"actor_class_fqn": "someone.Else"}
    with pytest.raises(RegistrationConflictError, match=r"'cascade_math' is already registered for 'someone\.Else'"):
        register_environments(["cascade_math"], registries=reg)
    reg.processor_registry[PROCESSOR_NAME] = print
    with pytest.raises(RegistrationConflictError, match=PROCESSOR_NAME):
        register_all([], registries=reg)


def test_by_default_every_registered_reward_becomes_an_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from cascade_plugins.plugins import get_registry

    monkeypatch.setenv("CASCADE_PLUGINS", "nemo_rl")
    registry = get_registry()
    registry._register("reward", "exact", type("Exact", (), {"name": "exact"}))
    reg = _registries()
    # nemo_rl_env names a NeMo RL environment; it is never one of ours
    assert register_environments(registries=reg) == {"cascade_exact": env_class_fqn("cascade_exact")}
