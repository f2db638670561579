"""Shared fixtures: one real sandbox per module, and a /proc-based check for leftover processes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from cascade_plugins.sandbox import Isolation, Sandbox


def _parents() -> dict[int, int]:
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        parents[int(name)] = int(stat.rsplit(b")", 1)[1].split()[1])
    return parents


def leftover_processes(sandbox: Sandbox) -> list[int]:
    """Host PIDs below the workers other than the workers themselves (read from the host's /proc).

    Under bubblewrap and unshare a worker is ``bwrap``/``unshare`` with one child, the Python
    worker; with rlimits only the root process is the worker. Anything deeper is a leftover.
    """
    allowed_depth = 0 if sandbox.isolation_mode == Isolation.RLIMITS_ONLY else 1
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    leftovers: list[int] = []
    for root in sandbox.worker_pids():
        frontier = [(root, 0)]
        while frontier:
            pid, depth = frontier.pop()
            for child in children.get(pid, []):
                if depth + 1 > allowed_depth:
                    leftovers.append(child)
                frontier.append((child, depth + 1))
    return leftovers


def assert_pool_healthy(sandbox: Sandbox) -> None:
    """No leftovers on the host, every worker answers, each sandbox holds only its worker."""
    assert leftover_processes(sandbox) == []
    report = sandbox.health()
    assert report, "no idle worker to check"
    for entry in report:
        assert entry["alive"], report
        if sandbox.isolation_mode != Isolation.RLIMITS_ONLY:
            assert entry["processes"] == 1, report
    follow_up = sandbox.run(sandbox.prepare("print(input()[::-1])", "python"), "olleh")
    assert follow_up.verdict == "OK" and follow_up.stdout == b"hello\n", follow_up


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(isolation="auto", max_workers=2) as box:
        box.start()
        yield box


@pytest.fixture(scope="module")
def namespaced(sandbox: Sandbox) -> Sandbox:
    if sandbox.isolation_mode == Isolation.RLIMITS_ONLY:
        pytest.skip("no namespace isolation on this host")
    return sandbox


@pytest.fixture
def check_healthy():
    """The :func:`assert_pool_healthy` check, for tests (conftest helpers are not importable)."""
    return assert_pool_healthy


@pytest.fixture
def leftovers():
    return leftover_processes
