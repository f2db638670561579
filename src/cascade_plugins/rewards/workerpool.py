"""A small pool of killable worker processes with per-task wall-clock deadlines.

Rewards run inside Ray actors and threads, where ``signal.alarm`` either raises or cannot interrupt
C-level work (a sympy bigint power, a regex). The only deadline that always holds is killing the
process that does the work. This pool keeps a few long-lived worker processes (so the interpreter
start-up and heavy imports are paid once), sends each task to an idle worker, waits on the pipes,
and SIGKILLs a worker whose task outlives its deadline; the task gets a ``timeout`` outcome and the
worker is replaced on the next demand. A worker that dies (segfault, OOM kill, ``os._exit``) gives a
``died`` outcome and is replaced the same way.

Usage::

    pool = WorkerPool(size=2, initializer=warm_up)      # nothing starts yet
    outcomes = pool.run_many([(fn, (a, b)), (fn, (c, d))], timeout=5.0)
    outcome = pool.run(fn, (a, b), timeout=5.0)
    pool.close()                                          # the pool may be used again afterwards

Properties:

- workers are fresh interpreters started with ``subprocess`` (never ``fork``, which is unsafe in
  processes that run threads, such as Ray actors; and unlike ``multiprocessing``'s ``spawn`` they do
  not re-import the parent's ``__main__``); they see the parent's ``sys.path``;
- thread-safe: any number of threads may call ``run``/``run_many`` at once; each call checks
  workers out of the shared pool, so at most ``size`` tasks run at a time overall;
- no signals: deadlines are enforced by the caller's thread with ``multiprocessing.connection.wait``;
- picklable: a pickled pool carries only its settings and starts fresh workers lazily after
  unpickling (so objects that own a pool can travel to Ray actors);
- ``fn``, its arguments and its result must be picklable, and ``fn`` must be importable by the
  worker (a module-level function).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Literal

__all__ = ["TaskOutcome", "WorkerPool", "WorkerPoolError"]

OutcomeStatus = Literal["ok", "error", "timeout", "died"]

#: How long a new worker may take to import and run its initializer before it counts as failed.
DEFAULT_STARTUP_TIMEOUT_S = 120.0
#: Consecutive failed starts after which the pool gives up on the tasks it holds.
MAX_CONSECUTIVE_START_FAILURES = 3


class WorkerPoolError(RuntimeError):
    """The pool cannot run tasks at all (workers fail to start)."""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """What became of one task: ``ok`` (``value`` holds the result), ``error`` (the task raised;
    ``error`` holds ``"Type: message"``), ``timeout`` (killed at its deadline) or ``died`` (the
    worker process exited while running it)."""

    status: OutcomeStatus
    value: Any = None
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# ------------------------------------------------------------------------------------------------
# The worker side
# ------------------------------------------------------------------------------------------------


_BOOT = "import sys; from cascade_plugins.rewards.workerpool import _boot; _boot(int(sys.argv[1]))"


def _boot(fd: int) -> None:
    """Entry point of a worker interpreter: settings arrive first over the pipe."""
    conn = Connection(fd)
    initializer, memory_limit_bytes = conn.recv()
    _worker_main(conn, initializer, memory_limit_bytes)


def _worker_main(conn: Connection, initializer: Callable[[], None] | None, memory_limit_bytes: int | None) -> None:
    """Loop of one worker process: run tasks until told to stop or the parent goes away."""
    # Ctrl-C belongs to the parent; it kills workers when it needs to.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if memory_limit_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (memory_limit_bytes, memory_limit_bytes))
    if initializer is not None:
        initializer()
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent closed the pipe or died
            return
        if message is None:
            return
        fn, args = message
        try:
            result = fn(*args)
            reply: tuple[str, Any] = ("ok", result)
        except BaseException as exc:  # report everything, including MemoryError and RecursionError
            reply = ("error", f"{type(exc).__name__}: {exc}"[:2000])
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result
            conn.send(("error", f"result could not be sent back: {type(exc).__name__}: {exc}"[:2000]))


# ------------------------------------------------------------------------------------------------
# The parent side
# ------------------------------------------------------------------------------------------------


class _Worker:
    """Parent-side handle of one worker process."""

    __slots__ = ("conn", "generation", "process", "ready", "started_at", "tasks_done")

    def __init__(self, process: Any, conn: Connection, generation: int) -> None:
        self.generation = generation
        self.process = process
        self.conn = conn
        self.ready = False
        self.started_at = time.monotonic()
        self.tasks_done = 0

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.conn.close()

    def stop(self) -> None:
        """Ask politely, then kill; used by ``close`` on idle workers."""
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        try:
            self.process.wait(timeout=1)
            self.conn.close()
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass(slots=True)
class _Running:
    index: int
    deadline: float
    started: float


def _shutdown_workers(workers: list[_Worker]) -> None:
    for worker in workers:
        worker.stop()


def _shutdown_idle(idle: deque[_Worker]) -> None:
    """Finalizer of a pool that is garbage-collected: stop its idle workers."""
    workers = list(idle)
    idle.clear()
    _shutdown_workers(workers)


class WorkerPool:
    """Up to ``size`` worker processes running picklable callables under wall-clock deadlines.

    ``initializer`` (a picklable, module-level function) runs once in each new worker, before it
    reports ready: put heavy imports there so that a task's deadline measures the task only.
    ``max_tasks_per_worker`` recycles a worker after that many tasks (bounds memory growth).
    ``memory_limit_bytes`` sets ``RLIMIT_AS`` in each worker (a task that exceeds it fails with
    ``MemoryError`` or dies, and the worker is replaced).
    """

    def __init__(
        self,
        size: int = 2,
        *,
        initializer: Callable[[], None] | None = None,
        max_tasks_per_worker: int | None = 10_000,
        memory_limit_bytes: int | None = None,
        startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError(f"WorkerPool size must be >= 1, got {size}")
        self.size = size
        self.initializer = initializer
        self.max_tasks_per_worker = max_tasks_per_worker
        self.memory_limit_bytes = memory_limit_bytes
        self.startup_timeout_s = startup_timeout_s
        self._init_runtime_state()

    def _init_runtime_state(self) -> None:
        self._lock = threading.Condition()
        self._idle: deque[_Worker] = deque()
        self._live = 0  # idle + checked out (including starting)
        self._generation = 0  # bumped by close(): checked-out workers of an old generation are retired
        self._all: set[_Worker] = set()
        self._finalizer = weakref.finalize(self, _shutdown_idle, self._idle)

    # -- pickling: settings only; workers are started lazily in the new process ---------------------

    def __getstate__(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "initializer": self.initializer,
            "max_tasks_per_worker": self.max_tasks_per_worker,
            "memory_limit_bytes": self.memory_limit_bytes,
            "startup_timeout_s": self.startup_timeout_s,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime_state()

    # -- public API ----------------------------------------------------------------------------------

    @property
    def live_workers(self) -> int:
        """Worker processes currently alive or starting (for monitoring and tests)."""
        with self._lock:
            return self._live

    def worker_pids(self) -> list[int]:
        """Process ids of the current workers (for monitoring and tests)."""
        with self._lock:
            return [w.process.pid for w in self._all if w.process.pid is not None]

    def run(self, fn: Callable[..., Any], args: Sequence[Any] = (), *, timeout: float) -> TaskOutcome:
        """Run ``fn(*args)`` in a worker; give up and kill the worker after ``timeout`` seconds."""
        return self.run_many([(fn, tuple(args))], timeout=timeout)[0]

    def run_many(
        self, calls: Sequence[tuple[Callable[..., Any], Sequence[Any]]], *, timeout: float
    ) -> list[TaskOutcome]:
        """Run every ``(fn, args)`` in ``calls`` (in parallel over the pool's workers) and return one
        :class:`TaskOutcome` per call, in order. Each task gets ``timeout`` seconds of wall-clock
        time from the moment a ready worker receives it."""
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds, got {timeout}")
        results: list[TaskOutcome | None] = [None] * len(calls)
        pending: deque[int] = deque(range(len(calls)))
        owned: list[_Worker] = []
        running: dict[_Worker, _Running] = {}
        start_failures = 0
        try:
            while pending or running:
                self._acquire(owned, wanted=len(pending) + len(running))
                # Hand tasks to ready, idle workers.
                for worker in owned:
                    if not pending:
                        break
                    if worker.ready and worker not in running:
                        index = pending.popleft()
                        fn, args = calls[index]
                        now = time.monotonic()
                        try:
                            worker.conn.send((fn, tuple(args)))
                        except (OSError, ValueError):
                            # The worker died while idle; the task never started: retry it elsewhere.
                            pending.appendleft(index)
                            self._discard(worker, owned)
                            break
                        except Exception as exc:  # the task itself cannot be pickled
                            results[index] = TaskOutcome("error", error=f"task could not be sent: {exc}")
                            continue
                        running[worker] = _Running(index, now + timeout, now)
                # Give back what this call no longer needs, so other threads can use it.
                if not pending:
                    self._release([w for w in owned if w not in running], owned)
                start_failures = self._wait_and_collect(owned, running, results, start_failures)
                if start_failures >= MAX_CONSECUTIVE_START_FAILURES and not running:
                    for index in pending:
                        results[index] = TaskOutcome("error", error="worker processes failed to start")
                    pending.clear()
        finally:
            # On an exception (KeyboardInterrupt) kill what still runs; give the rest back.
            for worker in list(running):
                self._discard(worker, owned)
            self._release(list(owned), owned)
        return [r if r is not None else TaskOutcome("error", error="task was not run") for r in results]

    def close(self) -> None:
        """Stop every worker. Tasks running in other threads finish normally; their workers are
        then retired. The pool stays usable: the next task starts fresh workers."""
        with self._lock:
            idle = list(self._idle)
            self._idle.clear()
            self._live -= len(idle)
            self._generation += 1
            for worker in idle:
                self._all.discard(worker)
            self._lock.notify_all()
        _shutdown_workers(idle)

    # -- internals -------------------------------------------------------------------------------------

    def _spawn(self, generation: int) -> _Worker:
        parent_sock, child_sock = socket.socketpair()
        env = dict(os.environ)
        # the worker imports what the parent can import (src layouts, test paths)
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
        try:
            process = subprocess.Popen(
                [sys.executable, "-c", _BOOT, str(child_sock.fileno())],
                pass_fds=(child_sock.fileno(),),
                stdin=subprocess.DEVNULL,
                env=env,
                close_fds=True,
            )
        finally:
            child_sock.close()
        conn = Connection(parent_sock.detach())
        conn.send((self.initializer, self.memory_limit_bytes))
        return _Worker(process, conn, generation)

    def _acquire(self, owned: list[_Worker], wanted: int) -> None:
        """Check out workers until this call owns ``min(wanted, size)`` of them; block only when it
        owns none (otherwise it has results to wait for)."""
        to_spawn = 0
        with self._lock:
            while True:
                while len(owned) + to_spawn < min(wanted, self.size):
                    if self._idle:
                        owned.append(self._idle.popleft())
                    elif self._live < self.size:
                        self._live += 1
                        to_spawn += 1
                    else:
                        break
                if owned or to_spawn or wanted == 0:
                    break
                self._lock.wait(timeout=0.5)
            generation = self._generation
        for _ in range(to_spawn):
            try:
                worker = self._spawn(generation)
            except Exception:
                with self._lock:
                    self._live -= 1
                    self._lock.notify_all()
                raise
            with self._lock:
                self._all.add(worker)
            owned.append(worker)

    def _release(self, workers: list[_Worker], owned: list[_Worker]) -> None:
        retire: list[_Worker] = []
        with self._lock:
            for worker in workers:
                owned.remove(worker)
                stale = worker.generation != self._generation
                worn = self.max_tasks_per_worker is not None and worker.tasks_done >= self.max_tasks_per_worker
                if stale or worn:
                    retire.append(worker)
                    self._all.discard(worker)
                    self._live -= 1
                else:
                    self._idle.append(worker)
            self._lock.notify_all()
        _shutdown_workers(retire)

    def _discard(self, worker: _Worker, owned: list[_Worker]) -> None:
        worker.kill()
        with self._lock:
            if worker in owned:
                owned.remove(worker)
            self._all.discard(worker)
            self._live -= 1
            self._lock.notify_all()

    def _wait_and_collect(
        self,
        owned: list[_Worker],
        running: dict[_Worker, _Running],
        results: list[TaskOutcome | None],
        start_failures: int,
    ) -> int:
        starting = [w for w in owned if not w.ready]
        watched = list(running) + starting
        if not watched:
            return start_failures
        now = time.monotonic()
        deadlines = [r.deadline for r in running.values()]
        deadlines += [w.started_at + self.startup_timeout_s for w in starting]
        by_conn = {w.conn: w for w in watched}
        for conn in wait(list(by_conn), timeout=max(0.0, min(deadlines) - now)):
            worker = by_conn[conn]  # type: ignore[index]
            try:
                kind, payload = worker.conn.recv()
            except (EOFError, OSError):
                task = running.pop(worker, None)
                if task is not None:
                    try:  # the pipe closed first; the exit status follows a moment later
                        code = worker.process.wait(timeout=2)
                    except subprocess.TimeoutExpired:
                        code = None
                    results[task.index] = TaskOutcome(
                        "died",
                        error=f"worker process exited while running the task (exit code {code})",
                        elapsed_s=time.monotonic() - task.started,
                    )
                else:
                    start_failures += 1
                self._discard(worker, owned)
                continue
            if kind == "ready":
                worker.ready = True
                start_failures = 0
                continue
            task = running.pop(worker)
            worker.tasks_done += 1
            elapsed = time.monotonic() - task.started
            if kind == "ok":
                results[task.index] = TaskOutcome("ok", value=payload, elapsed_s=elapsed)
            else:
                results[task.index] = TaskOutcome("error", error=payload, elapsed_s=elapsed)
        now = time.monotonic()
        for worker, task in list(running.items()):
            if now >= task.deadline:
                del running[worker]
                results[task.index] = TaskOutcome(
                    "timeout", error="task exceeded its deadline; worker killed", elapsed_s=now - task.started
                )
                self._discard(worker, owned)
        for worker in [w for w in owned if not w.ready]:
            if now >= worker.started_at + self.startup_timeout_s:
                start_failures += 1
                self._discard(worker, owned)
        return start_failures

    def __repr__(self) -> str:
        return f"WorkerPool(size={self.size}, live={self._live}, pid={os.getpid()})"
