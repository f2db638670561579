"""The sampled-token MOPD loss against a float64 transcription of Eq. 2-4, options and errors."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from pydantic import ValidationError

from cascade_plugins.losses.mopd import MOPDLoss, MOPDOptions, mopd_loss

Oracle = Callable[..., torch.Tensor]


def random_batch(
    batch: int, length: int, seed: int, dtype: torch.dtype = torch.float64, spread: float = 0.6
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Student/inference/teacher log-probs and a mask with a fully masked row and a one-token row."""
    gen = torch.Generator().manual_seed(seed)
    student = -torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3
    # ratios spread around 1 so that some tokens fall outside [0.5, 2]
    inference = student + torch.randn(batch, length, generator=gen, dtype=torch.float64) * spread
    teacher = -torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3
    mask = torch.rand(batch, length, generator=gen) > 0.3
    if batch >= 3:
        mask[0] = False  # fully masked row
        mask[1] = False
        mask[1, length // 2] = True  # a single valid token
    return student.to(dtype), inference.to(dtype), teacher.to(dtype), mask


def loss_and_grad(fn: Callable[[torch.Tensor], torch.Tensor], student: torch.Tensor) -> tuple[float, torch.Tensor]:
    leaf = student.detach().clone().requires_grad_(True)
    loss = fn(leaf)
    loss.backward()
    assert leaf.grad is not None
    return float(loss.detach()), leaf.grad


OPTION_CASES = [
    {},
    {"normalization": "token"},
    {"importance_sampling": "tis"},
    {"importance_sampling": "none"},
    {"advantage_clip": 0.7},
    {"importance_ratio_min": 0.8, "importance_ratio_max": 1.25, "normalization": "token"},
]


@pytest.mark.parametrize("options", OPTION_CASES, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "paper")
@pytest.mark.parametrize("shape", [(6, 9), (5, 1), (1, 1)])
def test_value_and_gradient_match_float64_transcription(
    eq4: Oracle, options: dict[str, object], shape: tuple[int, int]
) -> None:
    student, inference, teacher, mask = random_batch(*shape, seed=shape[0] * 31 + shape[1])
    if shape == (1, 1):
        mask[:] = True
    opts = MOPDOptions(**options)  # type: ignore[arg-type]
    reference_kwargs = {
        "ratio_min": opts.importance_ratio_min,
        "ratio_max": opts.importance_ratio_max,
        "normalization": opts.normalization,
        "importance_sampling": opts.importance_sampling,
        "advantage_clip": opts.advantage_clip,
    }
    ours, our_grad = loss_and_grad(lambda s: mopd_loss(s, inference, teacher, mask, opts).loss, student)
    expected, expected_grad = loss_and_grad(lambda s: eq4(s, inference, teacher, mask, **reference_kwargs), student)
    assert ours == pytest.approx(expected, rel=1e-12, abs=1e-14)
    torch.testing.assert_close(our_grad, expected_grad, rtol=1e-12, atol=1e-14)
    assert torch.all(our_grad[~mask] == 0)


def test_some_tokens_fall_outside_the_band_in_the_random_batches() -> None:
    """Guards the test above against a batch where IcePop never drops anything."""
    student, inference, _, mask = random_batch(6, 9, seed=6 * 31 + 9)
    ratio = (student - inference).exp()[mask]
    assert ((ratio < 0.5) | (ratio > 2.0)).any()
    assert ((ratio >= 0.5) & (ratio <= 2.0)).any()


def _inference_at_ratio(student: torch.Tensor, ratio: float) -> torch.Tensor:
    inference = student - math.log(ratio)
    assert torch.all(torch.exp(student - inference) == ratio), "construction must hit the bound exactly"
    return inference


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_tokens_exactly_at_the_bounds_are_kept(eq4: Oracle, dtype: torch.dtype) -> None:
    # values whose ratio is exactly 0.5 / 2.0 after the round trip through log (checked below)
    student = torch.tensor([[-0.5, -1.0, -0.125], [-0.25, -0.5, -1.0]], dtype=dtype)
    mask = torch.ones_like(student, dtype=torch.bool)
    teacher = torch.tensor([[-1.5, -0.5, -3.0], [-1.0, -2.0, -0.125]], dtype=dtype)
    for bound in (0.5, 2.0):
        inference = _inference_at_ratio(student, bound)
        out = mopd_loss(student.clone().requires_grad_(True), inference, teacher, mask)
        assert float(out.metrics.is_oob_fraction) == 0.0
        # every token kept with weight = its ratio: the transcription with an unbounded band
        open_band = eq4(
            student.double().requires_grad_(True),
            inference.double(),
            teacher.double(),
            mask,
            ratio_min=0.0,
            ratio_max=math.inf,
        )
        assert out.loss.item() == pytest.approx(open_band.item(), rel=1e-6)
        assert out.loss.item() != 0.0
        if dtype == torch.float64:  # the transcription's own bound test is exact in float64
            paper_band = eq4(student.requires_grad_(False), inference, teacher, mask)
            assert out.loss.item() == pytest.approx(float(paper_band), rel=1e-12)
    # and just outside the band the tokens are dropped, not clamped
    for outside in (0.49, 2.01):
        out = mopd_loss(student.clone().requires_grad_(True), student - math.log(outside), teacher, mask)
        assert out.loss.item() == 0.0
        assert float(out.metrics.is_oob_fraction) == 1.0


def test_outcome_advantage_mixing(eq4: Oracle) -> None:
    student, inference, teacher, mask = random_batch(5, 7, seed=3)
    per_sequence = torch.tensor([1.0, -0.5, 0.25, 2.0, -1.5], dtype=torch.float64)
    per_token = torch.randn(5, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    opts = MOPDOptions(outcome_weight=0.3, advantage_clip=1.0)
    for outcome in (per_sequence, per_token):
        ours, grad = loss_and_grad(
            lambda s, o=outcome: mopd_loss(s, inference, teacher, mask, opts, outcome_advantages=o).loss, student
        )
        expected, expected_grad = loss_and_grad(
            lambda s, o=outcome: eq4(s, inference, teacher, mask, advantage_clip=1.0, outcome_weight=0.3, outcome=o),
            student,
        )
        assert ours == pytest.approx(expected, rel=1e-12)
        torch.testing.assert_close(grad, expected_grad, rtol=1e-12, atol=1e-14)


def test_proximal_logprobs_replace_the_detached_student_in_advantage_and_ratio(eq4: Oracle) -> None:
    student, inference, teacher, mask = random_batch(4, 6, seed=8)
    proximal = student + 0.05
    leaf = student.clone().requires_grad_(True)
    ours = mopd_loss(leaf, inference, teacher, mask, proximal_logprobs=proximal).loss
    ours.backward()
    # the transcription with the proximal log-probs as sg[log pi_train]: same coefficients, grad on student
    expected_coeff_grad = torch.autograd.functional.jacobian(lambda p: eq4(p, inference, teacher, mask), proximal)
    # eq4 differentiates w.r.t. its first argument only through the log pi_train factor, so the
    # jacobian at ``proximal`` is exactly the coefficient tensor our loss multiplies student by
    assert leaf.grad is not None
    torch.testing.assert_close(leaf.grad, expected_coeff_grad, rtol=1e-12, atol=1e-14)
    assert ours.item() == pytest.approx(float((expected_coeff_grad * student).sum()), rel=1e-12)


def test_low_precision_inputs_are_computed_in_float32(eq4: Oracle) -> None:
    student, inference, teacher, mask = random_batch(4, 8, seed=11, spread=0.2)
    low = student.to(torch.bfloat16).requires_grad_(True)
    out = mopd_loss(low, inference.to(torch.bfloat16), teacher.to(torch.bfloat16), mask)
    assert out.loss.dtype == torch.float32
    out.loss.backward()
    assert low.grad is not None and low.grad.dtype == torch.bfloat16
    expected = eq4(
        low.detach().double().requires_grad_(True),
        inference.to(torch.bfloat16).double(),
        teacher.to(torch.bfloat16).double(),
        mask,
    )
    assert out.loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_garbage_at_masked_or_dropped_positions_does_not_leak() -> None:
    student, inference, teacher, mask = random_batch(4, 6, seed=5)
    clean = mopd_loss(student.clone().requires_grad_(True), inference, teacher, mask)
    dirty_student = student.clone()
    dirty_teacher = teacher.clone()
    dirty_inference = inference.clone()
    dirty_student[~mask] = -math.inf
    dirty_teacher[~mask] = math.nan
    dirty_inference[~mask] = math.inf
    # a valid token the sampler gave a finite log-prob but the trainer -inf: ratio 0, dropped by IcePop
    b, t = mask[2:].nonzero()[0].tolist()
    b += 2
    assert mask[b].sum() > 1
    dirty_student[b, t] = -math.inf
    clean_mask = mask.clone()
    clean_mask[b, t] = False
    leaf = dirty_student.clone().requires_grad_(True)
    dirty = mopd_loss(leaf, dirty_inference, dirty_teacher, mask, num_sequences=clean.metrics.valid_sequences)
    reference = mopd_loss(
        student.clone().requires_grad_(True),
        inference,
        teacher,
        clean_mask,
        num_sequences=clean.metrics.valid_sequences,
    )
    dirty.loss.backward()
    assert torch.isfinite(dirty.loss)
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    # the dropped token still counts in |V(y)| (it is valid, only its weight is 0)
    assert dirty.loss.item() != pytest.approx(reference.loss.item())
    assert float(dirty.metrics.is_oob_fraction) > 0


def test_non_finite_teacher_at_a_kept_token_is_an_error() -> None:
    student, _, teacher, mask = random_batch(3, 4, seed=2)
    b, t = mask.nonzero()[0].tolist()
    teacher[b, t] = -math.inf
    with pytest.raises(ValueError, match=r"not finite at 1 valid token.*non-finite teacher_logprobs at 1"):
        mopd_loss(student, student, teacher, mask)


def test_metrics_are_the_documented_quantities() -> None:
    student, inference, teacher, mask = random_batch(6, 9, seed=7)
    opts = MOPDOptions(advantage_clip=0.5)
    out = mopd_loss(student, inference, teacher, mask, opts)
    valid = mask
    ratio = (student - inference).exp()
    metrics = out.metrics.as_dict()
    assert metrics["valid_tokens"] == int(valid.sum())
    assert metrics["valid_sequences"] == int(valid.any(-1).sum())
    assert metrics["reverse_kl"] == pytest.approx(float((student - teacher)[valid].mean()))
    assert metrics["is_oob_fraction"] == pytest.approx(float(((ratio < 0.5) | (ratio > 2.0))[valid].float().mean()))
    assert metrics["advantage_abs_mean"] == pytest.approx(
        float((teacher - student).clamp(-0.5, 0.5)[valid].abs().mean())
    )
    assert metrics["loss"] == pytest.approx(out.loss.item())
    assert set(metrics) == set(out.metrics.normalizers("sequences"))


def test_all_masked_batch_gives_zero_loss_and_zero_gradient() -> None:
    student, inference, teacher, _ = random_batch(3, 4, seed=1)
    mask = torch.zeros(3, 4, dtype=torch.bool)
    for normalization in ("sequence", "token"):
        leaf = student.clone().requires_grad_(True)
        out = mopd_loss(leaf, inference, teacher, mask, MOPDOptions(normalization=normalization))
        out.loss.backward()
        assert out.loss.item() == 0.0
        assert leaf.grad is not None and torch.all(leaf.grad == 0)
        assert float(out.metrics.reverse_kl) == 0.0


def test_shape_and_argument_errors_name_the_argument() -> None:
    student, inference, teacher, mask = random_batch(3, 4, seed=0)
    with pytest.raises(ValueError, match="teacher_logprobs has shape"):
        mopd_loss(student, inference, teacher[:, :3], mask)
    with pytest.raises(ValueError, match="mask has shape"):
        mopd_loss(student, inference, teacher, mask[:2])
    with pytest.raises(ValueError, match=r"student_logprobs must be \[B, T\]"):
        mopd_loss(student[0], inference[0], teacher[0], mask[0])
    with pytest.raises(ValueError, match="inference_logprobs is required"):
        mopd_loss(student, None, teacher, mask)
    with pytest.raises(ValueError, match="needs outcome_advantages"):
        mopd_loss(student, inference, teacher, mask, MOPDOptions(outcome_weight=0.1))
    with pytest.raises(ValueError, match=r"outcome_advantages must be \[B\] or \[B, T\]"):
        mopd_loss(student, inference, teacher, mask, MOPDOptions(outcome_weight=0.1), outcome_advantages=student[:2])
    # without importance sampling the inference log-probs are not needed
    assert torch.isfinite(mopd_loss(student, None, teacher, mask, MOPDOptions(importance_sampling="none")).loss)


def test_options_are_validated() -> None:
    with pytest.raises(ValidationError, match="must not exceed"):
        MOPDOptions(importance_ratio_min=2.0, importance_ratio_max=0.5)
    with pytest.raises(ValidationError, match="advantage_clip"):
        MOPDOptions(advantage_clip=0.0)
    with pytest.raises(ValidationError, match="normalisation"):
        MOPDOptions(normalisation="token")  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="importance_sampling"):
        MOPDOptions(importance_sampling="clip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not both"):
        MOPDLoss(MOPDOptions(), normalization="token")


def test_loss_object_binds_options() -> None:
    student, inference, teacher, mask = random_batch(4, 5, seed=9)
    bound = MOPDLoss(normalization="token", advantage_clip=0.3)
    direct = mopd_loss(student, inference, teacher, mask, MOPDOptions(normalization="token", advantage_clip=0.3))
    assert float(bound(student, inference, teacher, mask).loss) == direct.loss.item()
    assert "advantage_clip=0.3" in repr(bound)


def test_non_finite_student_at_a_kept_token_is_an_error() -> None:
    """With proximal log-probs the coefficients can be finite while the student log-prob is not."""
    student, inference, teacher, mask = random_batch(3, 4, seed=12, spread=0.0)
    b, t = mask.nonzero()[0].tolist()
    broken = student.clone()
    broken[b, t] = -math.inf
    with pytest.raises(ValueError, match="student_logprobs is not finite at a kept token"):
        mopd_loss(broken, inference, teacher, mask, proximal_logprobs=student)
