"""Generation (rollouts and greedy evaluation) and reward scoring for the local host."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from cascade_plugins.backends.local.policy import Batch, Policy, make_batch
from cascade_plugins.interfaces import Reward, RewardResult, Sample

__all__ = ["Rollouts", "ScoreCache", "generate", "row_to_sample", "score_deduplicated"]


@dataclass
class Rollouts:
    """Completions of a list of prompts, laid out as a :class:`Batch`."""

    batch: Batch
    texts: list[str]
    #: no end token within ``max_new_tokens``
    truncated: list[bool]
    #: ``[B, L]`` log-probs of the sampled tokens under the sampling distribution (``None`` if greedy)
    inference_logprobs: torch.Tensor | None


@torch.no_grad()
def generate(
    policy: Policy,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    *,
    greedy: bool,
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int | None = None,
    groups: Sequence[str] | None = None,
) -> Rollouts:
    """Complete every prompt (token lists, ``<s>`` included) with ``policy``.

    ``groups`` (e.g. each prompt's domain) splits generation into one call per group so that
    short prompts are not left-padded to another group's length. Sampling draws from torch's
    global generator: seed it before calling for reproducible rollouts.
    """
    model = policy.model
    was_training = model.training
    model.eval()
    device = policy.device
    eos, pad = policy.eos_id, policy.pad_id
    size = batch_size or len(prompts)
    keys = list(groups) if groups is not None else [""] * len(prompts)
    chunks: list[list[int]] = []
    for key in sorted(set(keys)):
        members = [i for i, k in enumerate(keys) if k == key]
        chunks.extend(members[start : start + size] for start in range(0, len(members), size))
    completions: list[list[int]] = [[] for _ in prompts]
    logprob_rows: list[list[float]] = [[] for _ in prompts]
    try:
        for members in chunks:
            chunk = [prompts[i] for i in members]
            left = make_batch(chunk, [[]] * len(chunk), pad)  # prompt block only
            width = left.prompt_width
            out = model.generate(
                input_ids=left.input_ids[:, :width].to(device),
                attention_mask=left.attention_mask[:, :width].to(device),
                max_new_tokens=max_new_tokens,
                do_sample=not greedy,
                temperature=None if greedy else temperature,
                top_p=None if greedy else top_p,
                top_k=None if greedy else 0,
                eos_token_id=eos,
                pad_token_id=pad,
                return_dict_in_generate=True,
                output_logits=not greedy,
            )
            new_tokens = out.sequences[:, width:].cpu()
            step_logprobs = None
            if not greedy:
                logits = torch.stack(out.logits, dim=1).float().cpu() / temperature
                step_logprobs = torch.log_softmax(logits, dim=-1).gather(-1, new_tokens.unsqueeze(-1)).squeeze(-1)
            for i, row in enumerate(new_tokens.tolist()):
                length = row.index(eos) + 1 if eos in row else len(row)
                completions[members[i]] = row[:length]
                if step_logprobs is not None:
                    logprob_rows[members[i]] = step_logprobs[i, :length].tolist()
    finally:
        model.train(was_training)
    batch = make_batch(prompts, completions, pad)
    inference = None
    if not greedy:
        inference = torch.zeros_like(batch.completion_mask)
        for i, row in enumerate(logprob_rows):
            inference[i, : len(row)] = torch.tensor(row)
    return Rollouts(
        batch=batch,
        texts=[policy.decode(c[:-1] if c and c[-1] == eos else c) for c in completions],
        truncated=[not c or c[-1] != eos for c in completions],
        inference_logprobs=inference,
    )


def row_to_sample(row: dict[str, Any], response: str, domain: str) -> Sample:
    """A data row plus a model response as the reward's :class:`Sample`, scored for ``domain``
    (:meth:`Sample.from_row`: extra keys go to metadata)."""
    return Sample.from_row(row, response=response, domain=domain)


class ScoreCache:
    """Results of a reward by sample, bounded (oldest entries go first). Rewards are deterministic
    (a contract rule), so a result can be reused: evaluation sets are scored after every stage and
    mostly get the same responses again; code rewards run a process per sample."""

    def __init__(self, max_entries: int = 200_000):
        self.max_entries = max_entries
        self._entries: dict[str, RewardResult] = {}

    def get(self, key: str) -> RewardResult | None:
        return self._entries.get(key)

    def put(self, key: str, result: RewardResult) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = result

    def __len__(self) -> int:
        return len(self._entries)


def score_deduplicated(
    reward: Reward, samples: Sequence[Sample], cache: ScoreCache | None = None, reward_key: str = ""
) -> list[RewardResult]:
    """Score ``samples``, each distinct one once (a group of rollouts of one prompt often repeats
    the same completion), reusing ``cache`` entries recorded under ``reward_key``."""
    keys = [
        reward_key + json.dumps([s.response, s.prompt, s.ground_truth, s.tests, s.problem], sort_keys=True, default=str)
        for s in samples
    ]
    known: dict[str, RewardResult] = {}
    pending: dict[str, int] = {}
    for i, key in enumerate(keys):
        hit = cache.get(key) if cache is not None else None
        if hit is not None:
            known[key] = hit
        elif key not in known:
            pending.setdefault(key, i)
    if pending:
        results = reward.score([samples[i] for i in pending.values()])
        if len(results) != len(pending):
            raise RuntimeError(
                f"reward {getattr(reward, 'name', reward)!r} returned {len(results)} results for {len(pending)} samples"
            )
        for key, result in zip(pending, results, strict=True):
            known[key] = result
            if cache is not None:
                cache.put(key, result)
    return [known[key] for key in keys]
