"""NeMo RL backend: our rewards as NeMo RL environments, the MOPD loss in ``grpo_train``, and a
stage runner that turns one cascade stage into one NeMo RL run.

Importing this package imports neither NeMo RL nor Ray; the modules that need them
(``environment``, ``stage_runner``, ``compat``'s loaders) import them when used.

For a NeMo RL user's own entry script::

    from cascade_plugins.backends.nemo_rl import register_all
    register_all()          # every reward as ``cascade_<reward>`` + the ``cascade_data_processor``
"""

from __future__ import annotations

from cascade_plugins.backends.nemo_rl.names import (
    ENV_PREFIX,
    PROCESSOR_NAME,
    env_class_fqn,
    env_name_for_reward,
    reward_for_env_name,
)
from cascade_plugins.backends.nemo_rl.registration import register_all, register_environments

__all__ = [
    "ENV_PREFIX",
    "PROCESSOR_NAME",
    "env_class_fqn",
    "env_name_for_reward",
    "register_all",
    "register_environments",
    "reward_for_env_name",
]
