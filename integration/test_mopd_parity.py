"""Parity of our MOPD loss with NeMo RL's own MOPD path on identical inputs.

Upstream computes MOPD as ``OPDAdvantageEstimator`` advantages ``(teacher - prev_logprobs) * mask``
fed to ``ClippedPGLossFn`` configured as REINFORCE (``disable_ppo_ratio``) with ICE-POP truncated
importance sampling. With sequence-level normalization and the band [0.5, 2.0] that is Cascade 2's
Eq. 4, which our ``NemoRLMOPDLoss`` computes directly.

Expected differences, all below float32 rounding here: upstream's ``masked_mean`` adds 1e-8 to
every denominator, and it takes the advantage and the ratio from ``prev_logprobs`` (a separate
no-grad forward) while our default takes them from the detached ``next_token_logprobs`` (equal in
strictly on-policy training; ``use_prev_logprobs=True`` reads ``prev_logprobs`` like upstream).
"""

from __future__ import annotations

import importlib.util
import math
import sys
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from cascade_plugins.backends.nemo_rl.mopd_loss import NemoRLMOPDLoss

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("nemo_rl") is None, reason="NeMo RL is not importable in this Python"
)


@pytest.fixture(scope="module")
def upstream() -> SimpleNamespace:
    if sys.version_info < (3, 12):  # NeMo RL's pydantic configs need this below 3.12
        import typing

        import typing_extensions

        typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]
    from nemo_rl.algorithms.advantage_estimator import OPDAdvantageEstimator
    from nemo_rl.algorithms.loss import ClippedPGLossConfig, ClippedPGLossFn
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    return SimpleNamespace(
        estimator=OPDAdvantageEstimator,
        config=ClippedPGLossConfig,
        loss=ClippedPGLossFn,
        batch=BatchedDataDict,
    )


