"""The losses this backend runs, resolved by name in the plan's plugin registry (pure; no NeMo RL).

A ``mopd`` stage trains inside upstream ``grpo_train``: the routed teachers' log-probs of the
sampled tokens become upstream ``OPDAdvantageEstimator`` advantages (:mod:`.mopd_runtime`), and
upstream's ``ClippedPGLossFn`` applies the loss. So the stage's loss gets what :data:`MOPD_FEEDS`
lists, and it must be one that ``ClippedPGLossFn`` keys can express: a loss whose options are
:class:`~cascade_plugins.losses.mopd.MOPDOptions` (the sampled-token MOPD loss, REINFORCE with
ICE-POP). :func:`realise_loss` refuses anything else with the key it is about, at plan time (the
backend's ``check``) and again in the stage process (the stage runner builds the same loss).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from cascade_plugins.config import SectionError, SectionIssue
from cascade_plugins.interfaces import LossInput, PluginLookup, loss_feed_problems

#: the loss a ``mopd`` stage uses when it names none
DEFAULT_LOSS = "mopd"
#: what the synchronous MOPD path hands a loss: the student's (``prev_logprobs``), the sampler's
#: (``generation_logprobs``) and the routed teachers' log-probs, and GRPO outcome advantages
MOPD_FEEDS = frozenset({
    LossInput.POLICY_LOGPROBS, LossInput.INFERENCE_LOGPROBS, LossInput.TEACHER_LOGPROBS,
    LossInput.OUTCOME_ADVANTAGES,
})


@dataclass(frozen=True)
class NemoRLLoss:
    """A stage's loss as NeMo RL runs it."""

    name: str
    options: dict[str, Any]
    #: ``loss_fn`` / ``grpo`` keys of the stage config, set last (they are what the options say)
    config: dict[str, Any] = field(default_factory=dict)
    #: the multiple of the GRPO outcome advantage added to the distillation advantage
    outcome_weight: float = 0.0


def mopd_loss_config(options: Any) -> dict[str, Any]:
    """MOPD loss options (:class:`~cascade_plugins.losses.mopd.MOPDOptions` or their mapping) as
    NeMo RL keys: upstream's ``ClippedPGLossFn`` as REINFORCE (``disable_ppo_ratio``) with the
    truncated importance weight of Cascade 2 Eq. 3 and its per-sequence mean (Eq. 4), on the
    advantages of upstream's ``OPDAdvantageEstimator`` (:mod:`.mopd_runtime`)."""
    from cascade_plugins.losses.mopd.options import MOPDOptions

    if isinstance(options, MOPDOptions):
        o = options
    else:
        try:
            o = MOPDOptions.model_validate(dict(options))
        except ValidationError as exc:
            raise SectionError([
                SectionIssue(("loss", "options", *(p for p in e["loc"] if isinstance(p, str | int))), str(e["msg"]))
                for e in exc.errors()
            ]) from None
    sampling = o.importance_sampling != "none"
    loss_fn = {
        "disable_ppo_ratio": True,
        "token_level_loss": o.normalization == "token",
        "force_on_policy_ratio": False,  # the advantage needs prev_logprobs
        "use_importance_sampling_correction": sampling,
        "truncated_importance_sampling_type": o.importance_sampling if sampling else None,
        "truncated_importance_sampling_ratio_min": o.importance_ratio_min if sampling else None,
        "truncated_importance_sampling_ratio": o.importance_ratio_max if sampling else None,
        "sequence_level_importance_ratios": False,
        "use_cispo": False,
    }
    clip = o.advantage_clip
    grpo = {"advantage_clip_low": -clip if clip else None, "advantage_clip_high": clip}
    return {"loss_fn": loss_fn, "grpo": grpo}


def realise_loss(
    name: str | None, options: Mapping[str, Any] | None, registry: PluginLookup, stage: str = ""
) -> NemoRLLoss:
    """Build loss ``name`` (default ``mopd``) from ``registry`` and say how NeMo RL runs it;
    raises :class:`SectionError` keyed at ``loss`` when it is unknown, rejects its options, needs
    an input the MOPD path does not feed, or is not one ``ClippedPGLossFn`` expresses."""
    from cascade_plugins.losses.mopd.options import MOPDOptions

    name = name or DEFAULT_LOSS
    options = dict(options or {})
    try:
        loss = registry.make_loss(name, **options)
    except KeyError as exc:  # the registry's message names the loaded losses
        raise SectionError([SectionIssue(("loss",), str(exc.args[0]) if exc.args else str(exc))]) from None
    except Exception as exc:
        raise SectionError([SectionIssue(("loss", "options"), f"loss {name!r} rejected its options: {exc}")]) from None
    unfed = loss_feed_problems(stage, name, loss, MOPD_FEEDS, "the nemo_rl backend's MOPD path")
    if unfed:
        raise SectionError([SectionIssue(p.key, p.message, p.hint) for p in unfed])
    mopd_options = getattr(loss, "options", None)
    if not isinstance(mopd_options, MOPDOptions):
        raise SectionError([SectionIssue(
            ("loss",),
            f"the nemo_rl backend runs a loss as upstream's ClippedPGLossFn on OPD advantages, which expresses "
            f"the sampled-token MOPD loss (options: MOPDOptions) only; loss {name!r} is a {type(loss).__name__}",
            f"use the {DEFAULT_LOSS!r} loss, or run this stage on another backend",
        )])
    return NemoRLLoss(name, options, mopd_loss_config(mopd_options), float(mopd_options.outcome_weight))
