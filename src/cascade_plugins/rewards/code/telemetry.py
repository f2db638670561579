"""Reward-hacking telemetry: what a batch's solutions tried, counted for the training logs.

None of this changes a reward: the harness already keeps the solution away from the tests and
the verdict. It tells whoever watches a training run that the policy has started to try (a
policy that learns to probe the harness shows it here long before it shows anywhere else).

Per sample, ``details["suspicious"]`` (present only when something was seen) holds:

- ``noticed``: what the solution's process saw the solution do (Python audit events and
  integrity checks: frame access, gc scans, patched builtins or harness functions, atexit or
  signal handlers, ctypes, other processes signalled or started, ``/proc`` opened, exit called);
- ``early_exit``: the solution's process ended before the tests were done;
- ``protocol_errors``: it sent the referee something that is not an answer to its request;
- ``ignored_interrupts``: it kept running after its time was up and had to be killed;
- ``source``: markers in the program text (frame walking, gc, builtins, ``/proc``, raw fds,
  exit hooks, ptrace, ...), for every format and both languages.

:func:`batch_metrics` turns a batch's results into counts of samples; :class:`CodeReward` logs
them once per batch and keeps the latest in ``last_batch_metrics``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from cascade_plugins.interfaces import RewardResult

_PYTHON_MARKERS = {
    "frame walking": r"\b_getframe\b|\bf_back\b|\bf_globals\b|\bf_locals\b|\btb_frame\b|\bgi_frame\b"
    r"|\binspect\s*\.\s*(?:stack|currentframe|getouterframes|trace)\b",
    "gc scanning": r"\bgc\s*\.\s*get_(?:objects|referrers|referents)\b",
    "builtins patching": r"\b__builtins__\b|\bbuiltins\s*\.\s*\w+\s*=(?!=)|\bimport\s+builtins\b|\bfrom\s+builtins\b",
    "raw file descriptors": r"\bos\s*\.\s*(?:write|dup2?|fdopen|openpty)\s*\(",
    "exit tricks": r"\bos\s*\.\s*_exit\b|\batexit\b|\bsys\s*\.\s*exit\s*\(",
    "/proc access": r"/proc/",
    "ctypes": r"\bctypes\b",
    "tracing hooks": r"\bsys\s*\.\s*(?:settrace|setprofile|addaudithook)\b",
    "signals": r"\bsignal\s*\.\s*(?:signal|setitimer|pthread_sigmask)\b|\bos\s*\.\s*kill(?:pg)?\s*\(",
}
_CPP_MARKERS = {
    "/proc access": r"/proc/",
    "ptrace": r"\bptrace\b|\bprocess_vm_(?:readv|writev)\b",
    "raw file descriptors": r"\bdup2?\s*\(|\bfdopen\s*\(",
    "signals": r"\bkill\s*\(|\bgetppid\s*\(",
    "raw system calls": r"\bsyscall\s*\(",
}
_COMPILED = {
    "python": {name: re.compile(pattern) for name, pattern in _PYTHON_MARKERS.items()},
    "cpp": {name: re.compile(pattern) for name, pattern in _CPP_MARKERS.items()},
}


def source_markers(code: str, language: str) -> list[str]:
    """Which suspicious constructs the program text contains (a heuristic; legitimate programs
    use some of them, e.g. ``sys.exit``, so the counts are a trend to watch, not a verdict)."""
    return [name for name, pattern in _COMPILED.get(language, {}).items() if pattern.search(code)]


def suspicion(
    *,
    source: Sequence[str] = (),
    noticed: Sequence[str] = (),
    events: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``details["suspicious"]`` entry of one sample (empty when nothing was seen)."""
    events = events or {}
    found: dict[str, Any] = {}
    if noticed:
        found["noticed"] = sorted(set(noticed))
    if events.get("early_exit"):
        found["early_exit"] = True
    if events.get("protocol_error"):
        found["protocol_errors"] = int(events["protocol_error"])
    if events.get("interrupt_ignored"):
        found["ignored_interrupts"] = int(events["interrupt_ignored"])
    if source:
        found["source"] = list(source)
    return found


def batch_metrics(results: Sequence[RewardResult]) -> dict[str, int]:
    """Counts of samples, for a batch's logs.

    ``samples``; ``tamper_attempts`` (the solution's process noticed tampering, broke the
    protocol or ignored an interrupt); ``early_exits``; ``timeouts`` (a test ran out of time);
    ``suspicious_source`` (markers in the program text); ``protocol_errors``; and
    ``noticed/<what>`` for each kind of tampering seen.
    """
    metrics = {
        "samples": len(results),
        "tamper_attempts": 0,
        "early_exits": 0,
        "timeouts": 0,
        "suspicious_source": 0,
        "protocol_errors": 0,
    }
    for result in results:
        details = result.details if isinstance(result.details, dict) else {}
        seen = details.get("suspicious") or {}
        if seen.get("noticed") or seen.get("protocol_errors") or seen.get("ignored_interrupts"):
            metrics["tamper_attempts"] += 1
        if seen.get("early_exit"):
            metrics["early_exits"] += 1
        if seen.get("source"):
            metrics["suspicious_source"] += 1
        if seen.get("protocol_errors"):
            metrics["protocol_errors"] += 1
        for what in seen.get("noticed", ()):
            key = f"noticed/{what}"
            metrics[key] = metrics.get(key, 0) + 1
        tests = details.get("tests") or []
        if result.verdict == "TLE" or any(isinstance(t, dict) and t.get("verdict") == "TLE" for t in tests):
            metrics["timeouts"] += 1
    return metrics
