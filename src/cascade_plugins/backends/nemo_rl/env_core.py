"""The NeMo RL-independent half of our environments: text + ``extra_env_info`` in, scores out.

NeMo RL hands an environment a batch of message logs (``[{"role", "content"}, ...]`` per sample,
token tensors already stripped) and the per-sample ``extra_env_info`` our data processor wrote
(:func:`cascade_plugins.backends.nemo_rl.data.extra_env_info`). These helpers turn that into
:class:`~cascade_plugins.interfaces.Sample` objects, split the batch over worker actors, and
summarise results. They import neither NeMo RL, Ray nor torch, so they are unit-tested directly.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascade_plugins.interfaces import RewardResult, Sample, Verdict

#: ``extra_env_info`` keys that map onto :class:`Sample` fields
SAMPLE_KEYS = ("ground_truth", "tests", "problem", "domain", "prompt")
#: the reward name of a distillation-only environment: every response scores 0 and no reward runs
#: (MOPD trains on the teachers' log-probs only; NeMo RL still routes each task to an environment)
NO_REWARD = "none"


@dataclass(frozen=True, slots=True)
class EnvSettings:
    """``env.<name>`` of a NeMo RL config, for one of our environments."""

    reward: str
    reward_options: dict[str, Any] = field(default_factory=dict)
    num_workers: int = 1
    #: CPUs each scoring actor reserves in Ray; the actors are spread over the nodes, and a
    #: reward's sandbox pool is sized to the reservation (``os.cpu_count()`` in the actor)
    cpus_per_worker: float = 1.0
    #: plugin allow-list for the workers' registry (``None``: every installed plugin)
    plugins: tuple[str, ...] | None = None
    #: stop strings advertised to the generator for the next turn (single-turn: ``None``)
    stop_strings: tuple[str, ...] | None = None

    @property
    def worker_cpu_count(self) -> int:
        """What ``os.cpu_count()`` reports inside a scoring actor: its reservation, at least 1."""
        return max(1, int(self.cpus_per_worker))

    @classmethod
    def from_config(cls, default_reward: str, config: Mapping[str, Any] | None) -> EnvSettings:
        """Validate ``config``; every error names the offending key under ``env.<name>``."""
        config = dict(config or {})
        known = {"reward", "reward_options", "num_workers", "cpus_per_worker", "plugins", "stop_strings"}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(
                f"env.cascade_{default_reward}: unknown key(s) {unknown}; allowed: {sorted(known)}"
            )
        reward = config.get("reward", default_reward)
        if not isinstance(reward, str) or not reward:
            raise ValueError(f"env.cascade_{default_reward}.reward must be a reward name, got {reward!r}")
        options = config.get("reward_options") or {}
        if not isinstance(options, Mapping):
            raise ValueError(f"env.cascade_{default_reward}.reward_options must be a mapping")
        workers = config.get("num_workers", 1)
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
            raise ValueError(f"env.cascade_{default_reward}.num_workers must be an integer >= 1, got {workers!r}")
        cpus = config.get("cpus_per_worker", 1.0)
        if not isinstance(cpus, int | float) or isinstance(cpus, bool) or not math.isfinite(cpus) or cpus <= 0:
            raise ValueError(f"env.cascade_{default_reward}.cpus_per_worker must be a number > 0, got {cpus!r}")
        plugins = config.get("plugins")
        if plugins is not None:
            if isinstance(plugins, str):
                plugins = [p for p in plugins.split(",") if p.strip()]
            plugins = tuple(str(p).strip() for p in plugins)
        stops = config.get("stop_strings")
        return cls(
            reward=reward,
            reward_options=dict(options),
            num_workers=workers,
            cpus_per_worker=float(cpus),
            plugins=plugins,
            stop_strings=tuple(stops) if stops else None,
        )


def _content_text(content: Any) -> str:
    """Message content as text (multimodal content lists keep their text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(
            str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content
        )
    return "" if content is None else str(content)


def sample_from_message_log(message_log: Sequence[Mapping[str, Any]], info: Mapping[str, Any] | None) -> Sample:
    """One :class:`Sample`: the response is every assistant turn joined (as NeMo RL's math env does),
    the prompt is the last user turn unless ``extra_env_info`` carries the raw ``prompt``."""
    info = dict(info or {})
    response = "".join(_content_text(m.get("content")) for m in message_log if m.get("role") == "assistant")
    user_turns = [_content_text(m.get("content")) for m in message_log if m.get("role") == "user"]
    prompt = info.pop("prompt", None)
    if not isinstance(prompt, str):
        prompt = user_turns[-1] if user_turns else ""
    metadata = dict(info.pop("metadata", None) or {})
    kwargs = {key: info.pop(key) for key in ("ground_truth", "tests", "problem") if key in info}
    domain = info.pop("domain", None)
    metadata.update(info)  # anything else the row carried
    return Sample(response=response, prompt=prompt, domain=domain, metadata=metadata, **kwargs)


def split_for_workers(items: Sequence[Any], num_workers: int) -> list[tuple[int, list[Any]]]:
    """Contiguous, order-keeping chunks ``(start_index, chunk)``, at most ``num_workers`` of them,
    none empty (sizes differ by at most one)."""
    if num_workers < 1:
        raise ValueError(f"num_workers must be >= 1, got {num_workers}")
    n = len(items)
    chunks = min(num_workers, n)
    out: list[tuple[int, list[Any]]] = []
    start = 0
    for i in range(chunks):
        size = n // chunks + (1 if i < n % chunks else 0)
        out.append((start, list(items[start : start + size])))
        start += size
    return out


def merge_chunk_results(total: int, chunk_results: Sequence[tuple[int, Sequence[RewardResult]]]) -> list[RewardResult]:
    """Put per-chunk results back in batch order; a missing or short chunk is an error."""
    merged: list[RewardResult | None] = [None] * total
    for start, results in chunk_results:
        for offset, result in enumerate(results):
            merged[start + offset] = result
    missing = [i for i, r in enumerate(merged) if r is None]
    if missing:
        raise RuntimeError(f"reward workers returned no result for samples {missing[:10]}")
    return merged  # type: ignore[return-value]


def observation_for(result: RewardResult) -> dict[str, str]:
    """The environment's reply message (tokenized into the sequence, never trained on)."""
    return {"role": "environment", "content": f"Environment: {result.verdict}"}


def updated_metadata(info: Mapping[str, Any] | None, result: RewardResult) -> dict[str, Any]:
    """``extra_env_info`` for a next turn: the original plus this turn's verdict and reward."""
    out = dict(info or {})
    out["cascade_verdict"] = result.verdict
    out["cascade_reward"] = result.reward
    return out


def unscored(n: int) -> list[RewardResult]:
    """Results of a distillation-only environment."""
    return [RewardResult(reward=0.0, verdict="unscored") for _ in range(n)]


def batch_metrics(rewards: Sequence[float], verdicts: Sequence[str]) -> dict[str, float]:
    """Scalar metrics for a scored batch: mean reward, accuracy (verdict ``correct``), and the
    fraction of each verdict."""
    n = len(rewards)
    if n == 0:
        return {}
    metrics = {
        "mean_reward": sum(rewards) / n,
        "accuracy": sum(v == Verdict.CORRECT for v in verdicts) / n,
    }
    for verdict in sorted(set(verdicts)):
        metrics[f"verdict/{verdict}"] = sum(v == verdict for v in verdicts) / n
    return metrics


class RoundScores:
    """Per-domain mean reward over one validation round (``begin`` ... ``end``).

    NeMo RL's ``validate`` reports one accuracy over all tasks; the environments see every
    sample's domain, so they keep the per-domain numbers the cascade's teacher registry needs.
    Samples scored outside a round (training rollouts) are not counted. The environment actor is
    threaded (concurrent ``step`` calls), so every update holds a lock.
    """

    def __init__(self) -> None:
        self.step: int | None = None
        self._sums: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def begin(self, step: int) -> None:
        with self._lock:
            self.step = step
            self._sums.clear()
            self._counts.clear()

    def add(self, samples: Sequence[Sample], results: Sequence[RewardResult]) -> None:
        with self._lock:
            if self.step is None:
                return
            for sample, result in zip(samples, results, strict=True):
                domain = sample.domain or "all"
                self._sums[domain] = self._sums.get(domain, 0.0) + float(result.reward)
                self._counts[domain] = self._counts.get(domain, 0) + 1

    def end(self) -> dict[str, float]:
        with self._lock:
            scores = {d: self._sums[d] / self._counts[d] for d in sorted(self._sums)}
            self.step = None
        return scores
