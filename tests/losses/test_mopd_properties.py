"""Properties of the MOPD loss: it is a reverse-KL gradient estimator, micro-batches add up,
teacher = student is a fixed point, and a ratio of 1 makes the IS weight disappear."""

from __future__ import annotations

import torch

from cascade_plugins.losses.mopd import MOPDOptions, mopd_loss


def _categorical_setup(seed: int, positions: int, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    student_logits = torch.randn(positions, vocab, generator=gen, dtype=torch.float64)
    teacher_logprobs = torch.log_softmax(torch.randn(positions, vocab, generator=gen, dtype=torch.float64) * 1.5, -1)
    return student_logits, teacher_logprobs


def _reverse_kl_gradient(student_logits: torch.Tensor, teacher_logprobs: torch.Tensor) -> torch.Tensor:
    """Gradient of (1/T) sum_t KL(pi_theta(.|t) || pi_T(.|t)) w.r.t. the logits, by autograd."""
    logits = student_logits.clone().requires_grad_(True)
    logp = torch.log_softmax(logits, -1)
    kl = (logp.exp() * (logp - teacher_logprobs)).sum(-1).mean()
    (grad,) = torch.autograd.grad(kl, logits)
    return grad


def _surrogate_gradient(
    student_logits: torch.Tensor, teacher_logprobs: torch.Tensor, tokens: torch.Tensor
) -> torch.Tensor:
    """Gradient of the MOPD loss for sampled sequences ``tokens [N, T]`` (on-policy: ratio 1)."""
    logits = student_logits.clone().requires_grad_(True)
    logp = torch.log_softmax(logits, -1)  # [T, V]
    positions = torch.arange(tokens.shape[1]).expand_as(tokens)
    student = logp[positions, tokens]
    out = mopd_loss(
        student, student.detach(), teacher_logprobs[positions, tokens], torch.ones_like(tokens, dtype=torch.bool)
    )
    (grad,) = torch.autograd.grad(out.loss, logits)
    return grad


def test_expected_gradient_is_the_reverse_kl_gradient_exactly() -> None:
    """Enumerate every token of a one-position policy, weight by pi_theta: E[grad] = grad KL."""
    student_logits, teacher_logprobs = _categorical_setup(seed=0, positions=1, vocab=7)
    probs = torch.softmax(student_logits, -1)[0]
    expected = torch.zeros_like(student_logits)
    for token in range(7):
        grad = _surrogate_gradient(student_logits, teacher_logprobs, torch.tensor([[token]]))
        expected += probs[token] * grad
    torch.testing.assert_close(expected, _reverse_kl_gradient(student_logits, teacher_logprobs), rtol=1e-10, atol=1e-12)


def test_monte_carlo_gradient_matches_reverse_kl_gradient() -> None:
    """Sample sequences of 3 independent categorical positions from the student; the average MOPD
    gradient converges to the gradient of the per-token reverse KL (within 5 standard errors)."""
    positions, vocab, samples, batches = 3, 6, 4000, 20
    student_logits, teacher_logprobs = _categorical_setup(seed=1, positions=positions, vocab=vocab)
    probs = torch.softmax(student_logits, -1)
    gen = torch.Generator().manual_seed(2)
    estimates = []
    for _ in range(batches):
        tokens = torch.multinomial(probs, samples, replacement=True, generator=gen).T  # [N, T]
        estimates.append(_surrogate_gradient(student_logits, teacher_logprobs, tokens))
    stacked = torch.stack(estimates)
    mean = stacked.mean(0)
    standard_error = stacked.std(0) / batches**0.5
    target = _reverse_kl_gradient(student_logits, teacher_logprobs)
    assert torch.all((mean - target).abs() <= 5 * standard_error + 1e-9), (mean - target) / standard_error
    # and the check is not vacuous: the gradient is far from zero relative to the noise
    assert (target.abs() > 10 * standard_error).any()


def _random(batch: int, length: int, seed: int) -> tuple[torch.Tensor, ...]:
    gen = torch.Generator().manual_seed(seed)
    student = -torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3
    inference = student + torch.randn(batch, length, generator=gen, dtype=torch.float64) * 0.5
    teacher = -torch.rand(batch, length, generator=gen, dtype=torch.float64) * 3
    mask = torch.rand(batch, length, generator=gen) > 0.3
    mask[2] = False
    mask[5, 1:] = False
    outcome = torch.randn(batch, generator=gen, dtype=torch.float64)
    return student, inference, teacher, mask, outcome


def test_micro_batches_with_global_counts_add_up_to_the_full_batch() -> None:
    student, inference, teacher, mask, outcome = _random(12, 10, seed=3)
    global_sequences = int(mask.any(-1).sum())
    global_tokens = int(mask.sum())
    for options in (
        MOPDOptions(),
        MOPDOptions(normalization="token"),
        MOPDOptions(outcome_weight=0.5, advantage_clip=1.0, importance_sampling="tis"),
    ):
        full_leaf = student.clone().requires_grad_(True)
        full = mopd_loss(full_leaf, inference, teacher, mask, options, outcome_advantages=outcome)
        full.loss.backward()

        split_leaf = student.clone().requires_grad_(True)
        total = torch.zeros((), dtype=torch.float64)
        metric_sums: dict[str, float] = {}
        for rows in (slice(0, 3), slice(3, 4), slice(4, 9), slice(9, 12)):
            part = mopd_loss(
                split_leaf[rows],
                inference[rows],
                teacher[rows],
                mask[rows],
                options,
                num_sequences=global_sequences,
                num_tokens=global_tokens,
                outcome_advantages=outcome[rows],
            )
            total = total + part.loss
            for key, value in part.metrics.as_dict().items():
                metric_sums[key] = metric_sums.get(key, 0.0) + value
        total.backward()
        torch.testing.assert_close(total, full.loss, rtol=1e-12, atol=1e-15)
        assert split_leaf.grad is not None and full_leaf.grad is not None
        torch.testing.assert_close(split_leaf.grad, full_leaf.grad, rtol=1e-12, atol=1e-15)
        for key, value in full.metrics.as_dict().items():
            assert abs(metric_sums[key] - value) <= 1e-12 * max(1.0, abs(value)), key


def test_teacher_equal_to_student_gives_zero_gradient() -> None:
    student, inference, _, mask, _ = _random(8, 6, seed=4)
    for options in (MOPDOptions(), MOPDOptions(normalization="token"), MOPDOptions(importance_sampling="tis")):
        leaf = student.clone().requires_grad_(True)
        out = mopd_loss(leaf, inference, student, mask, options)
        out.loss.backward()
        assert leaf.grad is not None and torch.all(leaf.grad == 0)
        assert float(out.metrics.reverse_kl) == 0.0


def test_ratio_one_makes_the_weights_vanish() -> None:
    """With pi_inf = pi_train every IS mode reduces to -mean_seq (1/|V|) sum_t a_t log pi_train."""
    student, _, teacher, mask, _ = _random(8, 6, seed=5)
    valid_rows = mask.any(-1)
    advantage = teacher - student
    by_hand = -(torch.where(mask, advantage * student, 0.0).sum(-1)[valid_rows] / mask.sum(-1)[valid_rows]).mean()
    for mode in ("icepop", "tis", "none"):
        out = mopd_loss(student, student.clone(), teacher, mask, MOPDOptions(importance_sampling=mode))
        torch.testing.assert_close(out.loss, by_hand, rtol=1e-14, atol=0.0)
        assert float(out.metrics.is_oob_fraction) == 0.0
