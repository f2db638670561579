"""How a finished execution (exit status, usage, why it was stopped) becomes a verdict."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

from cascade_plugins.sandbox.limits import Limits, Verdict

#: What the runtime prints when an allocation fails under the address-space limit.
_ALLOCATION_FAILURES = (b"MemoryError", b"std::bad_alloc", b"Cannot allocate memory", b"out of memory")


def allocation_failed(stderr: bytes) -> bool:
    tail = stderr[-4096:]
    return any(marker in tail for marker in _ALLOCATION_FAILURES)


def classify(raw: Mapping[str, Any], limits: Limits) -> tuple[Verdict, str]:
    """The verdict and a human-readable reason for one execution.

    ``raw`` holds what the worker measured: ``exit_code``, ``signal``, ``cpu_time_s``,
    ``wall_time_s``, ``peak_memory_kb``, ``stderr`` and ``reason`` (why the worker stopped it:
    ``cpu``, ``wall``, ``output``, ``memory``, ``processes``, ``killed`` or empty).
    """
    reason = raw.get("reason", "")
    sig = raw.get("signal")
    cpu = float(raw.get("cpu_time_s", 0.0))
    if reason == "output":
        return Verdict.OLE, f"output exceeded {limits.output_bytes} bytes"
    if raw.get("oom_killed") or reason == "memory":  # the memory cgroup or the worker's own count
        return Verdict.MLE, f"all processes together exceeded {limits.total_memory_mb} MiB"
    if sig == signal.SIGXFSZ:
        return Verdict.OLE, f"a file exceeded {limits.file_size_mb} MiB"
    if reason == "processes":
        return Verdict.RE, f"more than {limits.max_processes} processes"
    if reason == "cpu" or sig == signal.SIGXCPU or cpu > limits.cpu_time_s:
        return Verdict.TLE, f"CPU time {cpu:.2f}s exceeded {limits.cpu_time_s}s"
    if reason == "wall":
        return Verdict.TLE, f"wall time exceeded {limits.wall_s}s"
    if reason == "killed":
        return Verdict.RE, "killed on request"
    if reason == "host_gone":
        return Verdict.SANDBOX_ERROR, "the host closed the connection"
    if raw.get("exit_code") == 0 and sig is None:
        return Verdict.OK, ""
    stderr = raw.get("stderr", b"")
    peak_mb = int(raw.get("peak_memory_kb", 0)) / 1024
    if allocation_failed(stderr) or peak_mb >= 0.95 * limits.memory_mb:
        return Verdict.MLE, f"memory limit of {limits.memory_mb} MiB exceeded"
    if sig is not None:
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return Verdict.RE, f"killed by signal {name}"
    return Verdict.RE, f"exit code {raw.get('exit_code')}"
