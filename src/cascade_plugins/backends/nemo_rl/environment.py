"""Our rewards as NeMo RL environments: one Ray actor class per environment name.

``create_env("cascade_math", cfg)`` resolves ``cascade_plugins.backends.nemo_rl.environment.cascade_math``,
an attribute this module creates on first access (:func:`__getattr__`): a ``@ray.remote``
subclass of :class:`CascadeRewardEnvironment` whose default reward is ``math``. ``cfg`` is the
``env.cascade_math`` section (see :class:`~cascade_plugins.backends.nemo_rl.env_core.EnvSettings`).

The actor does no scoring itself: it builds ``num_workers`` :class:`RewardWorker` actors, each
holding one reward instance and reserving ``cpus_per_worker`` CPUs, spread over the nodes,
and fans every ``step`` batch out over them, so scoring capacity grows with the Ray cluster.
Importing this module imports Ray, torch and NeMo RL.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import ray
import torch

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.env_core import (
    NO_REWARD,
    EnvSettings,
    RoundScores,
    batch_metrics,
    merge_chunk_results,
    observation_for,
    sample_from_message_log,
    split_for_workers,
    unscored,
    updated_metadata,
)
from cascade_plugins.backends.nemo_rl.names import is_cascade_env_name, reward_for_env_name
from cascade_plugins.interfaces import RewardResult, Sample

compat.apply_python_shims()
from nemo_rl.environments.interfaces import EnvironmentInterface, EnvironmentReturn  # noqa: E402

__all__ = ["CascadeRewardEnvironment", "RewardWorker", "environment_class"]


@ray.remote(max_restarts=-1, max_task_retries=-1)
class RewardWorker:
    """Holds one reward instance and scores chunks of samples with it."""

    def __init__(self, reward: str, options: Mapping[str, Any], plugins: Sequence[str] | None) -> None:
        from cascade_plugins.plugins import get_registry

        self.reward = get_registry(plugins).make_reward(reward, **dict(options))

    def score(self, samples: list[Sample]) -> list[RewardResult]:
        return self.reward.score(samples)

    def reward_range(self) -> tuple[float, float]:
        return tuple(self.reward.reward_range)  # type: ignore[return-value]

    def close(self) -> None:
        self.reward.close()


class CascadeRewardEnvironment(EnvironmentInterface):
    """A single-turn environment scoring the assistant's text with a registered reward."""

    #: set on each per-name subclass; ``env.<name>.reward`` overrides it
    default_reward: str = ""

    def __init__(self, cfg: Mapping[str, Any] | None = None) -> None:
        self.settings = EnvSettings.from_config(self.default_reward, cfg)
        worker_options = {
            # a CPU reservation per scoring actor, spread over the nodes: scoring capacity is what
            # Ray reserved, not what happens to be free on the head node
            "num_cpus": self.settings.cpus_per_worker,
            "scheduling_strategy": "SPREAD",
            "runtime_env": {
                "py_executable": compat.system_python_executable(),
                # the workers must import cascade_plugins and the reward's plugin like this actor;
                # PYTHON_CPU_COUNT (Python >= 3.13) makes os.cpu_count() -- what a sandbox pool is
                # sized by -- report the reservation instead of the node's CPUs
                "env_vars": {**os.environ, "PYTHON_CPU_COUNT": str(self.settings.worker_cpu_count)},
            },
        }
        self._rotation = itertools.count()
        self.rounds = RoundScores()
        if self.settings.reward == NO_REWARD:
            self.workers: list[Any] = []
            self.reward_range = (0.0, 0.0)
            return
        self.workers = [
            RewardWorker.options(**worker_options).remote(
                self.settings.reward, self.settings.reward_options, self.settings.plugins
            )
            for _ in range(self.settings.num_workers)
        ]
        # fail at construction (clear error) rather than on the first batch
        self.reward_range = ray.get(self.workers[0].reward_range.remote())

    def score_samples(self, samples: Sequence[Sample]) -> list[RewardResult]:
        """Fan ``samples`` out over the workers (round-robin start) and gather in order."""
        if not samples:
            return []
        if not self.workers:
            return unscored(len(samples))
        first = next(self._rotation)
        chunks = split_for_workers(samples, len(self.workers))
        futures = [
            self.workers[(first + i) % len(self.workers)].score.remote(chunk)
            for i, (_, chunk) in enumerate(chunks)
        ]
        results = ray.get(futures)
        starts = [start for start, _ in chunks]
        return merge_chunk_results(len(samples), list(zip(starts, results, strict=True)))

    def step(
        self,
        message_log_batch: list[list[dict[str, Any]]],
        metadata: list[dict[str, Any] | None],
    ) -> EnvironmentReturn:
        samples = [sample_from_message_log(log, info) for log, info in zip(message_log_batch, metadata, strict=True)]
        results = self.score_samples(samples)
        self.rounds.add(samples, results)
        n = len(results)
        return EnvironmentReturn(
            observations=[observation_for(r) for r in results],
            metadata=[updated_metadata(info, r) for info, r in zip(metadata, results, strict=True)],
            next_stop_strings=[list(self.settings.stop_strings) if self.settings.stop_strings else None] * n,
            rewards=torch.tensor([float(r.reward) for r in results], dtype=torch.float32),
            terminateds=torch.ones(n, dtype=torch.bool),
            answers=None,
        )

    def begin_round(self, step: int) -> None:
        """Start counting per-domain scores (called around NeMo RL's ``validate``)."""
        self.rounds.begin(step)

    def end_round(self) -> dict[str, float]:
        return self.rounds.end()

    def global_post_process_and_metrics(self, batch: Any) -> tuple[Any, dict[str, float]]:
        """Mean reward of the batch (NeMo RL does not call this at present; kept cheap)."""
        rewards = batch["rewards"] if "rewards" in batch else batch.get("total_reward")
        values = [float(x) for x in rewards.tolist()] if rewards is not None else []
        return batch, batch_metrics(values, ["correct" if v > 0 else "incorrect" for v in values])

    def shutdown(self) -> None:
        for worker in self.workers:
            with contextlib.suppress(Exception):  # a dead worker has nothing left to release
                ray.get(worker.close.remote(), timeout=10)
            ray.kill(worker)


_CLASSES: dict[str, Any] = {}


def environment_class(env_name: str) -> Any:
    """The ``@ray.remote`` environment class for ``env_name`` (``cascade_<reward>``)."""
    if env_name not in _CLASSES:
        reward = reward_for_env_name(env_name)
        cls = type(
            env_name,
            (CascadeRewardEnvironment,),
            {"default_reward": reward, "__module__": __name__, "__qualname__": env_name},
        )
        _CLASSES[env_name] = ray.remote(max_restarts=-1, max_task_retries=-1, max_concurrency=256)(cls)
    return _CLASSES[env_name]


def __getattr__(name: str) -> Any:
    if is_cascade_env_name(name):
        return environment_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
