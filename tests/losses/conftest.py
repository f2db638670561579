"""Oracles for the loss tests: direct float64 transcriptions of the formulas, written loop by loop
from the equations, exposed as fixtures."""

from __future__ import annotations

import math

import pytest
import torch


def eq4_loss(
    student: torch.Tensor,
    inference: torch.Tensor,
    teacher: torch.Tensor,
    mask: torch.Tensor,
    *,
    ratio_min: float = 0.5,
    ratio_max: float = 2.0,
    normalization: str = "sequence",
    importance_sampling: str = "icepop",
    advantage_clip: float | None = None,
    outcome_weight: float = 0.0,
    outcome: torch.Tensor | None = None,
) -> torch.Tensor:
    """Nemotron-Cascade 2 Eq. 2-4 (plus the community options), one token at a time.

    ``student`` carries the gradient; every ``sg[...]`` is a Python float.
    """
    batch, length = student.shape
    per_sequence = []
    all_terms = []
    for b in range(batch):
        terms = []
        for t in range(length):
            if not bool(mask[b, t]):
                continue
            log_train = float(student[b, t].detach())
            advantage = float(teacher[b, t]) - log_train  # Eq. 2, stop-gradient
            if advantage_clip is not None:
                advantage = max(-advantage_clip, min(advantage_clip, advantage))
            if outcome_weight:
                assert outcome is not None
                advantage += outcome_weight * float(outcome[b] if outcome.dim() == 1 else outcome[b, t])
            ratio = math.exp(log_train - float(inference[b, t]))  # Eq. 3
            if importance_sampling == "icepop":
                weight = ratio if ratio_min <= ratio <= ratio_max else 0.0
            elif importance_sampling == "tis":
                weight = max(ratio_min, min(ratio_max, ratio))
            else:
                weight = 1.0
            terms.append(weight * advantage * student[b, t])
        all_terms.extend(terms)
        if terms:
            per_sequence.append(sum(terms) / len(terms))
    if normalization == "sequence":
        if not per_sequence:
            return student.sum() * 0.0
        return -sum(per_sequence) / len(per_sequence)  # Eq. 4
    if not all_terms:
        return student.sum() * 0.0
    return -sum(all_terms) / len(all_terms)


def topk_loss_full_vocab(
    student_logits: torch.Tensor,
    teacher_indices: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    normalization: str = "sequence",
) -> torch.Tensor:
    """Truncation-corrected top-k reverse KL computed the naive way: full-vocabulary student
    log-probs and a full-vocabulary teacher tensor with the top-k support marked."""
    student_logprobs = torch.log_softmax(student_logits.double(), dim=-1)  # [B, T, V]
    teacher_full = torch.zeros_like(student_logprobs).scatter(-1, teacher_indices, teacher_topk_logprobs.double())
    support = torch.zeros_like(student_logprobs, dtype=torch.bool).scatter(
        -1, teacher_indices, torch.isfinite(teacher_topk_logprobs)
    )
    teacher_full = torch.where(support, teacher_full, 0.0)
    p_student = student_logprobs.exp()
    p_teacher = torch.where(support, teacher_full.exp(), 0.0)
    per_entry = p_student * (student_logprobs - teacher_full) - p_student + p_teacher
    per_token = torch.where(support, per_entry, 0.0).sum(-1)
    valid = mask.bool()
    per_token = torch.where(valid, per_token, 0.0)
    counts = valid.sum(-1)
    if normalization == "token":
        return per_token.sum() / counts.sum().clamp(min=1)
    rows = counts > 0
    return (per_token.sum(-1)[rows] / counts[rows]).sum() / rows.sum().clamp(min=1)


@pytest.fixture
def eq4() -> object:
    return eq4_loss


@pytest.fixture
def topk_full_vocab() -> object:
    return topk_loss_full_vocab
