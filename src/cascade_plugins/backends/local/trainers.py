"""One optimizer step of each stage kind: ``sft``, ``grpo`` (strict on-policy) and ``mopd``.

A trainer owns nothing but the step's computation; the stage loop (``backend.py``) owns the model,
optimizer, schedule, checkpoints and evaluation. Every random choice of step ``n`` derives from
``(seed, n)`` alone, so a stage resumed from a checkpoint replays exactly the steps an
uninterrupted run would have taken.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from typing import Any

import torch

from cascade_plugins.backends.local.config import GRPOHparams, MOPDHparams, SFTHparams
from cascade_plugins.backends.local.data import DomainData
from cascade_plugins.backends.local.policy import Policy, grouped_logprobs, make_batch
from cascade_plugins.backends.local.rollout import Rollouts, generate, row_to_sample, score_deduplicated
from cascade_plugins.interfaces import Reward, RewardResult, Sample

__all__ = ["GRPOTrainer", "MOPDTrainer", "SFTTrainer", "group_advantages", "step_seed"]

Row = dict[str, Any]


def step_seed(seed: int, step: int, purpose: str) -> int:
    """A 63-bit seed for ``purpose`` at ``step``, independent of everything that ran before."""
    digest = hashlib.sha256(f"{seed}:{step}:{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class _Encoder:
    """Token ids of rows' prompts and answers, computed once per row."""

    def __init__(self, policy: Policy):
        self.policy = policy
        self._prompts: dict[int, list[int]] = {}
        self._answers: dict[int, list[int]] = {}

    def prompt(self, row: Row) -> list[int]:
        key = id(row)
        if key not in self._prompts:
            self._prompts[key] = self.policy.encode_prompt(row["prompt"])
        return self._prompts[key]

    def answer(self, row: Row) -> list[int]:
        key = id(row)
        if key not in self._answers:
            self._answers[key] = self.policy.encode_completion(row["answer"])
        return self._answers[key]


def _backward_and_clip(loss: torch.Tensor, policy: Policy, grad_clip: float | None) -> float:
    loss.backward()
    params = [p for p in policy.model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    if grad_clip is None:
        return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in params])))
    return float(torch.nn.utils.clip_grad_norm_(params, grad_clip))


class SFTTrainer:
    """Cross-entropy on the answer tokens (the end token included) of ``batch_size`` rows."""

    def __init__(self, policy: Policy, data: DomainData, hp: SFTHparams, seed: int):
        self.policy, self.data, self.hp, self.seed = policy, data, hp, seed
        self.encoder = _Encoder(policy)

    def step(self, step: int, optimizer_step: Callable[[], None]) -> dict[str, Any]:
        rng = random.Random(step_seed(self.seed, step, "sft-batch"))
        pairs = self.data.draw(rng, self.hp.batch_size)
        self.policy.model.zero_grad(set_to_none=True)
        batch = make_batch(
            [self.encoder.prompt(row) for _, row in pairs],
            [self.encoder.answer(row) for _, row in pairs],
            self.policy.pad_id,
        )
        logprobs = grouped_logprobs(self.policy.model, batch, [domain for domain, _ in pairs])
        mask = batch.completion_mask.to(logprobs.device)
        loss = -(logprobs * mask).sum() / mask.sum()
        grad_norm = _backward_and_clip(loss, self.policy, self.hp.grad_clip)
        optimizer_step()
        return {"loss": loss.item(), "grad_norm": grad_norm, "tokens": int(mask.sum())}


