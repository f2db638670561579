"""Options of the MOPD losses, validated with pydantic (unknown keys are errors)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Normalization = Literal["sequence", "token"]
ImportanceSampling = Literal["icepop", "tis", "none"]


class MOPDOptions(BaseModel):
    """Options of the sampled-token MOPD loss (Nemotron-Cascade 2, Eq. 2-4).

    The defaults are the paper's: IcePop band ``[0.5, 2.0]``, per-sequence normalization, no
    advantage clip, no outcome-reward mixing.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: ``sequence``: mean over each sequence's valid tokens, then mean over sequences (Eq. 4);
    #: ``token``: one mean over every valid token of the batch.
    normalization: Normalization = "sequence"
    #: How the train/inference ratio ``r_t = pi_train / pi_inf`` weighs a token:
    #: ``icepop`` keeps ``r_t`` inside ``[importance_ratio_min, importance_ratio_max]`` and drops the
    #: token outside it (weight 0); ``tis`` clamps ``r_t`` into the band; ``none`` uses weight 1.
    importance_sampling: ImportanceSampling = "icepop"
    importance_ratio_min: float = Field(default=0.5, ge=0.0)
    importance_ratio_max: float = Field(default=2.0, gt=0.0)
    #: Clip the distillation advantage to ``[-advantage_clip, advantage_clip]`` (``None``: off).
    advantage_clip: float | None = Field(default=None, gt=0.0)
    #: MiMo's ``alpha``: the advantage becomes ``a_t + alpha * A_ORM`` with group-normalized outcome
    #: advantages given per sequence (or per token). ``0`` is pure distillation (the paper).
    outcome_weight: float = 0.0

    @model_validator(mode="after")
    def _band_is_ordered(self) -> MOPDOptions:
        if self.importance_ratio_min > self.importance_ratio_max:
            raise ValueError(
                f"importance_ratio_min ({self.importance_ratio_min}) must not exceed "
                f"importance_ratio_max ({self.importance_ratio_max})"
            )
        return self


class TopKMOPDOptions(BaseModel):
    """Options of the top-k reverse-KL variant (teacher top-k support, truncation-corrected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    normalization: Normalization = "sequence"
    #: Tokens per chunk when gathering student log-probs from full logits; bounds the temporary
    #: memory to ``chunk_size x vocab`` instead of ``B x T x vocab``.
    chunk_size: int = Field(default=1024, gt=0)
