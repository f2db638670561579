"""Sequence- and token-level normalization with global counts.

A loss is ``sum(per-token terms * row_scale) / denominator``. With ``normalization="sequence"`` the
row scale is ``1 / |valid tokens of the row|`` (rows never straddle micro-batches) and the
denominator is the number of valid sequences; with ``"token"`` the row scale is 1 and the
denominator the number of valid tokens. Passing the *global* counts (over every micro-batch and
data-parallel rank of the optimizer step) makes the micro-batch losses add up to the full-batch loss.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cascade_plugins.losses.mopd.options import Normalization

Count = torch.Tensor | float | int


@dataclass(frozen=True, slots=True)
class Normalizer:
    #: ``[B]`` per-row factor (``None``: 1 for every row)
    row_scale: torch.Tensor | None
    #: denominator of the loss
    denominator: torch.Tensor
    #: denominator of token-averaged metrics
    token_denominator: torch.Tensor
    #: number of valid tokens and of sequences with at least one valid token in this micro-batch
    local_tokens: torch.Tensor
    local_sequences: torch.Tensor


def _as_count(value: Count, like: torch.Tensor) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.to(device=like.device, dtype=like.dtype).reshape(())
    return torch.tensor(float(value), device=like.device, dtype=like.dtype)


def make_normalizer(
    valid: torch.Tensor,
    normalization: Normalization,
    dtype: torch.dtype,
    num_sequences: Count | None,
    num_tokens: Count | None,
) -> Normalizer:
    """Build the normalizer for a ``[B, T]`` boolean mask of valid tokens."""
    tokens_per_row = valid.sum(dim=-1, dtype=dtype)
    local_tokens = tokens_per_row.sum()
    local_sequences = (tokens_per_row > 0).sum().to(dtype)
    # Local defaults are clamped so that an all-masked micro-batch gives 0, not 0/0.
    token_denominator = _as_count(num_tokens, local_tokens) if num_tokens is not None else local_tokens.clamp(min=1)
    if normalization == "token":
        return Normalizer(None, token_denominator, token_denominator, local_tokens, local_sequences)
    row_scale = torch.where(tokens_per_row > 0, 1.0 / tokens_per_row.clamp(min=1), 0.0)
    denominator = _as_count(num_sequences, local_tokens) if num_sequences is not None else local_sequences.clamp(min=1)
    return Normalizer(row_scale, denominator, token_denominator, local_tokens, local_sequences)
