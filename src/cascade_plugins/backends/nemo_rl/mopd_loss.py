"""The MOPD loss as a NeMo RL ``LossFunction`` (input type LOGPROB).

NeMo RL calls ``loss_fn(next_token_logprobs, data, global_valid_seqs, global_valid_toks)`` once per
micro-batch. ``next_token_logprobs`` is ``[B, S-1]`` (position ``t`` predicts token ``t+1``); the
per-token tensors of ``data`` are ``[B, S]`` aligned with ``input_ids`` and are sliced ``[:, 1:]``.
The batch must carry, besides NeMo RL's usual ``token_mask`` and ``sample_mask``:

- ``teacher_logprobs`` (key configurable): the routed teacher's log-probs of the sampled tokens;
- ``generation_logprobs``: the inference engine's log-probs (NeMo RL fills it);
- ``prev_logprobs`` only with ``use_prev_logprobs=True``; ``advantages`` only when
  ``outcome_weight != 0`` (the group-normalized outcome advantages of the GRPO estimator).

The loss is normalized by the global counts NeMo RL passes (``global_valid_seqs`` with
``normalization: sequence``, ``global_valid_toks`` with ``token``), so summing micro-batches and
data-parallel ranks gives the full-batch loss. In ``grpo_train``, pass an instance as ``loss_fn``::

    loss_fn = NemoRLMOPDLoss({"importance_ratio_min": 0.5, "importance_ratio_max": 2.0})

This module imports NeMo RL lazily (its enums are looked up on attribute access, in the process
that uses the loss), so it imports, pickles and runs without NeMo RL installed.
"""

from __future__ import annotations

import enum
import functools
import importlib.util
from collections.abc import Mapping
from typing import Any

import torch

from cascade_plugins.losses.mopd import MOPDMetrics, MOPDOptions, mopd_loss


class _LossType(enum.Enum):  # NeMo RL's values, used only when NeMo RL is not importable
    TOKEN_LEVEL = "token_level"
    SEQUENCE_LEVEL = "sequence_level"


class _LossInputType(enum.Enum):
    LOGPROB = "logprob"


@functools.cache
def _nemo_rl_interfaces() -> Any | None:
    """NeMo RL's loss interfaces module, or ``None`` when NeMo RL is not installed (an installed but
    broken NeMo RL raises, rather than silently falling back to look-alike enums)."""
    if importlib.util.find_spec("nemo_rl") is None:
        return None
    try:
        from nemo_rl.algorithms.loss import interfaces
    except ModuleNotFoundError as exc:
        if exc.name != "nemo_rl.algorithms.loss":
            raise
        from nemo_rl.algorithms import interfaces  # type: ignore[no-redef]  # NeMo RL <= 0.5
    return interfaces


class NemoRLMOPDLoss:
    """NeMo RL face of :func:`cascade_plugins.losses.mopd.mopd_loss`."""

    def __init__(
        self,
        options: MOPDOptions | Mapping[str, Any] | None = None,
        *,
        teacher_logprobs_key: str = "teacher_logprobs",
        generation_logprobs_key: str = "generation_logprobs",
        outcome_advantages_key: str = "advantages",
        use_prev_logprobs: bool = False,
    ) -> None:
        self.options = options if isinstance(options, MOPDOptions) else MOPDOptions.model_validate(options or {})
        self.teacher_logprobs_key = teacher_logprobs_key
        self.generation_logprobs_key = generation_logprobs_key
        self.outcome_advantages_key = outcome_advantages_key
        #: take the advantage and the ratio from ``prev_logprobs`` (a separate no-grad pass, as
        #: upstream's OPD estimator does) instead of the detached ``next_token_logprobs``
        self.use_prev_logprobs = use_prev_logprobs

    # -- the protocol's attributes, resolved against the NeMo RL of the running process ------

    @property
    def loss_type(self) -> Any:
        types = _nemo_rl_interfaces()
        enum_type = types.LossType if types is not None else _LossType
        return enum_type.SEQUENCE_LEVEL if self.options.normalization == "sequence" else enum_type.TOKEN_LEVEL

    @property
    def input_type(self) -> Any:
        types = _nemo_rl_interfaces()
        return (types.LossInputType if types is not None else _LossInputType).LOGPROB

    @property
    def metric_normalizations(self) -> dict[str, Any]:
        """Per metric, the global count it was divided by (NeMo RL's ``MetricNormalizer``)."""
        loss_normalizer = "sequences" if self.options.normalization == "sequence" else "tokens"
        names = {**MOPDMetrics.normalizers(loss_normalizer), "num_valid_samples": "none"}
        types = _nemo_rl_interfaces()
        normalizer = getattr(types, "MetricNormalizer", None)
        if normalizer is None:
            return names
        return {metric: normalizer(kind) for metric, kind in names.items()}

    # -- the call ------------------------------------------------------------------------------

    def _column(self, data: Mapping[str, Any], key: str) -> torch.Tensor:
        if key not in data:
            raise KeyError(
                f"the MOPD loss needs batch key {key!r} ([B, S] per-token log-probs); the batch has: "
                f"{', '.join(sorted(data))}"
            )
        return data[key][:, 1:]

    def __call__(
        self,
        next_token_logprobs: torch.Tensor,
        data: Mapping[str, Any],
        global_valid_seqs: torch.Tensor | float,
        global_valid_toks: torch.Tensor | float,
        **_: Any,
    ) -> tuple[torch.Tensor, dict[str, float]]:
        token_mask = data["token_mask"][:, 1:]
        sample_mask = data["sample_mask"]
        mask = (token_mask * sample_mask.unsqueeze(-1)) != 0
        outcome = None
        if self.options.outcome_weight != 0:
            outcome = self._column(data, self.outcome_advantages_key)
        out = mopd_loss(
            next_token_logprobs,
            self._column(data, self.generation_logprobs_key) if self.options.importance_sampling != "none" else None,
            self._column(data, self.teacher_logprobs_key),
            mask,
            self.options,
            num_sequences=global_valid_seqs,
            num_tokens=global_valid_toks,
            outcome_advantages=outcome,
            proximal_logprobs=self._column(data, "prev_logprobs") if self.use_prev_logprobs else None,
        )
        metrics = out.metrics.as_dict()
        # NeMo RL's policy workers read this key to skip empty micro-batches.
        metrics["num_valid_samples"] = float(sample_mask.sum().item())
        return out.loss, metrics

    def __repr__(self) -> str:
        return (
            f"NemoRLMOPDLoss({self.options!r}, teacher_logprobs_key={self.teacher_logprobs_key!r}, "
            f"use_prev_logprobs={self.use_prev_logprobs})"
        )
