"""Metrics of the MOPD losses, as 0-dim tensors (no device sync until ``as_dict``).

Token-averaged metrics are divided by the token denominator the loss was given, so with global
counts they are *additive* across micro-batches and ranks (NeMo RL's convention: the trainer sums
the per-micro-batch values). Counts are raw and additive too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch

MetricNormalizer = Literal["tokens", "sequences", "none"]


@dataclass(frozen=True, slots=True)
class MOPDMetrics:
    #: the loss value (normalized like the gradient)
    loss: torch.Tensor
    #: mean sampled reverse KL ``log pi_train(y_t) - log pi_teacher(y_t)`` over valid tokens
    reverse_kl: torch.Tensor
    #: fraction of valid tokens whose train/inference ratio lies outside the IS band
    is_oob_fraction: torch.Tensor
    #: mean ``|advantage|`` (after clipping and outcome mixing) over valid tokens
    advantage_abs_mean: torch.Tensor
    #: number of valid tokens / of sequences with at least one valid token (this micro-batch)
    valid_tokens: torch.Tensor
    valid_sequences: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).item()) for f in fields(self)}

    @staticmethod
    def normalizers(loss_normalizer: MetricNormalizer) -> dict[str, MetricNormalizer]:
        """The global denominator each metric was divided by."""
        return {
            "loss": loss_normalizer,
            "reverse_kl": "tokens",
            "is_oob_fraction": "tokens",
            "advantage_abs_mean": "tokens",
            "valid_tokens": "none",
            "valid_sequences": "none",
        }


@dataclass(frozen=True, slots=True)
class TopKMetrics:
    loss: torch.Tensor
    #: mean truncated reverse KL (with the correction terms) over valid tokens
    topk_reverse_kl: torch.Tensor
    #: mean probability mass the student / teacher put on the teacher's top-k tokens
    student_topk_mass: torch.Tensor
    teacher_topk_mass: torch.Tensor
    valid_tokens: torch.Tensor
    valid_sequences: torch.Tensor

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name).item()) for f in fields(self)}

    @staticmethod
    def normalizers(loss_normalizer: MetricNormalizer) -> dict[str, MetricNormalizer]:
        return {
            "loss": loss_normalizer,
            "topk_reverse_kl": "tokens",
            "student_topk_mass": "tokens",
            "teacher_topk_mass": "tokens",
            "valid_tokens": "none",
            "valid_sequences": "none",
        }
