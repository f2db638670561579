"""An example reward plugin: full reward when the response (after any ``</think>``) contains
every required keyword, or matches the sample's regex.

Sample fields used: ``ground_truth`` is a list of keywords, or ``{"regex": "..."}``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from cascade_plugins import RewardResult, Sample, hookimpl


class KeywordReward:
    name = "keyword"
    reward_range = (0.0, 1.0)

    def __init__(self, case_sensitive: bool = False, partial_credit: bool = False):
        self.case_sensitive = case_sensitive
        self.partial_credit = partial_credit

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        return [self._score_one(sample) for sample in samples]

    def _score_one(self, sample: Sample) -> RewardResult:
        if not isinstance(sample.response, str):
            return RewardResult(0.0, "error", {"error": "response is not a string"})
        answer = sample.response.rsplit("</think>", 1)[-1]
        flags = 0 if self.case_sensitive else re.IGNORECASE
        truth = sample.ground_truth
        if isinstance(truth, dict) and isinstance(truth.get("regex"), str):
            try:
                hit = re.search(truth["regex"], answer, flags) is not None
            except re.error as exc:
                return RewardResult(0.0, "error", {"error": f"bad regex: {exc}"})
            return RewardResult(float(hit), "correct" if hit else "incorrect", {"regex": truth["regex"]})
        if not (isinstance(truth, list) and truth and all(isinstance(k, str) for k in truth)):
            return RewardResult(0.0, "error", {"error": "ground_truth must be a list of keywords or {regex: ...}"})
        found = [k for k in truth if re.search(re.escape(k), answer, flags)]
        fraction = len(found) / len(truth)
        reward = fraction if self.partial_credit else float(fraction == 1.0)
        verdict = "correct" if fraction == 1.0 else "incorrect"
        return RewardResult(reward, verdict, {"found": found, "missing": [k for k in truth if k not in found]})

    def close(self) -> None:
        pass


@hookimpl
def register_rewards(register):
    register(KeywordReward)