def make_batch(seed: int, batch: int = 8, seq: int = 24) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """NeMo RL's train_data layout in float32: [B, S] tensors aligned with input_ids (position 0 a
    dummy), prompts masked out, a row dropped by sample_mask, a row with a single response token,
    tokens whose ratio is exactly 0.5 or 2.0, and tokens far outside the band."""
    gen = torch.Generator().manual_seed(seed)
    token_mask = torch.zeros(batch, seq)
    for row in range(batch):
        prompt = 3 + row % 4
        token_mask[row, prompt : prompt + 1 + (row * 5) % (seq - prompt)] = 1.0
    token_mask[1] = 0.0
    token_mask[1, 10] = 1.0  # one response token
    sample_mask = torch.ones(batch)
    sample_mask[2] = 0.0
    next_token_logprobs = -torch.rand(batch, seq - 1, generator=gen) * 4
    next_token_logprobs[0, :4] = torch.tensor([-0.5, -1.0, -0.125, -0.25])
    generation = next_token_logprobs + torch.randn(batch, seq - 1, generator=gen) * 0.4
    generation[0, :2] = next_token_logprobs[0, :2] - math.log(0.5)  # ratio exactly 0.5
    generation[0, 2:4] = next_token_logprobs[0, 2:4] - math.log(2.0)  # ratio exactly 2.0
    assert torch.all(torch.exp(next_token_logprobs[0, :2] - generation[0, :2]) == 0.5)
    assert torch.all(torch.exp(next_token_logprobs[0, 2:4] - generation[0, 2:4]) == 2.0)
    token_mask[0, 1:5] = 1.0

    def aligned(values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(batch, seq)
        out[:, 1:] = values
        return out

    data = {
        "input_ids": torch.randint(0, 1000, (batch, seq), generator=gen),
        "token_mask": token_mask,
        "sample_mask": sample_mask,
        "generation_logprobs": aligned(generation),
        "prev_logprobs": aligned(next_token_logprobs),
        "teacher_logprobs": aligned(-torch.rand(batch, seq - 1, generator=gen) * 4),
        "reference_policy_logprobs": aligned(next_token_logprobs),
    }
    return data, next_token_logprobs


def global_counts(data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return data["sample_mask"].sum(), (data["token_mask"][:, 1:] * data["sample_mask"].unsqueeze(-1)).sum()


def upstream_mopd(
    upstream: SimpleNamespace,
    data: dict[str, torch.Tensor],
    next_lp: torch.Tensor,
    token_level: bool,
    gvs: torch.Tensor,
    gvt: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    mask = data["token_mask"] * data["sample_mask"].unsqueeze(-1)
    advantages = upstream.estimator({"name": "opd"}, {}).compute_advantage(
        prompt_ids=None,
        rewards=None,
        mask=mask,
        teacher_logprobs=data["teacher_logprobs"],
        prev_logprobs=data["prev_logprobs"],
    )
    config = upstream.config(
        disable_ppo_ratio=True,
        token_level_loss=token_level,
        reference_policy_kl_penalty=0.0,
        use_importance_sampling_correction=True,
        truncated_importance_sampling_type="icepop",
        truncated_importance_sampling_ratio_min=0.5,
        truncated_importance_sampling_ratio=2.0,
    )
    leaf = next_lp.clone().requires_grad_(True)
    loss, metrics = upstream.loss(config)(
        next_token_logprobs=leaf,
        data=upstream.batch({**data, "advantages": advantages}),
        global_valid_seqs=gvs,
        global_valid_toks=gvt,
    )
    loss.backward()
    assert leaf.grad is not None
    return loss.detach(), leaf.grad, metrics


def ours(
    data: dict[str, torch.Tensor],
    next_lp: torch.Tensor,
    token_level: bool,
    gvs: torch.Tensor,
    gvt: torch.Tensor,
    use_prev: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    loss_fn = NemoRLMOPDLoss({"normalization": "token" if token_level else "sequence"}, use_prev_logprobs=use_prev)
    leaf = next_lp.clone().requires_grad_(True)
    loss, metrics = loss_fn(leaf, data, gvs, gvt)
    loss.backward()
    assert leaf.grad is not None
    return loss.detach(), leaf.grad, metrics


@pytest.mark.parametrize("token_level", [False, True], ids=["sequence-level", "token-level"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_gradient_and_metrics_equal_upstream(upstream: SimpleNamespace, token_level: bool, seed: int) -> None:
    data, next_lp = make_batch(seed)
    gvs, gvt = global_counts(data)
    up_loss, up_grad, up_metrics = upstream_mopd(upstream, data, next_lp, token_level, gvs, gvt)
    our_loss, our_grad, our_metrics = ours(data, next_lp, token_level, gvs, gvt)

    torch.testing.assert_close(our_loss, up_loss, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(our_grad, up_grad, rtol=1e-6, atol=1e-9)
    assert our_metrics["is_oob_fraction"] == pytest.approx(up_metrics["is_oob_ratio"], rel=1e-6)
    assert our_metrics["num_valid_samples"] == up_metrics["num_valid_samples"]
    assert 0 < our_metrics["is_oob_fraction"] < 1  # both kept and dropped tokens are exercised
    # the exact-bound tokens are kept by both (their gradient is non-zero)
    assert torch.all(up_grad[0, :4] != 0) and torch.all(our_grad[0, :4] != 0)


def test_micro_batches_match_upstream_with_the_same_global_counts(upstream: SimpleNamespace) -> None:
    data, next_lp = make_batch(3)
    gvs, gvt = global_counts(data)
    total_up = total_ours = torch.zeros(())
    for rows in (slice(0, 3), slice(3, 8)):
        part = {k: v[rows] for k, v in data.items()}
        total_up = total_up + upstream_mopd(upstream, part, next_lp[rows], False, gvs, gvt)[0]
        total_ours = total_ours + ours(part, next_lp[rows], False, gvs, gvt)[0]
    torch.testing.assert_close(total_ours, total_up, rtol=1e-6, atol=1e-7)
    full_up = upstream_mopd(upstream, data, next_lp, False, gvs, gvt)[0]
    torch.testing.assert_close(total_ours, full_up, rtol=1e-6, atol=1e-7)


def test_off_policy_prev_logprobs_match_upstream_with_use_prev_logprobs(upstream: SimpleNamespace) -> None:
    """When prev_logprobs differ from the current log-probs (after an earlier optimizer step),
    upstream uses prev for both the advantage and the ratio; so does use_prev_logprobs=True."""
    data, next_lp = make_batch(4)
    data["prev_logprobs"][:, 1:] = next_lp + 0.1 * torch.randn(
        next_lp.shape, generator=torch.Generator().manual_seed(5)
    )
    gvs, gvt = global_counts(data)
    up_loss, up_grad, _ = upstream_mopd(upstream, data, next_lp, False, gvs, gvt)
    our_loss, our_grad, _ = ours(data, next_lp, False, gvs, gvt, use_prev=True)
    torch.testing.assert_close(our_loss, up_loss, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(our_grad, up_grad, rtol=1e-6, atol=1e-9)
    default_loss = ours(data, next_lp, False, gvs, gvt)[0]
    assert not torch.allclose(default_loss, up_loss)  # the option matters off-policy


def test_our_loss_type_and_input_type_are_upstream_enums() -> None:
    from nemo_rl.algorithms.loss.interfaces import LossInputType, LossType

    loss_fn = NemoRLMOPDLoss()
    assert loss_fn.input_type is LossInputType.LOGPROB
    assert loss_fn.loss_type is LossType.SEQUENCE_LEVEL
    assert NemoRLMOPDLoss({"normalization": "token"}).loss_type is LossType.TOKEN_LEVEL
