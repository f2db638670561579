"""Hundreds of labelled pairs across every answer category, in-process and through the reward."""

from __future__ import annotations

import pytest
from math_labelled_pairs import PAIRS, all_pairs

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.math import MathReward, verify

CASES = all_pairs()


def test_every_category_has_accepted_and_rejected_answers() -> None:
    assert len(CASES) >= 300
    for category, rows in PAIRS.items():
        verdicts = {expected for _, _, expected in rows}
        assert "correct" in verdicts, category
        if category not in ("extraction",):
            assert "incorrect" in verdicts, category


@pytest.mark.parametrize(
    ("category", "gold", "response", "expected"),
    CASES,
    ids=[f"{c}-{i}" for i, (c, *_rest) in enumerate(CASES)],
)
def test_labelled_pair(category: str, gold: str, response: str, expected: str) -> None:
    decision = verify(response, gold)
    assert decision.verdict == expected, (gold, response, decision)


def test_reward_agrees_with_in_process_verdicts(math_reward: MathReward) -> None:
    """The same pairs through the reward: fast paths here, symbolic checks in worker processes."""
    cases = CASES[::2]  # every category, half the pairs: the in-process test covers them all
    samples = [Sample(response=r, ground_truth=g) for _, g, r, _ in cases]
    results = math_reward.score(samples)
    assert len(results) == len(samples)
    mismatches = [(g, r, res.verdict, e) for (_, g, r, e), res in zip(cases, results, strict=True) if res.verdict != e]
    assert mismatches == []
    for result in results:
        assert result.reward == (1.0 if result.verdict == "correct" else 0.0)
        assert "method" in result.details
