"""Fault tests of the generic worker pool: hangs, deaths, errors, threads, pickling, close.

Tasks are standard-library functions so that the worker processes (fresh interpreters) can import
them: ``time.sleep`` hangs, ``os._exit`` dies, ``operator.truediv`` raises, ``os.getpid`` tells
which worker ran.
"""

from __future__ import annotations

import operator
import os
import pickle
import threading
import time
from collections.abc import Iterator

import pytest

from cascade_plugins.rewards.workerpool import WorkerPool


@pytest.fixture(scope="module")
def pool() -> Iterator[WorkerPool]:
    pool = WorkerPool(size=2)
    yield pool
    pool.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purpose
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_results_come_back_in_order(pool: WorkerPool) -> None:
    outcomes = pool.run_many([(operator.add, (i, 1)) for i in range(10)], timeout=30)
    assert [o.status for o in outcomes] == ["ok"] * 10
    assert [o.value for o in outcomes] == list(range(1, 11))


def test_a_hanging_task_times_out_and_its_worker_is_replaced(pool: WorkerPool) -> None:
    before = pool.run(os.getpid, timeout=30).value
    outcomes = pool.run_many([(time.sleep, (60,)), (operator.mul, (6, 7))], timeout=1.0)
    assert outcomes[0].status == "timeout"
    assert 1.0 <= outcomes[0].elapsed_s < 10
    assert outcomes[1].status == "ok" and outcomes[1].value == 42
    assert pool.live_workers <= pool.size
    # the pool keeps working, and the killed process is gone
    after = pool.run_many([(os.getpid, ())] * 4, timeout=30)
    assert all(o.ok for o in after)
    killed = [pid for pid in [before] if pid not in {o.value for o in after}]
    for pid in killed:
        assert not _pid_alive(pid)


def test_a_dying_worker_gives_died_and_is_replaced(pool: WorkerPool) -> None:
    outcome = pool.run(os._exit, (3,), timeout=30)
    assert outcome.status == "died"
    assert "exit code 3" in (outcome.error or "")
    assert pool.run(operator.add, (2, 2), timeout=30).value == 4


def test_an_exception_is_reported_and_the_worker_survives(pool: WorkerPool) -> None:
    pids_before = set(pool.worker_pids())
    outcome = pool.run(operator.truediv, (1, 0), timeout=30)
    assert outcome.status == "error"
    assert outcome.error is not None and outcome.error.startswith("ZeroDivisionError")
    assert pool.run(operator.add, (1, 1), timeout=30).ok
    assert pids_before & set(pool.worker_pids())  # no worker was replaced for a plain error


def test_unpicklable_task_is_an_error_not_a_crash(pool: WorkerPool) -> None:
    outcome = pool.run(operator.add, (threading.Lock(), 1), timeout=30)
    assert outcome.status == "error"
    assert pool.run(operator.add, (1, 1), timeout=30).ok


def test_many_threads_share_the_pool(pool: WorkerPool) -> None:
    results: dict[int, list[int]] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            outcomes = pool.run_many([(operator.mul, (n, k)) for k in range(5)], timeout=30)
            results[n] = [o.value for o in outcomes]
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert results == {n: [n * k for k in range(5)] for n in range(6)}
    assert pool.live_workers <= pool.size


def test_pickled_pool_starts_fresh_workers_lazily() -> None:
    original = WorkerPool(size=1)
    try:
        assert original.run(operator.add, (1, 2), timeout=30).value == 3
        copy = pickle.loads(pickle.dumps(original))
        assert copy.live_workers == 0
        assert copy.run(operator.add, (2, 3), timeout=30).value == 5
        assert set(copy.worker_pids()).isdisjoint(original.worker_pids())
        copy.close()
    finally:
        original.close()


def test_close_stops_workers_and_the_pool_can_be_used_again() -> None:
    pool = WorkerPool(size=1)
    pid = pool.run(os.getpid, timeout=30).value
    pool.close()
    assert pool.live_workers == 0
    deadline = time.monotonic() + 10
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _pid_alive(pid)
    assert pool.run(operator.add, (1, 1), timeout=30).value == 2
    pool.close()
    pool.close()  # closing twice is fine


def test_invalid_arguments() -> None:
    with pytest.raises(ValueError, match="size"):
        WorkerPool(size=0)
    with pytest.raises(ValueError, match="timeout"):
        WorkerPool(size=1).run(operator.add, (1, 1), timeout=0)
