"""The sampled-token MOPD loss on per-token tensors ``[B, T]`` (Nemotron-Cascade 2, Eq. 2-4).

    a_t = sg[log pi_teacher(y_t) - log pi_train(y_t)]                       (2)
    r_t = pi_train(y_t) / pi_inf(y_t),  w_t = sg[r_t] * 1[lo <= r_t <= hi]  (3)
    L   = -mean_seq (1/|V(y)|) sum_{t in V(y)} w_t a_t log pi_train(y_t)    (4)

Position ``t`` of every tensor holds the log-prob of the token sampled at ``t``; ``mask`` marks
the valid (response) tokens. See :func:`mopd_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cascade_plugins.interfaces import LossInput
from cascade_plugins.losses.mopd.metrics import MOPDMetrics
from cascade_plugins.losses.mopd.normalization import Count, make_normalizer
from cascade_plugins.losses.mopd.options import MOPDOptions

_DEFAULT_OPTIONS = MOPDOptions()


@dataclass(frozen=True, slots=True)
class MOPDOutput:
    #: scalar loss to minimize (``loss.backward()``)
    loss: torch.Tensor
    metrics: MOPDMetrics


def _check_shapes(reference: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    if reference.dim() != 2:
        raise ValueError(f"student_logprobs must be [B, T], got shape {tuple(reference.shape)}")
    for name, tensor in tensors.items():
        if tensor is not None and tensor.shape != reference.shape:
            raise ValueError(
                f"{name} has shape {tuple(tensor.shape)}, expected {tuple(reference.shape)} "
                "(the shape of student_logprobs)"
            )


def _outcome_term(outcome_advantages: torch.Tensor, batch_shape: torch.Size) -> torch.Tensor:
    if outcome_advantages.dim() == 1 and outcome_advantages.shape[0] == batch_shape[0]:
        return outcome_advantages.unsqueeze(-1)
    if outcome_advantages.shape == batch_shape:
        return outcome_advantages
    raise ValueError(
        f"outcome_advantages must be [B] or [B, T] = {tuple(batch_shape)}, got {tuple(outcome_advantages.shape)}"
    )


def _raise_non_finite(coefficients: torch.Tensor, teacher: torch.Tensor, train: torch.Tensor) -> None:
    bad = ~torch.isfinite(coefficients)
    where = bad.nonzero()[:3].tolist()
    teacher_bad = int((bad & ~torch.isfinite(teacher)).sum())
    train_bad = int((bad & ~torch.isfinite(train)).sum())
    raise ValueError(
        f"the MOPD advantage is not finite at {int(bad.sum())} valid token(s) (first [b, t]: {where}); "
        f"non-finite teacher_logprobs at {teacher_bad}, non-finite student log-probs at {train_bad}. "
        "Mask those tokens out or fix the log-probs."
    )


def mopd_loss(
    student_logprobs: torch.Tensor,
    inference_logprobs: torch.Tensor | None,
    teacher_logprobs: torch.Tensor,
    mask: torch.Tensor,
    options: MOPDOptions | None = None,
    *,
    num_sequences: Count | None = None,
    num_tokens: Count | None = None,
    outcome_advantages: torch.Tensor | None = None,
    proximal_logprobs: torch.Tensor | None = None,
) -> MOPDOutput:
    """The MOPD loss and its metrics.

    Args:
        student_logprobs: ``[B, T]`` log pi_train of the sampled tokens, from the training engine,
            with grad. Must be finite where the token is kept.
        inference_logprobs: ``[B, T]`` log pi_inf of the same tokens from the inference engine
            (sampler); may be ``None`` only with ``importance_sampling="none"``.
        teacher_logprobs: ``[B, T]`` the routed teacher's log-probs of the same tokens.
        mask: ``[B, T]`` valid tokens (bool or 0/1).
        options: :class:`MOPDOptions` (paper defaults when omitted).
        num_sequences: global number of valid sequences of the optimizer step (all micro-batches
            and ranks); used by ``normalization="sequence"``. Default: this batch's rows with at
            least one valid token.
        num_tokens: global number of valid tokens; used by ``normalization="token"`` and for the
            token-averaged metrics. Default: this batch's valid tokens.
        outcome_advantages: ``[B]`` or ``[B, T]`` group-normalized outcome advantages ``A_ORM``,
            required when ``options.outcome_weight`` is not 0.
        proximal_logprobs: ``[B, T]`` no-grad train-engine log-probs used for the advantage and
            the ratio instead of ``student_logprobs.detach()`` (NeMo RL's ``prev_logprobs``;
            equal to them in strictly on-policy training).

    Computation happens in float32 (float64 if the student log-probs are float64).
    """
    opts = options or _DEFAULT_OPTIONS
    _check_shapes(
        student_logprobs,
        inference_logprobs=inference_logprobs,
        teacher_logprobs=teacher_logprobs,
        mask=mask,
        proximal_logprobs=proximal_logprobs,
    )
    if inference_logprobs is None and opts.importance_sampling != "none":
        raise ValueError(f"inference_logprobs is required with importance_sampling={opts.importance_sampling!r}")
    if opts.outcome_weight != 0 and outcome_advantages is None:
        raise ValueError(f"outcome_weight={opts.outcome_weight} needs outcome_advantages")

    dtype = torch.promote_types(student_logprobs.dtype, torch.float32)
    valid = mask if mask.dtype == torch.bool else mask != 0
    norm = make_normalizer(valid, opts.normalization, dtype, num_sequences, num_tokens)

    with torch.no_grad():
        train = (student_logprobs if proximal_logprobs is None else proximal_logprobs).detach().to(dtype)
        teacher = teacher_logprobs.to(dtype)
        distill_advantage = teacher - train
        advantage = distill_advantage
        if opts.advantage_clip is not None:
            advantage = advantage.clamp(-opts.advantage_clip, opts.advantage_clip)
        if opts.outcome_weight != 0:
            assert outcome_advantages is not None
            outcome = _outcome_term(outcome_advantages, student_logprobs.shape).to(dtype)
            advantage = advantage + opts.outcome_weight * outcome

        if opts.importance_sampling == "none":
            kept = valid
            in_band_count = norm.local_tokens
            weighted = advantage
        else:
            assert inference_logprobs is not None
            ratio = torch.exp(train - inference_logprobs.to(dtype))
            in_band = valid & (ratio >= opts.importance_ratio_min) & (ratio <= opts.importance_ratio_max)
            in_band_count = in_band.sum(dtype=dtype)
            if opts.importance_sampling == "icepop":
                kept = in_band
                weighted = ratio * advantage
            else:  # tis: clamp into the band
                kept = valid
                weighted = ratio.clamp(opts.importance_ratio_min, opts.importance_ratio_max) * advantage
        coefficients = torch.where(kept, weighted, 0.0)

    def reduce(student: torch.Tensor) -> torch.Tensor:
        products = coefficients * student
        if norm.row_scale is None:
            return -products.sum() / norm.denominator
        return -(products.sum(dim=-1) * norm.row_scale).sum() / norm.denominator

    loss = reduce(student_logprobs.to(dtype))
    if not bool(torch.isfinite(loss)):
        # Slow path: log-probs of dropped or masked tokens may be -inf (0 * -inf = nan); zero them.
        if not bool(torch.isfinite(coefficients).all()):
            _raise_non_finite(coefficients, teacher, train)
        loss = reduce(torch.where(kept, student_logprobs.to(dtype), 0.0))
        if not bool(torch.isfinite(loss)):
            raise ValueError("student_logprobs is not finite at a kept token (its ratio is inside the band)")

    with torch.no_grad():
        per_token = norm.token_denominator
        masked_distill = torch.where(valid, distill_advantage, 0.0)
        masked_advantage = masked_distill if advantage is distill_advantage else torch.where(valid, advantage, 0.0)
        metrics = MOPDMetrics(
            loss=loss.detach(),
            reverse_kl=-masked_distill.sum() / per_token,
            is_oob_fraction=(norm.local_tokens - in_band_count) / per_token,
            advantage_abs_mean=masked_advantage.abs().sum() / per_token,
            valid_tokens=norm.local_tokens,
            valid_sequences=norm.local_sequences,
        )
    return MOPDOutput(loss=loss, metrics=metrics)


class MOPDLoss:
    """The registered ``mopd`` loss: :func:`mopd_loss` with fixed options.

    ``MOPDLoss(normalization="token", advantage_clip=5.0)`` or ``MOPDLoss(MOPDOptions(...))``.
    """

    name = "mopd"

    def __init__(self, options: MOPDOptions | None = None, **option_values: object) -> None:
        if options is not None and option_values:
            raise TypeError("pass either an MOPDOptions object or keyword options, not both")
        self.options = options if options is not None else MOPDOptions.model_validate(option_values)

    @property
    def inputs(self) -> frozenset[LossInput]:
        """The policy's and the routed teacher's log-probs of the sampled tokens; the sampler's with
        importance sampling on; outcome advantages with ``outcome_weight != 0``."""
        needs = {LossInput.POLICY_LOGPROBS, LossInput.TEACHER_LOGPROBS}
        if self.options.importance_sampling != "none":
            needs.add(LossInput.INFERENCE_LOGPROBS)
        if self.options.outcome_weight != 0:
            needs.add(LossInput.OUTCOME_ADVANTAGES)
        return frozenset(needs)

    def __call__(
        self,
        student_logprobs: torch.Tensor,
        inference_logprobs: torch.Tensor | None,
        teacher_logprobs: torch.Tensor,
        mask: torch.Tensor,
        *,
        num_sequences: Count | None = None,
        num_tokens: Count | None = None,
        outcome_advantages: torch.Tensor | None = None,
        proximal_logprobs: torch.Tensor | None = None,
    ) -> MOPDOutput:
        return mopd_loss(
            student_logprobs,
            inference_logprobs,
            teacher_logprobs,
            mask,
            self.options,
            num_sequences=num_sequences,
            num_tokens=num_tokens,
            outcome_advantages=outcome_advantages,
            proximal_logprobs=proximal_logprobs,
        )

    def __repr__(self) -> str:
        return f"MOPDLoss({self.options!r})"
