"""Each verdict rule, on measured outcomes (no process needed)."""

from __future__ import annotations

import signal

import pytest

from cascade_plugins.sandbox import Limits
from cascade_plugins.sandbox.verdicts import allocation_failed, classify

LIMITS = Limits(cpu_time_s=1.0, memory_mb=100, output_bytes=10)


def outcome(**overrides):
    raw = {"exit_code": 0, "signal": None, "cpu_time_s": 0.1, "wall_time_s": 0.2, "peak_memory_kb": 1000,
           "stderr": b"", "reason": ""}
    raw.update(overrides)
    return raw


@pytest.mark.parametrize(
    ("raw", "verdict", "message"),
    [
        (outcome(), "OK", ""),
        (outcome(exit_code=2), "RE", "exit code 2"),
        (outcome(exit_code=None, signal=signal.SIGSEGV), "RE", "SIGSEGV"),
        (outcome(reason="output", exit_code=None, signal=9), "OLE", "output exceeded 10 bytes"),
        (outcome(exit_code=None, signal=signal.SIGXFSZ), "OLE", "a file exceeded 16 MiB"),
        (outcome(reason="cpu", exit_code=None, signal=9, cpu_time_s=1.01), "TLE", "CPU time"),
        (outcome(exit_code=None, signal=signal.SIGXCPU), "TLE", "CPU time"),
        (outcome(cpu_time_s=1.5), "TLE", "exceeded 1.0s"),  # finished, but over the limit
        (outcome(reason="wall", exit_code=None, signal=9), "TLE", "wall time exceeded 3.0s"),
        (outcome(reason="processes", exit_code=None, signal=9), "RE", "more than 64 processes"),
        (outcome(reason="killed", exit_code=None, signal=9), "RE", "killed on request"),
        (outcome(exit_code=1, stderr=b"Traceback...\nMemoryError\n"), "MLE", "memory limit of 100 MiB"),
        (outcome(exit_code=None, signal=6, stderr=b"what():  std::bad_alloc"), "MLE", "memory limit"),
        (outcome(exit_code=None, signal=9, peak_memory_kb=99 * 1024), "MLE", "memory limit"),
        (outcome(oom_killed=True, exit_code=None, signal=9), "MLE", "all processes together exceeded 456 MiB"),
        (outcome(reason="host_gone", exit_code=None, signal=9), "SANDBOX_ERROR", "host closed"),
    ],
)
def test_classify(raw, verdict, message):
    got, why = classify(raw, LIMITS)
    assert got == verdict
    assert message in why


def test_output_limit_beats_everything_else():
    assert classify(outcome(reason="output", cpu_time_s=5.0, stderr=b"MemoryError"), LIMITS)[0] == "OLE"


def test_allocation_failure_markers_only_count_at_the_end():
    assert allocation_failed(b"x" * 10 + b"MemoryError")
    assert not allocation_failed(b"MemoryError" + b"x" * 10_000)
