"""Reverse KL on the teacher's top-k tokens, with the Xiaomi MOPD truncation correction.

Per valid token, over the teacher's top-k set ``K_t`` (full-vocabulary probabilities of both models
restricted to ``K_t``, *not* renormalized):

    d_t = sum_{v in K_t} [ p_S(v) log(p_S(v) / p_T(v)) - p_S(v) + p_T(v) ]

The ``- p_S + p_T`` terms make ``d_t`` a divergence between the two truncated measures whose only
minimum is ``p_S = p_T`` on ``K_t`` (without them the minimizer would push mass off ``K_t``).
``d_t`` is differentiated analytically (no sampling, no importance weight) and normalized like the
sampled-token loss.

:func:`gather_student_logprobs` turns full student logits into the ``[B, T, k]`` log-probs this loss
needs in chunks of tokens, so no ``[B, T, V]`` intermediate is ever built besides the logits and
their gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from cascade_plugins.interfaces import LossInput
from cascade_plugins.losses.mopd.metrics import TopKMetrics
from cascade_plugins.losses.mopd.normalization import Count, make_normalizer
from cascade_plugins.losses.mopd.options import TopKMOPDOptions

_DEFAULT_OPTIONS = TopKMOPDOptions()


@dataclass(frozen=True, slots=True)
class TopKOutput:
    loss: torch.Tensor
    metrics: TopKMetrics


def topk_reverse_kl_loss(
    student_topk_logprobs: torch.Tensor,
    teacher_topk_logprobs: torch.Tensor,
    mask: torch.Tensor,
    options: TopKMOPDOptions | None = None,
    *,
    num_sequences: Count | None = None,
    num_tokens: Count | None = None,
) -> TopKOutput:
    """The truncation-corrected top-k reverse KL.

    Args:
        student_topk_logprobs: ``[B, T, k]`` full-vocabulary student log-probs at the teacher's
            top-k token ids (with grad), e.g. from :func:`gather_student_logprobs` or NeMo RL's
            ``get_distillation_topk_logprobs_from_logits(..., zero_outside_topk=True)``.
        teacher_topk_logprobs: ``[B, T, k]`` the teacher's full-vocabulary log-probs of its top-k
            tokens; ``-inf`` entries (padding) are left out of the support.
        mask: ``[B, T]`` valid tokens.
        num_sequences, num_tokens: global counts, as in :func:`~cascade_plugins.losses.mopd.mopd_loss`.
    """
    opts = options or _DEFAULT_OPTIONS
    if student_topk_logprobs.dim() != 3 or student_topk_logprobs.shape != teacher_topk_logprobs.shape:
        raise ValueError(
            "student_topk_logprobs and teacher_topk_logprobs must both be [B, T, k]; got "
            f"{tuple(student_topk_logprobs.shape)} and {tuple(teacher_topk_logprobs.shape)}"
        )
    if mask.shape != student_topk_logprobs.shape[:2]:
        raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {tuple(student_topk_logprobs.shape[:2])}")

    dtype = torch.promote_types(student_topk_logprobs.dtype, torch.float32)
    valid = mask if mask.dtype == torch.bool else mask != 0
    norm = make_normalizer(valid, opts.normalization, dtype, num_sequences, num_tokens)

    with torch.no_grad():
        teacher = teacher_topk_logprobs.to(dtype)
        in_support = torch.isfinite(teacher) & valid.unsqueeze(-1)
        teacher = torch.where(in_support, teacher, 0.0)
        teacher_probs = torch.where(in_support, teacher.exp(), 0.0)
    student = torch.where(in_support, student_topk_logprobs.to(dtype), 0.0)
    student_probs = torch.where(in_support, student.exp(), 0.0)
    per_entry = student_probs * (student - teacher) - student_probs + teacher_probs
    divergence = per_entry.sum(dim=-1)
    if norm.row_scale is None:
        loss = divergence.sum() / norm.denominator
    else:
        loss = (divergence.sum(dim=-1) * norm.row_scale).sum() / norm.denominator

    with torch.no_grad():
        token_denominator = norm.token_denominator
        metrics = TopKMetrics(
            loss=loss.detach(),
            topk_reverse_kl=divergence.detach().sum() / token_denominator,
            student_topk_mass=student_probs.sum() / token_denominator,
            teacher_topk_mass=teacher_probs.sum() / token_denominator,
            valid_tokens=norm.local_tokens,
            valid_sequences=norm.local_sequences,
        )
    return TopKOutput(loss=loss, metrics=metrics)


class _GatherLogprobs(torch.autograd.Function):
    """``log_softmax(logits)[..., indices]`` in token chunks; saves only the log-normalizers."""

    @staticmethod
    def forward(ctx: Any, logits: torch.Tensor, indices: torch.Tensor, chunk_size: int) -> torch.Tensor:
        flat_logits = logits.reshape(-1, logits.shape[-1])
        flat_indices = indices.reshape(-1, indices.shape[-1])
        out_dtype = torch.promote_types(logits.dtype, torch.float32)
        gathered = torch.empty(flat_indices.shape, dtype=out_dtype, device=logits.device)
        log_normalizers = torch.empty(flat_logits.shape[0], dtype=out_dtype, device=logits.device)
        for start in range(0, flat_logits.shape[0], chunk_size):
            rows = slice(start, start + chunk_size)
            chunk = flat_logits[rows].to(out_dtype)
            log_normalizers[rows] = torch.logsumexp(chunk, dim=-1)
            gathered[rows] = chunk.gather(-1, flat_indices[rows]) - log_normalizers[rows].unsqueeze(-1)
        ctx.save_for_backward(logits, indices, log_normalizers)
        ctx.chunk_size = chunk_size
        return gathered.reshape(indices.shape)

    @staticmethod
    def backward(ctx: Any, grad_output: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        logits, indices, log_normalizers = ctx.saved_tensors
        flat_logits = logits.reshape(-1, logits.shape[-1])
        flat_indices = indices.reshape(-1, indices.shape[-1])
        flat_grad = grad_output.reshape(flat_indices.shape)
        grad_logits = torch.empty_like(flat_logits)
        same_dtype = grad_logits.dtype == log_normalizers.dtype
        for start in range(0, flat_logits.shape[0], ctx.chunk_size):
            rows = slice(start, start + ctx.chunk_size)
            grad = flat_grad[rows].to(log_normalizers.dtype)
            # d/dx_j of (x_i - logsumexp(x)) = 1[i=j] - softmax(x)_j; built in place in the output
            chunk = grad_logits[rows] if same_dtype else torch.empty_like(grad_logits[rows], dtype=grad.dtype)
            torch.sub(flat_logits[rows], log_normalizers[rows, None], out=chunk)
            chunk.exp_().mul_(-grad.sum(dim=-1, keepdim=True))
            chunk.scatter_add_(-1, flat_indices[rows], grad)
            if not same_dtype:
                grad_logits[rows] = chunk
        return grad_logits.reshape(logits.shape), None, None


def gather_student_logprobs(logits: torch.Tensor, indices: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """``log_softmax(logits, -1).gather(-1, indices)`` for ``[B, T, V]`` logits and ``[B, T, k]``
    indices, computed ``chunk_size`` tokens at a time (float32 or wider)."""
    if logits.shape[:-1] != indices.shape[:-1]:
        raise ValueError(
            f"logits {tuple(logits.shape)} and indices {tuple(indices.shape)} disagree on the leading dims"
        )
    return _GatherLogprobs.apply(logits, indices.long(), chunk_size)


class TopKMOPDLoss:
    """The registered ``mopd_topk`` loss: :func:`topk_reverse_kl_loss` with fixed options.

    Call it with top-k log-probs, or use :meth:`from_logits` with full student logits.
    """

    name = "mopd_topk"
    #: the teacher's top-k tokens with their log-probs, and the student's log-probs of those tokens
    inputs = frozenset({LossInput.TEACHER_TOPK})

    def __init__(self, options: TopKMOPDOptions | None = None, **option_values: object) -> None:
        if options is not None and option_values:
            raise TypeError("pass either a TopKMOPDOptions object or keyword options, not both")
        self.options = options if options is not None else TopKMOPDOptions.model_validate(option_values)

    def __call__(
        self,
        student_topk_logprobs: torch.Tensor,
        teacher_topk_logprobs: torch.Tensor,
        mask: torch.Tensor,
        *,
        num_sequences: Count | None = None,
        num_tokens: Count | None = None,
    ) -> TopKOutput:
        return topk_reverse_kl_loss(
            student_topk_logprobs,
            teacher_topk_logprobs,
            mask,
            self.options,
            num_sequences=num_sequences,
            num_tokens=num_tokens,
        )

    def from_logits(
        self,
        student_logits: torch.Tensor,
        teacher_topk_indices: torch.Tensor,
        teacher_topk_logprobs: torch.Tensor,
        mask: torch.Tensor,
        *,
        num_sequences: Count | None = None,
        num_tokens: Count | None = None,
    ) -> TopKOutput:
        """The loss from ``[B, T, V]`` student logits (position ``t`` predicts token ``t``)."""
        student = gather_student_logprobs(student_logits, teacher_topk_indices, self.options.chunk_size)
        return self(student, teacher_topk_logprobs, mask, num_sequences=num_sequences, num_tokens=num_tokens)

    def __repr__(self) -> str:
        return f"TopKMOPDLoss({self.options!r})"
