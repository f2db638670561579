"""The plugin author kit: check a reward plugin against the contract from your own test suite.

::

    from cascade_plugins.testing import check_reward

    def test_my_reward_honours_the_contract():
        check_reward(MyReward, samples=[Sample(response="...", ground_truth="...")])

``check_reward`` raises ``AssertionError`` with a precise message on the first violation and
returns a :class:`RewardCheckReport` otherwise.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cascade_plugins.interfaces import VERDICTS, Reward, RewardResult, Sample, Verdict

#: Samples no reward can make sense of; each must come back with verdict ``error``.
GENERIC_MALFORMED: tuple[Sample, ...] = (
    Sample(response=None),  # type: ignore[arg-type]
    Sample(response=12345),  # type: ignore[arg-type]
    Sample(response=b"\xff\xfe bytes"),  # type: ignore[arg-type]
)


@dataclass
class RewardCheckReport:
    name: str
    reward_range: tuple[float, float]
    results: list[RewardResult] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)


def _fail(name: str, message: str) -> None:
    raise AssertionError(f"reward {name!r}: {message}")


def _check_results(name: str, rng: tuple[float, float], samples: Sequence[Sample], results: Any, what: str) -> None:
    if not isinstance(results, list):
        _fail(name, f"{what}: score() must return a list, got {type(results).__name__}")
    if len(results) != len(samples):
        _fail(name, f"{what}: {len(results)} results for {len(samples)} samples")
    low, high = rng
    for index, result in enumerate(results):
        if not isinstance(result, RewardResult):
            _fail(name, f"{what}: result {index} is {type(result).__name__}, not RewardResult")
        if not isinstance(result.reward, (int, float)) or math.isnan(result.reward):
            _fail(name, f"{what}: result {index} has a non-numeric reward {result.reward!r}")
        if not low <= result.reward <= high:
            _fail(name, f"{what}: result {index} reward {result.reward} is outside the declared range {rng}")
        if not isinstance(result.verdict, str) or not result.verdict:
            _fail(name, f"{what}: result {index} has no verdict")
        if result.verdict not in VERDICTS:
            _fail(name, f"{what}: result {index} has verdict {result.verdict!r}, not one of the shared verdicts "
                        f"({', '.join(VERDICTS)}); keep a format's own verdict in details['judge_verdict']")
        if not isinstance(result.details, dict):
            _fail(name, f"{what}: result {index} details must be a dict")


def check_reward(
    reward: Reward | Callable[..., Reward],
    samples: Sequence[Sample],
    *,
    malformed: Sequence[Sample] = (),
    options: Mapping[str, Any] | None = None,
) -> RewardCheckReport:
    """Check the reward contract of :class:`cascade_plugins.interfaces.Reward`.

    ``reward`` is an instance or a factory (called with ``options``). ``samples`` should be
    well-formed samples of your domain (a handful, correct and incorrect); ``malformed`` adds
    domain-specific broken samples to the generic ones. Verified:

    1. it survives ``pickle`` (rewards travel to Ray actors) and scores the same afterwards;
    2. one result per sample, in order (a batch scores like the samples one at a time);
    3. every reward lies in the declared ``reward_range``;
    4. an empty batch returns ``[]``;
    5. malformed samples get verdict ``error`` and never raise;
    6. the same input gives the same output;
    7. ``close()`` works, twice, and the reward still scores afterwards.
    """
    instance: Reward = reward(**dict(options or {})) if not _is_reward(reward) else reward  # type: ignore[operator]
    name = getattr(instance, "name", None) or type(instance).__name__
    report = RewardCheckReport(str(name), tuple(getattr(instance, "reward_range", (math.nan, math.nan))))
    if not isinstance(getattr(instance, "name", None), str):
        _fail(str(name), "has no string 'name' attribute")
    rng = getattr(instance, "reward_range", None)
    if not (isinstance(rng, tuple) and len(rng) == 2 and all(isinstance(x, (int, float)) for x in rng)
            and rng[0] <= rng[1]):
        _fail(str(name), f"reward_range must be a (low, high) tuple of numbers, got {rng!r}")
    report.reward_range = (float(rng[0]), float(rng[1]))
    samples = list(samples)
    try:
        batch = instance.score(samples)
        _check_results(name, rng, samples, batch, "batch")
        report.results = batch
        report.checks.append("one result per sample, in range")

        singles = [instance.score([s]) for s in samples]
        for index, single in enumerate(singles):
            _check_results(name, rng, [samples[index]], single, f"sample {index} alone")
            if _key(single[0]) != _key(batch[index]):
                _fail(name, f"sample {index} scores {_key(single[0])} alone but {_key(batch[index])} in a batch "
                            "(results out of order or batch-dependent)")
        report.checks.append("order preserved (batch == one by one)")

        again = instance.score(samples)
        if [_key(r) for r in again] != [_key(r) for r in batch]:
            _fail(name, "scoring the same samples twice gave different results (not deterministic)")
        report.checks.append("deterministic")

        empty = instance.score([])
        if empty != []:
            _fail(name, f"an empty batch must return [], got {empty!r}")
        report.checks.append("empty batch")

        broken = [*GENERIC_MALFORMED, *malformed]
        try:
            broken_results = instance.score(broken)
        except Exception as exc:
            _fail(name, f"raised {type(exc).__name__} on malformed samples instead of verdict 'error': {exc}")
        _check_results(name, rng, broken, broken_results, "malformed batch")
        for index, result in enumerate(broken_results):
            if result.verdict != Verdict.ERROR:
                _fail(name, f"malformed sample {index} ({broken[index]!r:.80}) got verdict {result.verdict!r}, "
                            "expected 'error'")
        report.checks.append("malformed samples -> error")

        clone = pickle.loads(pickle.dumps(instance))
        try:
            cloned = clone.score(samples)
            if [_key(r) for r in cloned] != [_key(r) for r in batch]:
                _fail(name, "a pickled copy scores differently from the original")
        finally:
            clone.close()
        report.checks.append("picklable")
    finally:
        instance.close()
    instance.close()
    after = instance.score(samples[:1])
    _check_results(name, rng, samples[:1], after, "after close()")
    instance.close()
    report.checks.append("close() is idempotent and the reward restarts")
    return report


def _is_reward(obj: Any) -> bool:
    return not isinstance(obj, type) and callable(getattr(obj, "score", None))


def _key(result: RewardResult) -> tuple[float, str]:
    return (float(result.reward), result.verdict)
