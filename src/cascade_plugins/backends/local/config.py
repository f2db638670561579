"""Typed hyper-parameters and model settings of the embedded host (backend ``local``).

A stage's ``hparams`` (the cascade's shared base merged with the stage's overrides) must validate
against the model for its kind: :class:`SFTHparams`, :class:`GRPOHparams` or :class:`MOPDHparams`.
Unknown keys are errors, so a typo never silently falls back to a default. ``spec.model`` validates
against :class:`ModelConfig`. Every field is documented in ``docs/local-backend.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cascade_plugins.config import SectionError, SectionIssue, error_lines, section_error

__all__ = [
    "HPARAMS_BY_KIND",
    "GRPOHparams",
    "MOPDHparams",
    "ModelConfig",
    "SFTHparams",
    "StageHparams",
    "TokenizerConfig",
    "format_validation_error",
    "parse_hparams",
    "parse_model_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TokenizerConfig(_Strict):
    """How to build a tokenizer when the model is built from scratch (``model.path`` unset)."""

    #: ``char``: one token per character of ``alphabet`` (a BPE model without merges, built with
    #: ``tokenizers``); round-trips any text made of those characters exactly.
    type: Literal["char"] = "char"
    #: characters in the vocabulary; ``None`` = printable ASCII (space to ``~``) plus tab and newline.
    alphabet: str | None = None
    #: whole strings that are one token each besides the characters, e.g. ``["<think>", "</think>"]``
    #: (the thinking-mode tags the ``math`` and ``code`` rewards strip)
    words: list[str] = Field(default_factory=list)


class ModelConfig(_Strict):
    """The ``model:`` section of a cascade as the local host reads it.

    Either ``path`` (a local Hugging Face checkpoint directory with its tokenizer), or a tiny
    ``LlamaForCausalLM`` built from the size fields below with a locally built tokenizer.
    """

    path: str | None = None
    architecture: Literal["llama"] = "llama"
    hidden_size: int = Field(64, gt=0)
    num_hidden_layers: int = Field(2, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(256, gt=0)
    #: longest prompt + completion in tokens
    max_position_embeddings: int = Field(128, gt=0)
    tie_word_embeddings: bool = True
    tokenizer: TokenizerConfig = TokenizerConfig()
    #: ``float32`` is the only dtype that is fast and exact enough on CPU
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"

    @model_validator(mode="after")
    def _heads_divide_hidden(self) -> ModelConfig:
        if self.path is None and self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_attention_heads "
                f"({self.num_attention_heads})"
            )
        return self


class StageHparams(_Strict):
    """Settings every stage kind shares."""

    #: optimizer steps in this stage
    steps: int = Field(gt=0)
    #: peak learning rate (AdamW)
    lr: float = Field(gt=0)
    #: linear warm-up steps from ``lr * min_lr_ratio`` to ``lr`` (more than ``steps``: the peak is
    #: never reached, which lets a short test variant inherit a full run's warm-up)
    warmup_steps: int = Field(0, ge=0)
    #: after warm-up: ``constant``, ``cosine`` or ``linear`` decay to ``lr * min_lr_ratio``
    lr_schedule: Literal["constant", "cosine", "linear"] = "constant"
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    weight_decay: float = Field(0.0, ge=0)
    #: AdamW betas; the paper's RL stages use (0.9, 0.95)
    betas: tuple[float, float] = (0.9, 0.95)
    #: global grad-norm clip; ``null`` disables it
    grad_clip: float | None = Field(1.0, gt=0)
    #: domain -> relative sampling weight of its training data (default: equal weights)
    domain_weights: dict[str, float] | None = None
    #: longest completion generated (rollouts and evaluation), in tokens
    max_new_tokens: int = Field(24, gt=0)
    #: save a resumable checkpoint every N steps (0: only at the end)
    save_every: int = Field(50, ge=0)
    #: evaluate on ``spec.eval`` every N steps (0: only after the stage); evaluated checkpoints are kept
    eval_every: int = Field(0, ge=0)
    #: evaluate on at most this many rows per domain (``null``: all)
    eval_max_samples: int | None = Field(None, gt=0)
    #: prompts per batch in greedy evaluation
    eval_batch_size: int = Field(200, gt=0)
    #: resumable (non-evaluated) checkpoints to keep; older ones are deleted
    keep_last: int = Field(1, ge=1)
    #: torch intra-op threads; 1 is fastest for tiny models on a shared CPU
    num_threads: int = Field(1, ge=1)
    #: ``auto`` picks ``cuda`` when available
    device: Literal["auto", "cpu", "cuda"] = "cpu"

    @model_validator(mode="after")
    def _check_common(self) -> StageHparams:
        if self.domain_weights is not None:
            bad = {d: w for d, w in self.domain_weights.items() if not w >= 0}
            if bad:
                raise ValueError(f"domain_weights must be >= 0, got {bad}")
            if not any(self.domain_weights.values()):
                raise ValueError("domain_weights are all zero")
        b1, b2 = self.betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {self.betas}")
        return self


class SFTHparams(StageHparams):
    """Supervised fine-tuning on (prompt, answer) rows; the loss covers the answer tokens only."""

    #: sequences per optimizer step
    batch_size: int = Field(64, gt=0)


class _RolloutHparams(StageHparams):
    #: sampling temperature of rollouts
    temperature: float = Field(1.0, gt=0)
    #: nucleus sampling of rollouts (1.0: off)
    top_p: float = Field(1.0, gt=0, le=1)


class GRPOHparams(_RolloutHparams):
    """Strict on-policy GRPO: one optimizer step per rollout batch (importance ratio = 1), rewards
    normalized within each prompt's group, token-level loss, no KL term."""

    #: prompts per step (all domains of the stage together, drawn by ``domain_weights``)
    prompts_per_step: int = Field(16, gt=0)
    #: rollouts per prompt (the group size G)
    samples_per_prompt: int = Field(8, ge=2)
    #: divide advantages by the group's reward std (``false``: Dr.GRPO-style mean-centring only)
    normalize_std: bool = True
    #: ``token``: mean over all tokens of the batch (the paper); ``sequence``: per-sequence mean first
    loss_aggregation: Literal["token", "sequence"] = "token"
    #: drop groups whose rewards are all equal and draw more prompts (up to ``max_filter_draws``
    #: extra batches) to fill the step, as in DAPO's dynamic sampling
    dynamic_filtering: bool = False
    max_filter_draws: int = Field(2, ge=0)
    #: completions cut by ``max_new_tokens`` without an end token: ``penalty`` gives them
    #: ``overlong_reward``; ``filter`` leaves them out of the loss; ``none`` keeps the reward's score
    overlong: Literal["none", "penalty", "filter"] = "penalty"
    overlong_reward: float = 0.0


