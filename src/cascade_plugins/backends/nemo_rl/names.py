"""How our rewards are named inside NeMo RL (pure; no NeMo RL import).

A reward registered as ``math`` is the environment ``cascade_math``: users write
``env_name: cascade_math`` in a data section and configure it under ``env.cascade_math``. Each
environment name maps to an attribute of :mod:`cascade_plugins.backends.nemo_rl.environment`
with the same name, created on first access, so its fully qualified name is importable in every
Ray worker (NeMo RL resolves environment classes by FQN).
"""

from __future__ import annotations

import re

ENV_PREFIX = "cascade_"
#: the ``data.*.processor`` name of our data processor
PROCESSOR_NAME = "cascade_data_processor"
#: module that serves one Ray actor class per environment name
ENV_MODULE = "cascade_plugins.backends.nemo_rl.environment"

_VALID_ENV_NAME = re.compile(r"^cascade_[A-Za-z0-9][A-Za-z0-9_\-]*$")


def env_name_for_reward(reward: str) -> str:
    """``math`` -> ``cascade_math``."""
    if not reward or not isinstance(reward, str):
        raise ValueError(f"a reward name must be a non-empty string, got {reward!r}")
    return ENV_PREFIX + reward


def is_cascade_env_name(name: str) -> bool:
    return isinstance(name, str) and bool(_VALID_ENV_NAME.match(name))


def reward_for_env_name(env_name: str) -> str:
    """``cascade_math`` -> ``math``; the default reward of an environment name (the
    ``env.<name>.reward`` key of the NeMo RL config overrides it)."""
    if not is_cascade_env_name(env_name):
        raise ValueError(
            f"{env_name!r} is not a cascade environment name: expected 'cascade_<reward>' "
            "(letters, digits, '_' or '-' after the prefix)"
        )
    return env_name[len(ENV_PREFIX) :]


def env_class_fqn(env_name: str) -> str:
    """The FQN NeMo RL's ``create_env`` resolves for ``env_name``."""
    reward_for_env_name(env_name)  # validates
    return f"{ENV_MODULE}.{env_name}"
