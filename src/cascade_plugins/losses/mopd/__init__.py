"""Multi-Domain On-Policy Distillation (MOPD) losses, torch only.

The sampled-token loss of Nemotron-Cascade 2 (Eq. 2-4) on per-token tensors ``[B, T]``::

    from cascade_plugins.losses.mopd import MOPDOptions, mopd_loss

    out = mopd_loss(
        student_logprobs,      # [B, T] log pi_train(y_t), training engine, WITH grad
        inference_logprobs,    # [B, T] log pi_inf(y_t), the sampler's log-probs of the same tokens
        teacher_logprobs,      # [B, T] log pi_teacher(y_t), the routed teacher
        mask,                  # [B, T] valid (response) tokens, bool or 0/1
        MOPDOptions(),         # paper defaults: IcePop [0.5, 2.0], per-sequence mean
        num_sequences=None,    # global counts over all micro-batches / ranks (optional)
        num_tokens=None,
    )
    out.loss.backward()
    out.metrics.as_dict()      # loss, reverse_kl, is_oob_fraction, advantage_abs_mean, valid_tokens, ...

Position ``t`` of all four tensors refers to the same sampled token. With the global counts of the
optimizer step, the micro-batch losses (and the token-averaged metrics) add up to the full-batch
values. :class:`MOPDLoss` (registered as ``mopd``) binds the options.

The top-k variant (registered as ``mopd_topk``): :func:`topk_reverse_kl_loss` on ``[B, T, k]``
student/teacher log-probs of the teacher's top-k tokens, with :func:`gather_student_logprobs` to
get them from full logits without materializing another ``[B, T, V]`` tensor.

:class:`TeacherRouter` maps each sample's domain to its teacher checkpoint.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve lazily (PEP 562): importing the package (e.g. for plugin registration, or the
# torch-free router) does not import torch.
_EXPORTS = {
    "MOPDLoss": "core",
    "MOPDOutput": "core",
    "mopd_loss": "core",
    "MOPDMetrics": "metrics",
    "TopKMetrics": "metrics",
    "MOPDOptions": "options",
    "TopKMOPDOptions": "options",
    "MissingTeacherRouteError": "router",
    "TeacherRouter": "router",
    "TeacherRoutingConfig": "router",
    "TopKMOPDLoss": "topk",
    "TopKOutput": "topk",
    "gather_student_logprobs": "topk",
    "topk_reverse_kl_loss": "topk",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = [
    "MOPDLoss",
    "MOPDMetrics",
    "MOPDOptions",
    "MOPDOutput",
    "MissingTeacherRouteError",
    "TeacherRouter",
    "TeacherRoutingConfig",
    "TopKMOPDLoss",
    "TopKMOPDOptions",
    "TopKMetrics",
    "TopKOutput",
    "gather_student_logprobs",
    "mopd_loss",
    "topk_reverse_kl_loss",
]
