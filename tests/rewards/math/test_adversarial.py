"""Hostile inputs: no crash, no hang, and a verdict for every sample."""

from __future__ import annotations

import time

from math_adversarial import FAMILIES, adversarial_inputs

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.math import MathReward

VERDICTS = {"correct", "incorrect", "no_answer", "timeout", "error"}
#: Families whose answers can be right by chance (junk ending in the gold's digits, ``{{{2}}}``).
RANDOM_TEXT_FAMILIES = {"binary_junk", "unicode", "unbalanced", "repetition", "nested_braces"}
#: Per-sample deadline for these tests; a worker that hits it is killed and replaced.
DEADLINE_S = 2.0


ROWS = adversarial_inputs(1000, seed=0)


def test_generator_is_deterministic_and_covers_every_family() -> None:
    assert len(ROWS) == 1000
    assert adversarial_inputs(60, seed=0) == ROWS[:60]
    assert adversarial_inputs(60, seed=1) != ROWS[:60]
    assert {family for family, _, _ in ROWS} == set(FAMILIES)


def test_thousand_adversarial_inputs_give_verdicts_without_hanging() -> None:
    reward = MathReward(timeout=DEADLINE_S, workers=2)
    rows = ROWS
    try:
        results = reward.score([Sample(response=r, ground_truth=g) for _, g, r in rows])
        assert reward.options.timeout == DEADLINE_S
        assert len(results) == len(rows)
        for (family, _, _), result in zip(rows, results, strict=True):
            assert result.verdict in VERDICTS, family
            assert result.reward in (0.0, 1.0)
            if family not in RANDOM_TEXT_FAMILIES:
                assert result.verdict != "correct", family
        # the pre-screen, not the deadline, should stop almost all of them
        timeouts = sum(r.verdict == "timeout" for r in results)
        assert timeouts <= 10
    finally:
        reward.close()


def test_a_one_megabyte_response_is_handled(math_reward: MathReward) -> None:
    filler = "Let us think step by step. " * 40_000  # ~1 MB
    responses = [
        filler + r"So the final answer is $\boxed{42}$.",
        "{" * 1_000_000 + r"\boxed{42}",
        "\\boxed{" * 150_000,
        "$" * 1_000_000,
        "9" * 1_000_000,
        filler + "\\boxed{" + "1" * 100_000 + "}",
    ]
    started = time.monotonic()
    results = math_reward.score([Sample(response=r, ground_truth="42") for r in responses])
    elapsed = time.monotonic() - started
    assert [r.verdict for r in results] == ["correct", "correct", "no_answer", "no_answer", "incorrect", "incorrect"]
    # a hang would take minutes; this generous bound only catches that
    assert elapsed < 120
