"""The NeMo RL face of the MOPD loss, driven with a plain dict batch in NeMo RL's layout."""

from __future__ import annotations

import pickle

import pytest
import torch

from cascade_plugins.backends.nemo_rl.mopd_loss import NemoRLMOPDLoss
from cascade_plugins.losses.mopd import MOPDOptions, mopd_loss


def nemo_batch(batch: int = 6, seq: int = 9, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """A batch like NeMo RL's train_data: [B, S] per-token tensors aligned with input_ids (position 0
    is a dummy), prompt tokens masked out, one row disabled by sample_mask; plus next-token
    log-probs [B, S-1] as the policy forward returns them."""
    gen = torch.Generator().manual_seed(seed)
    token_mask = torch.zeros(batch, seq)
    for row in range(batch):
        prompt = 2 + row % 3
        length = min(seq, prompt + 1 + (row * 2) % (seq - prompt))
        token_mask[row, prompt:length] = 1.0
    sample_mask = torch.ones(batch)
    sample_mask[3] = 0.0

    def per_token(scale: float = 3.0) -> torch.Tensor:
        values = -torch.rand(batch, seq, generator=gen, dtype=torch.float64) * scale
        values[:, 0] = 0.0
        return values

    next_token_logprobs = per_token()[:, 1:]
    generation = torch.zeros(batch, seq, dtype=torch.float64)
    generation[:, 1:] = next_token_logprobs + torch.randn(batch, seq - 1, generator=gen, dtype=torch.float64) * 0.5
    data = {
        "input_ids": torch.randint(0, 100, (batch, seq), generator=gen),
        "token_mask": token_mask,
        "sample_mask": sample_mask,
        "generation_logprobs": generation,
        "teacher_logprobs": per_token(),
        "prev_logprobs": per_token(),
        "advantages": per_token(1.0),
    }
    return data, next_token_logprobs


def counts(data: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """NeMo RL's global counts: sum of sample_mask, and of token_mask[:, 1:] * sample_mask."""
    return data["sample_mask"].sum(), (data["token_mask"][:, 1:] * data["sample_mask"].unsqueeze(-1)).sum()


@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_equals_the_core_on_sliced_tensors(normalization: str) -> None:
    data, next_lp = nemo_batch()
    gvs, gvt = counts(data)
    loss_fn = NemoRLMOPDLoss({"normalization": normalization})
    leaf = next_lp.clone().requires_grad_(True)
    loss, metrics = loss_fn(leaf, data, gvs, gvt)
    loss.backward()

    mask = (data["token_mask"][:, 1:] * data["sample_mask"][:, None]).bool()
    core_leaf = next_lp.clone().requires_grad_(True)
    core = mopd_loss(
        core_leaf,
        data["generation_logprobs"][:, 1:],
        data["teacher_logprobs"][:, 1:],
        mask,
        MOPDOptions(normalization=normalization),
        num_sequences=gvs,
        num_tokens=gvt,
    )
    core.loss.backward()
    torch.testing.assert_close(loss, core.loss, rtol=0, atol=0)
    assert leaf.grad is not None and core_leaf.grad is not None
    torch.testing.assert_close(leaf.grad, core_leaf.grad, rtol=0, atol=0)
    assert leaf.grad[3].abs().sum() == 0  # the row disabled by sample_mask
    assert metrics["num_valid_samples"] == 5.0
    assert metrics["valid_tokens"] == float(gvt)
    assert all(isinstance(v, float) for v in metrics.values())
    assert loss_fn.loss_type.value == ("sequence_level" if normalization == "sequence" else "token_level")
    assert loss_fn.input_type.value == "logprob"


def test_micro_batches_with_the_global_counts_add_up() -> None:
    data, next_lp = nemo_batch(batch=8, seed=1)
    gvs, gvt = counts(data)
    loss_fn = NemoRLMOPDLoss()
    full, full_metrics = loss_fn(next_lp, data, gvs, gvt)
    parts = [
        loss_fn(next_lp[rows], {k: v[rows] for k, v in data.items()}, gvs, gvt)
        for rows in (slice(0, 3), slice(3, 5), slice(5, 8))
    ]
    torch.testing.assert_close(sum(p[0] for p in parts), full, rtol=1e-12, atol=0)
    for key in ("loss", "reverse_kl", "is_oob_fraction", "advantage_abs_mean", "valid_tokens", "num_valid_samples"):
        assert sum(p[1][key] for p in parts) == pytest.approx(full_metrics[key], rel=1e-12), key


def test_prev_logprobs_and_outcome_advantages_are_read_when_asked() -> None:
    data, next_lp = nemo_batch(seed=2)
    gvs, gvt = counts(data)
    mask = (data["token_mask"][:, 1:] * data["sample_mask"][:, None]).bool()
    options = MOPDOptions(outcome_weight=0.2)
    ours, _ = NemoRLMOPDLoss(options, use_prev_logprobs=True)(next_lp, data, gvs, gvt)
    expected = mopd_loss(
        next_lp,
        data["generation_logprobs"][:, 1:],
        data["teacher_logprobs"][:, 1:],
        mask,
        options,
        num_sequences=gvs,
        num_tokens=gvt,
        outcome_advantages=data["advantages"][:, 1:],
        proximal_logprobs=data["prev_logprobs"][:, 1:],
    )
    torch.testing.assert_close(ours, expected.loss, rtol=0, atol=0)
    without_prev, _ = NemoRLMOPDLoss(options)(next_lp, data, gvs, gvt)
    assert float(without_prev) != pytest.approx(float(ours))


def test_missing_batch_key_names_it_and_the_available_keys() -> None:
    data, next_lp = nemo_batch()
    del data["teacher_logprobs"]
    gvs, gvt = counts(data)
    with pytest.raises(KeyError, match=r"'teacher_logprobs'.*advantages, generation_logprobs, input_ids"):
        NemoRLMOPDLoss()(next_lp, data, gvs, gvt)
    data["teacher_reference_logprobs"] = data["prev_logprobs"]
    loss, _ = NemoRLMOPDLoss(teacher_logprobs_key="teacher_reference_logprobs")(next_lp, data, gvs, gvt)
    assert torch.isfinite(loss)


def test_pickles_like_a_loss_sent_to_policy_workers() -> None:
    data, next_lp = nemo_batch(seed=3)
    gvs, gvt = counts(data)
    loss_fn = NemoRLMOPDLoss({"importance_ratio_min": 0.8}, teacher_logprobs_key="teacher_logprobs")
    clone = pickle.loads(pickle.dumps(loss_fn))
    assert clone.options == loss_fn.options
    torch.testing.assert_close(clone(next_lp, data, gvs, gvt)[0], loss_fn(next_lp, data, gvs, gvt)[0])


def test_metric_normalizations_cover_every_returned_metric() -> None:
    data, next_lp = nemo_batch()
    gvs, gvt = counts(data)
    for normalization, loss_kind in (("sequence", "sequences"), ("token", "tokens")):
        loss_fn = NemoRLMOPDLoss({"normalization": normalization})
        _, metrics = loss_fn(next_lp, data, gvs, gvt)
        normalizers = loss_fn.metric_normalizations
        assert set(normalizers) == set(metrics)
        values = {k: getattr(v, "value", v) for k, v in normalizers.items()}
        assert values["loss"] == loss_kind
        assert values["reverse_kl"] == "tokens"
        assert values["num_valid_samples"] == "none"
