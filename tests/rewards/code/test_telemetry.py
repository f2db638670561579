"""Reward-hacking telemetry: per-sample signals, per-batch counts, and the log line a training run shows."""

from __future__ import annotations

import logging

from cascade_plugins.interfaces import RewardResult, Sample
from cascade_plugins.rewards.code import CodeReward
from cascade_plugins.rewards.code.telemetry import batch_metrics, source_markers, suspicion


def test_source_markers_name_what_the_program_text_does():
    cheat = "import sys, gc, builtins\nf = sys._getframe().f_back\ngc.get_objects()\nbuiltins.exec = None\nos._exit(0)"
    assert source_markers(cheat, "python") == ["frame walking", "gc scanning", "builtins patching", "exit tricks"]
    assert source_markers("def add(a, b):\n    return a + b\n", "python") == []
    assert source_markers("x == builtins_count", "python") == []
    assert source_markers('int main(){ ptrace(0, 0, 0, 0); open("/proc/1/mem", 0); }', "cpp") == [
        "/proc access",
        "ptrace",
    ]


def test_suspicion_keeps_only_what_was_seen():
    assert suspicion() == {}
    assert suspicion(events={"timeout": 2}) == {}  # timeouts are counted from the verdicts
    seen = suspicion(source=["ctypes"], noticed=["gc scan", "gc scan"], events={"early_exit": 1, "protocol_error": 2})
    assert seen == {"noticed": ["gc scan"], "early_exit": True, "protocol_errors": 2, "source": ["ctypes"]}


def result(verdict: str, suspicious: dict | None = None, tests: list[str] = ()) -> RewardResult:  # type: ignore[assignment]
    details: dict = {"tests": [{"verdict": v} for v in tests]}
    if suspicious:
        details["suspicious"] = suspicious
    return RewardResult(0.0, verdict, details)


def test_batch_metrics_count_samples():
    metrics = batch_metrics(
        [
            result("correct"),
            result("WA", {"noticed": ["patched builtins", "frame access"], "source": ["builtins patching"]}),
            result("RE", {"early_exit": True}),
            result("RE", {"protocol_errors": 3}),
            result("TLE", {"ignored_interrupts": 1}, ["correct", "TLE"]),
            result("WA", None, ["TLE", "WA"]),  # fraction mode: a timeout that is not the verdict
            RewardResult(0.0, "error", {}),
        ]
    )
    assert metrics == {
        "samples": 7,
        "tamper_attempts": 3,
        "early_exits": 1,
        "timeouts": 2,
        "suspicious_source": 1,
        "protocol_errors": 1,
        "noticed/patched builtins": 1,
        "noticed/frame access": 1,
    }


def test_a_batch_reports_its_counts_and_logs_them(caplog):
    he = {"test": "def check(candidate):\n    assert candidate(2, 3) == 5\n", "entry_point": "add"}
    programs = [
        "def add(a, b):\n    return a + b\n",
        "import gc\ngc.get_objects()\n\ndef add(a, b):\n    return 0\n",
        "import os\nos._exit(0)\n",
        "def add(a, b):\n    while True:\n        pass\n",
    ]
    reward = CodeReward(max_workers=2, time_limit_s=0.5)
    try:
        with caplog.at_level(logging.INFO, logger="cascade_plugins.rewards.code"):
            results = reward.score([Sample(response=f"```python\n{p}\n```", tests=he) for p in programs])
        assert reward.last_batch_metrics == batch_metrics(results)
        clean = reward.score([Sample(response=f"```python\n{programs[0]}\n```", tests=he)])
    finally:
        reward.close()
    assert [r.verdict for r in results] == ["correct", "WA", "RE", "TLE"]
    metrics = batch_metrics(results)
    assert metrics["samples"] == 4 and metrics["early_exits"] == 1 and metrics["timeouts"] == 1
    assert metrics["tamper_attempts"] == 1 and metrics["noticed/gc scan"] == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "reward-hacking" in r.getMessage()]
    assert len(warnings) == 1 and "early_exits=1" in warnings[0].getMessage()
    assert clean[0].verdict == "correct" and reward.last_batch_metrics["tamper_attempts"] == 0
