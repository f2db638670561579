"""``nemo_rl_env``: a domain scored by one of NeMo RL's (or NeMo-Gym's) own environments.

Some Cascade stages use rewards that live in the host, not in this package: the RLHF GenRM
(NeMo-Gym ``genrm_compare``), the long-context LLM judge, SWE execution. A cascade names them as
the reward ``{name: nemo_rl_env, options: {env: <NeMo RL env name>, dataset: {...}}}``; the
``nemo_rl`` backend then routes the domain's data to that environment (``env_name: <env>``, with
``dataset`` as the rest of the ``data.train`` entry, e.g. ``{dataset_name: NemoGymDataset,
processor: nemo_gym_data_processor}``) and the environment's settings come from the stage's
``hparams.nemo_rl.overrides.env``.

Outside NeMo RL there is nothing to score with: :meth:`HostEnvironmentReward.score` returns an
``error`` verdict per sample saying so; it declares ``scored_by = "nemo_rl"``, so the local
backend refuses it at plan time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cascade_plugins.interfaces import RewardResult, Sample, Verdict


class HostEnvironmentReward:
    """A placeholder that names the NeMo RL environment scoring a domain."""

    name = "nemo_rl_env"
    #: scored by the nemo_rl backend's NeMo RL environments; other backends refuse it at plan time
    scored_by = "nemo_rl"

    def __init__(
        self,
        env: str,
        dataset: Mapping[str, Any] | None = None,
        reward_range: Sequence[float] = (0.0, 1.0),
    ) -> None:
        if not isinstance(env, str) or not env:
            raise ValueError("nemo_rl_env: option 'env' must name a NeMo RL environment (e.g. nemo_gym)")
        if env.startswith("cascade_"):
            raise ValueError(f"nemo_rl_env: {env!r} is one of ours; use its reward name instead")
        if dataset is not None and not isinstance(dataset, Mapping):
            raise ValueError("nemo_rl_env: option 'dataset' must be a mapping (the data.train entry's keys)")
        low, high = (float(x) for x in reward_range)
        if not low <= high:
            raise ValueError(f"nemo_rl_env: reward_range must be (low, high) with low <= high, got {reward_range}")
        self.env = env
        self.dataset = dict(dataset or {})
        self.reward_range = (low, high)

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        message = f"scored inside NeMo RL by its environment {self.env!r}; not available outside it"
        return [
            RewardResult(reward=self.reward_range[0], verdict=Verdict.ERROR, details={"error": message})
            for _ in samples
        ]

    def close(self) -> None:
        return None
