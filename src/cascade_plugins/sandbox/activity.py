"""How long a running job's processes have been on a CPU, or waiting for one, read from the host.

The kernel's scheduler statistics (``/proc/<pid>/task/<tid>/schedstat``: nanoseconds on a CPU,
nanoseconds runnable but waiting for one) tell a program that works or is held up by a busy
machine from one that is blocked (on a pipe, in ``sleep``): a blocked program adds to neither.
A worker's job processes are the descendants of its long-lived worker process, found once while
the worker is idle.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

_NS = 1e-9


@dataclass(frozen=True)
class Activity:
    """Seconds a job's processes (all their threads together) have spent so far on a CPU and
    runnable but waiting for one."""

    running_s: float
    waiting_s: float

    @property
    def busy_s(self) -> float:
        """On a CPU or wanting one: not blocked."""
        return self.running_s + self.waiting_s


def _children(pid: int) -> list[int] | None:
    """Child processes of ``pid``; ``None`` when the kernel does not list them."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as handle:
                found.extend(int(child) for child in handle.read().split())
        except OSError:
            continue
    return found


def idle_worker_process(pid: int) -> int | None:
    """The process at the end of the single-child chain from ``pid`` (a sandbox launcher execs or
    forks its way down to the worker): the parent of every job the worker runs. ``None`` when
    the kernel does not list children."""
    current = pid
    for _ in range(16):
        children = _children(current)
        if children is None:
            return None
        if len(children) != 1:
            return current
        current = children[0]
    return current


def _task_times(pid: int) -> tuple[int, int]:
    running = waiting = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0  # it has just ended
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as handle:
                fields = handle.read().split()
            running += int(fields[0])
            waiting += int(fields[1])
        except (OSError, IndexError, ValueError):
            continue
    return running, waiting


def job_activity(worker_pid: int) -> Activity | None:
    """Scheduler times of every process below ``worker_pid`` (its jobs); ``None`` when the host
    cannot tell (no child lists or no scheduler statistics in ``/proc``)."""
    if not os.path.exists(f"/proc/{worker_pid}/schedstat"):
        return None
    running = waiting = 0
    pending = _children(worker_pid)
    if pending is None:
        return None
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        run_ns, wait_ns = _task_times(pid)
        running += run_ns
        waiting += wait_ns
        pending.extend(_children(pid) or ())
    return Activity(running * _NS, waiting * _NS)
