"""Work in the calling thread is bounded: extraction is linear, reads at most the end of a response,
and a run of boxes too long to be one answer is no answer. The pre-screen never crashes."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cascade_plugins.interfaces import RewardResult, Sample
from cascade_plugins.rewards.math import MathReward, verify
from cascade_plugins.rewards.math.extract import MAX_LIST_BOXES, MAX_SCANNED_CHARS, extract_answer, extract_boxed
from cascade_plugins.rewards.math.screen import screen_expression


def _adjacent_boxes(n: int) -> str:
    return "".join(rf"\boxed{{{i}}}" for i in range(n))


def _boxes_apart(n: int) -> str:
    """Intermediate results, each boxed: only the last one is the answer."""
    return "".join(rf"Step {i}: so far we have \boxed{{{i}}}. " for i in range(n))


def _labelled_boxes(n: int) -> str:
    return ", ".join(rf"y_{{{i}}} = \boxed{{{i}}}" for i in range(n))


def test_a_run_of_boxes_is_one_answer_up_to_the_limit() -> None:
    found = extract_boxed(" and ".join(rf"\boxed{{{i}}}" for i in range(MAX_LIST_BOXES)))
    assert found is not None and found.multiple
    assert found.answer == ", ".join(str(i) for i in range(MAX_LIST_BOXES))
    assert extract_boxed(" and ".join(rf"\boxed{{{i}}}" for i in range(MAX_LIST_BOXES + 1))) is None
    labelled = extract_boxed(_labelled_boxes(MAX_LIST_BOXES))
    assert labelled is not None and labelled.answer.startswith("y_{0} = 0, y_{1} = 1")
    assert extract_boxed(_labelled_boxes(MAX_LIST_BOXES + 1)) is None
    assert extract_boxed(r"\boxed{5}" * (MAX_LIST_BOXES + 1)) is None  # repeats too: a pattern, not an answer


def test_only_the_end_of_a_response_is_read() -> None:
    answer_first = r"\boxed{7}" + " filler" * (MAX_SCANNED_CHARS // 7 + 10)
    assert extract_answer(answer_first, ["boxed"]) is None
    answer_last = " filler" * (MAX_SCANNED_CHARS // 7 + 10) + r"\boxed{7}"
    found = extract_answer(answer_last, ["boxed"])
    assert found is not None and found.answer == "7"


def _score_within_deadline(reward: MathReward, sample: Sample) -> RewardResult:
    """Score one sample in a thread and fail if it outlives the reward's per-sample deadline."""
    results: list[RewardResult] = []
    thread = threading.Thread(target=lambda: results.extend(reward.score([sample])), daemon=True)
    thread.start()
    thread.join(timeout=reward.options.timeout)
    assert not thread.is_alive(), f"no verdict within the {reward.options.timeout:g} s deadline"
    return results[0]


@pytest.mark.parametrize(
    ("name", "response", "gold", "verdict"),
    [
        ("80k adjacent boxes", r"\boxed{1}" * 80_000, "1", "no_answer"),
        ("80k adjacent distinct boxes", _adjacent_boxes(80_000), "79999", "no_answer"),
        ("160k adjacent boxes", r"\boxed{1}" * 160_000, "1", "no_answer"),
        ("40k labelled boxes", _labelled_boxes(40_000), "39999", "no_answer"),
        ("80k labelled boxes", _labelled_boxes(80_000), "79999", "no_answer"),
        ("80k boxes apart", _boxes_apart(80_000), "79999", "correct"),
        ("2 MB before the answer", "Let us think step by step. " * 80_000 + r"\boxed{42}", "42", "correct"),
        ("unclosed boxes", "\\boxed{" * 300_000, "1", "no_answer"),
        ("open math spans", "\\[" * 500_000 + "\\(" * 500_000, "1", "no_answer"),
    ],
)
def test_huge_responses_get_their_verdict_within_the_deadline(
    math_reward: MathReward, name: str, response: str, gold: str, verdict: str
) -> None:
    result = _score_within_deadline(math_reward, Sample(response=response, ground_truth=gold))
    assert result.verdict == verdict, (name, result.details)


@pytest.mark.parametrize(
    "answer",
    [
        r"\sum_{k=1}^{10^{10}} k",
        r"\sum_{k=1}^{(10^{10})} k",
        r"\sum^{10^{10}}_{k=1} k",
        r"\prod_{k=-10^{6}}^{1} k",
        r"\sum_{i=1}^{5}\sum_{j=1}^{10^{9}} ij",
    ],
)
def test_big_operators_with_huge_bounds_are_refused_not_crashed(math_reward: MathReward, answer: str) -> None:
    assert screen_expression(answer) is not None
    decision = verify(rf"\boxed{{{answer}}}", "5")
    assert (decision.verdict, decision.method) == ("incorrect", "refused")
    [result] = math_reward.score([Sample(response=rf"\boxed{{{answer}}}", ground_truth="5")])
    assert result.verdict == "incorrect"


def test_big_operators_with_small_bounds_are_evaluated() -> None:
    assert verify(r"\boxed{\sum_{k=1}^{10} k}", "55").verdict == "correct"
    assert verify(r"\boxed{\sum_{k=1}^{n} k}", r"\frac{n(n+1)}{2}").verdict == "correct"


LATEX_PIECES = st.sampled_from(
    ["\\sum", "\\prod", "_", "^", "{", "}", "(", ")", "k=", "1", "10", "9", "-", "+", "\\cdot", "!", "e", "x", " ", "."]
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(LATEX_PIECES, max_size=40).map("".join))
def test_the_pre_screen_never_raises(text: str) -> None:
    reason = screen_expression(text)
    assert reason is None or isinstance(reason, str)