class MOPDHparams(_RolloutHparams):
    """Multi-domain on-policy distillation: student rollouts, per-domain teacher log-probs on the
    sampled tokens, the MOPD loss (``spec.loss``, default ``mopd``)."""

    #: prompts per step and per domain
    prompts_per_domain: int = Field(32, gt=0)
    #: rollouts per prompt (the paper: 4; 1 is "slightly more stable")
    samples_per_prompt: int = Field(1, ge=1)


HPARAMS_BY_KIND: dict[str, type[StageHparams]] = {
    "sft": SFTHparams,
    "grpo": GRPOHparams,
    "mopd": MOPDHparams,
}


def format_validation_error(error: ValidationError, prefix: str, model: type[BaseModel]) -> list[str]:
    """One line per problem, each naming its key path under ``prefix`` (``hparams.lr``); an
    unknown key gets the closest known one (``hparams.lrr: unknown key 'lrr'; did you mean 'lr'?``)."""
    return error_lines(model, error, prefix)


def parse_hparams(kind: str, hparams: Mapping[str, Any]) -> StageHparams:
    """Validate a stage's ``hparams`` for ``kind``; raises :class:`SectionError` (a ``ValueError``)
    listing every problem with its key."""
    try:
        model = HPARAMS_BY_KIND[kind]
    except KeyError:
        issue = SectionIssue(("kind",), f"the local backend runs sft, grpo and mopd stages, not {kind!r}")
        raise SectionError([issue]) from None
    try:
        return model.model_validate(dict(hparams))
    except ValidationError as exc:
        raise section_error(model, exc, "hparams") from None


def parse_model_config(model: Mapping[str, Any]) -> ModelConfig:
    """Validate ``spec.model``; raises :class:`SectionError` naming each bad key under ``model``."""
    try:
        return ModelConfig.model_validate(dict(model))
    except ValidationError as exc:
        raise section_error(ModelConfig, exc, "model") from None
