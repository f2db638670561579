"""The top-k reverse-KL variant with truncation correction, and the chunked log-prob gather."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch

from cascade_plugins.losses.mopd import TopKMOPDLoss, TopKMOPDOptions, gather_student_logprobs, topk_reverse_kl_loss


def _setup(
    batch: int, length: int, vocab: int, k: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    student_logits = torch.randn(batch, length, vocab, generator=gen, dtype=torch.float64)
    teacher_logprobs = torch.log_softmax(torch.randn(batch, length, vocab, generator=gen, dtype=torch.float64) * 2, -1)
    top_logprobs, top_indices = teacher_logprobs.topk(k, dim=-1)
    mask = torch.rand(batch, length, generator=gen) > 0.25
    mask[0] = False
    return student_logits, top_indices, top_logprobs, mask


@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_matches_the_naive_full_vocabulary_implementation(
    topk_full_vocab: Callable[..., torch.Tensor], normalization: str
) -> None:
    logits, indices, teacher_top, mask = _setup(4, 5, 50, 8, seed=0)
    teacher_top[1, 2, -2:] = -math.inf  # padded support entries are left out
    loss_fn = TopKMOPDLoss(normalization=normalization, chunk_size=3)  # chunks straddle rows

    ours_logits = logits.clone().requires_grad_(True)
    ours = loss_fn.from_logits(ours_logits, indices, teacher_top, mask)
    ours.loss.backward()
    naive_logits = logits.clone().requires_grad_(True)
    naive = topk_full_vocab(naive_logits, indices, teacher_top, mask, normalization)
    naive.backward()

    torch.testing.assert_close(ours.loss, naive, rtol=1e-12, atol=1e-14)
    assert ours_logits.grad is not None and naive_logits.grad is not None
    torch.testing.assert_close(ours_logits.grad, naive_logits.grad, rtol=1e-10, atol=1e-14)
    assert ours.loss.item() > 0


def test_gather_matches_log_softmax_and_passes_gradcheck() -> None:
    logits, indices, _, _ = _setup(2, 3, 11, 4, seed=1)
    expected = torch.log_softmax(logits, -1).gather(-1, indices)
    torch.testing.assert_close(gather_student_logprobs(logits, indices, chunk_size=4), expected, rtol=1e-14, atol=0)
    leaf = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: gather_student_logprobs(x, indices, 5), (leaf,))


def test_gather_of_low_precision_logits_returns_float32_and_a_same_dtype_gradient() -> None:
    logits, indices, _, _ = _setup(2, 3, 11, 4, seed=2)
    low = logits.to(torch.bfloat16).requires_grad_(True)
    gathered = gather_student_logprobs(low, indices)
    assert gathered.dtype == torch.float32
    gathered.sum().backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16


def test_teacher_distribution_is_the_stationary_point() -> None:
    """Student = teacher on the top-k support: zero loss and zero gradient (the correction terms
    keep the truncated teacher as the minimum)."""
    logits, _, _, mask = _setup(3, 4, 20, 5, seed=3)
    student_logprobs = torch.log_softmax(logits, -1)
    top_logprobs, top_indices = student_logprobs.topk(5, dim=-1)
    leaf = logits.clone().requires_grad_(True)
    out = TopKMOPDLoss().from_logits(leaf, top_indices, top_logprobs, mask)
    out.loss.backward()
    assert abs(float(out.loss.detach())) < 1e-15
    assert leaf.grad is not None and leaf.grad.abs().max() < 1e-15
    # without the correction terms the same point would not be stationary
    student_top = gather_student_logprobs(logits.clone().requires_grad_(True), top_indices)
    uncorrected = (student_top.exp() * (student_top - top_logprobs)).sum(-1)[mask].mean()
    (grad,) = torch.autograd.grad(uncorrected, student_top)
    assert grad.abs().max() > 1e-3


def test_micro_batches_with_global_counts_add_up() -> None:
    logits, indices, teacher_top, mask = _setup(6, 4, 16, 3, seed=4)
    student_top = gather_student_logprobs(logits, indices)
    full = topk_reverse_kl_loss(student_top, teacher_top, mask)
    sequences, tokens = int(mask.any(-1).sum()), int(mask.sum())
    parts = [
        topk_reverse_kl_loss(student_top[r], teacher_top[r], mask[r], num_sequences=sequences, num_tokens=tokens)
        for r in (slice(0, 2), slice(2, 3), slice(3, 6))
    ]
    torch.testing.assert_close(sum(p.loss for p in parts), full.loss, rtol=1e-12, atol=0)
    full_metrics = full.metrics.as_dict()
    for key in full_metrics:
        assert sum(p.metrics.as_dict()[key] for p in parts) == pytest.approx(full_metrics[key], rel=1e-12)


def test_metrics_and_errors() -> None:
    logits, indices, teacher_top, mask = _setup(3, 4, 16, 3, seed=5)
    student_top = gather_student_logprobs(logits, indices)
    out = topk_reverse_kl_loss(student_top, teacher_top, mask).metrics.as_dict()
    assert out["valid_tokens"] == int(mask.sum())
    assert out["teacher_topk_mass"] == pytest.approx(float(teacher_top.exp().sum(-1)[mask].mean()))
    assert out["student_topk_mass"] == pytest.approx(float(student_top.exp().sum(-1)[mask].mean()))
    with pytest.raises(ValueError, match=r"must both be \[B, T, k\]"):
        topk_reverse_kl_loss(student_top[..., :2], teacher_top, mask)
    with pytest.raises(ValueError, match="mask has shape"):
        topk_reverse_kl_loss(student_top, teacher_top, mask[:, :2])
    with pytest.raises(ValueError, match="disagree on the leading dims"):
        gather_student_logprobs(logits[:, :2], indices)
    with pytest.raises(ValueError, match="chunk_size"):
        TopKMOPDOptions(chunk_size=0)


def test_no_vocabulary_sized_tensor_is_kept_for_backward_besides_the_logits() -> None:
    logits, indices, teacher_top, mask = _setup(2, 6, 64, 4, seed=6)
    leaf = logits.clone().requires_grad_(True)
    saved: list[torch.Tensor] = []

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        saved.append(tensor)
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        out = TopKMOPDLoss(chunk_size=5).from_logits(leaf, indices, teacher_top, mask)
    out.loss.backward()
    vocabulary_sized = [t for t in saved if t.numel() >= leaf.numel()]
    assert vocabulary_sized, "the hook saw nothing: the check would be vacuous"
    assert all(t.data_ptr() == leaf.data_ptr() for t in vocabulary_sized)
    assert max(t.numel() for t in saved if t.data_ptr() != leaf.data_ptr()) <= 2 * 6 * 4