def group_advantages(rewards: torch.Tensor, normalize_std: bool, eps: float = 1e-6) -> torch.Tensor:
    """``[groups, G]`` rewards -> advantages ``r - mean`` (divided by the group's std if asked).
    A group whose rewards are all equal gets exactly zero advantages."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    if not normalize_std:
        return centred
    return centred / (rewards.std(dim=1, keepdim=True) + eps)


class GRPOTrainer:
    """Strict on-policy GRPO: sample G completions per prompt from the current policy, score them,
    normalize rewards within each group, take one gradient step on the token-level REINFORCE loss
    (no importance ratio, no KL)."""

    def __init__(
        self,
        policy: Policy,
        data: DomainData,
        rewards: Mapping[str, Reward],
        hp: GRPOHparams,
        seed: int,
        score: Callable[[str, list[Sample]], list[RewardResult]] | None = None,
    ):
        self.policy, self.data, self.rewards, self.hp, self.seed = policy, data, rewards, hp, seed
        self.encoder = _Encoder(policy)
        self.score = score or (lambda domain, samples: score_deduplicated(self.rewards[domain], samples))

    def _rollout_groups(self, pairs: list[tuple[str, Row]]) -> tuple[Rollouts, torch.Tensor, list[str]]:
        hp = self.hp
        group = hp.samples_per_prompt
        prompts = [self.encoder.prompt(row) for _, row in pairs for _ in range(group)]
        domains = [domain for domain, _ in pairs for _ in range(group)]
        rollouts = generate(
            self.policy,
            prompts,
            hp.max_new_tokens,
            greedy=False,
            temperature=hp.temperature,
            top_p=hp.top_p,
            groups=domains,
        )
        rows = [row for _, row in pairs for _ in range(group)]
        scores = [0.0] * len(prompts)
        for domain in sorted(set(domains)):
            index = [i for i, d in enumerate(domains) if d == domain]
            samples = [row_to_sample(rows[i], rollouts.texts[i], domain) for i in index]
            for i, result in zip(index, self.score(domain, samples), strict=True):
                scores[i] = float(result.reward)
        if hp.overlong == "penalty":
            scores = [hp.overlong_reward if cut else s for s, cut in zip(scores, rollouts.truncated, strict=True)]
        return rollouts, torch.tensor(scores).view(len(pairs), group), domains

    def step(self, step: int, optimizer_step: Callable[[], None]) -> dict[str, Any]:
        hp = self.hp
        rng = random.Random(step_seed(self.seed, step, "grpo-prompts"))
        torch.manual_seed(step_seed(self.seed, step, "grpo-sampling"))
        kept: list[tuple[Rollouts, torch.Tensor, torch.Tensor, list[str]]] = []
        groups_kept, draws = 0, 0
        first_rewards: torch.Tensor | None = None
        first_domains: list[str] = []
        first_truncated: list[bool] = []
        while groups_kept < hp.prompts_per_step:
            pairs = self.data.draw(rng, hp.prompts_per_step - groups_kept)
            rollouts, rewards, domains = self._rollout_groups(pairs)
            if first_rewards is None:
                first_rewards, first_domains, first_truncated = rewards, domains, rollouts.truncated
            advantages = group_advantages(rewards, hp.normalize_std)
            keep_group = torch.ones(len(pairs), dtype=torch.bool)
            if hp.dynamic_filtering:
                keep_group = rewards.max(dim=1).values != rewards.min(dim=1).values
            keep_rows = keep_group.repeat_interleave(hp.samples_per_prompt)
            if hp.overlong == "filter":
                keep_rows &= ~torch.tensor(rollouts.truncated)
            rows = keep_rows.nonzero().squeeze(-1)
            if len(rows):
                kept.append((rollouts, advantages.flatten()[rows], rows, domains))
            groups_kept += int(keep_group.sum())
            draws += 1
            if not hp.dynamic_filtering or draws > hp.max_filter_draws:
                break

        assert first_rewards is not None
        metrics: dict[str, Any] = {
            "reward": float(first_rewards.mean()),
            "truncated": sum(first_truncated) / len(first_truncated),
            "groups": groups_kept,
            "draws": draws,
        }
        flat = first_rewards.flatten()
        for domain in sorted(set(first_domains)):
            idx = [i for i, d in enumerate(first_domains) if d == domain]
            metrics[f"reward/{domain}"] = float(flat[idx].mean())

        # Token-level loss: the denominator counts every kept token; samples with zero advantage
        # contribute nothing to the gradient, so they skip the forward and backward passes.
        total_tokens = sum(float(r.batch.completion_mask[rows].sum()) for r, _, rows, _ in kept)
        total_sequences = sum(len(rows) for _, _, rows, _ in kept)
        self.policy.model.zero_grad(set_to_none=True)
        loss_value, active = 0.0, 0
        for rollouts, advantages, rows, row_domains in kept:
            nonzero = advantages != 0
            if not bool(nonzero.any()):
                continue
            active_rows = rows[nonzero]
            adv = advantages[nonzero].to(self.policy.device)
            logprobs = grouped_logprobs(self.policy.model, rollouts.batch, row_domains, active_rows.tolist())
            mask = rollouts.batch.completion_mask[active_rows].to(logprobs.device)
            if hp.loss_aggregation == "token":
                loss = -(adv[:, None] * logprobs * mask).sum() / total_tokens
            else:
                loss = -(adv * (logprobs * mask).sum(1) / mask.sum(1)).sum() / total_sequences
            loss.backward()
            loss_value += loss.item()
            active += int(nonzero.sum())
        metrics["active_samples"] = active
        metrics["loss"] = loss_value
        metrics["response_tokens"] = total_tokens / max(1, total_sequences)
        if active:
            params = [p for p in self.policy.model.parameters() if p.grad is not None]
            if hp.grad_clip is not None:
                metrics["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, hp.grad_clip))
            optimizer_step()
        else:
            # Every advantage is zero: the gradient is exactly zero, so no update is made.
            metrics["grad_norm"] = 0.0
        return metrics


class MOPDTrainer:
    """Multi-domain on-policy distillation: the student samples, each sample's domain teacher scores
    the sampled tokens, the MOPD loss (``spec.loss``) turns the log-prob gap into the update."""

    def __init__(
        self,
        policy: Policy,
        data: DomainData,
        teachers: Mapping[str, Policy],
        loss_fn: Callable[..., Any],
        hp: MOPDHparams,
        seed: int,
    ):
        self.policy, self.data, self.teachers, self.loss_fn, self.hp, self.seed = (
            policy,
            data,
            teachers,
            loss_fn,
            hp,
            seed,
        )
        self.encoder = _Encoder(policy)

    def step(self, step: int, optimizer_step: Callable[[], None]) -> dict[str, Any]:
        hp = self.hp
        rng = random.Random(step_seed(self.seed, step, "mopd-prompts"))
        torch.manual_seed(step_seed(self.seed, step, "mopd-sampling"))
        pairs = [(d, rng.choice(self.data.rows[d])) for d in self.data.domains for _ in range(hp.prompts_per_domain)]
        prompts = [self.encoder.prompt(row) for _, row in pairs for _ in range(hp.samples_per_prompt)]
        domains = [d for d, _ in pairs for _ in range(hp.samples_per_prompt)]
        rollouts = generate(
            self.policy,
            prompts,
            hp.max_new_tokens,
            greedy=False,
            temperature=hp.temperature,
            top_p=hp.top_p,
            groups=domains,
        )
        batch = rollouts.batch
        teacher_logprobs = torch.zeros_like(batch.completion_mask)
        with torch.no_grad():
            for domain in sorted(set(domains)):
                rows = [i for i, d in enumerate(domains) if d == domain]
                scored = grouped_logprobs(self.teachers[domain].model, batch, domains, rows)
                teacher_logprobs[rows] = scored.float().cpu()
        self.policy.model.zero_grad(set_to_none=True)
        student = grouped_logprobs(self.policy.model, batch, domains)
        device = student.device
        assert rollouts.inference_logprobs is not None
        out = self.loss_fn(
            student,
            rollouts.inference_logprobs.to(device),
            teacher_logprobs.to(device),
            batch.completion_mask.to(device),
        )
        grad_norm = _backward_and_clip(out.loss, self.policy, hp.grad_clip)
        optimizer_step()
        metrics: dict[str, Any] = {"grad_norm": grad_norm}
        for key, value in _metric_items(out.metrics):
            metrics[key] = value
        mask = batch.completion_mask
        gap = (teacher_logprobs - student.detach().float().cpu()) * mask
        for domain in sorted(set(domains)):
            rows = [i for i, d in enumerate(domains) if d == domain]
            metrics[f"reverse_kl/{domain}"] = float(-gap[rows].sum() / mask[rows].sum().clamp(min=1))
        metrics["truncated"] = sum(rollouts.truncated) / len(rollouts.truncated)
        return metrics


def _metric_items(metrics: Any) -> list[tuple[str, float]]:
    values = metrics.as_dict() if hasattr(metrics, "as_dict") else dict(metrics)
    return [(k, float(v)) for k, v in values.items()]
