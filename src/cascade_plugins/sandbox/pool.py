"""Host side of the worker processes: starting them, talking to them, pooling them."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cascade_plugins.sandbox import _zygote
from cascade_plugins.sandbox.activity import idle_worker_process
from cascade_plugins.sandbox.isolation import WorkerCgroup, cgroup_parents, command_for
from cascade_plugins.sandbox.limits import Isolation

#: seconds a worker may take to start (a loaded 2-core CI machine can be slow)
_START_TIMEOUT_S = 60.0
#: extra seconds the host waits beyond a job's wall limit before declaring the worker dead
_GRACE_S = 15.0


class WorkerError(RuntimeError):
    """A worker died or broke the protocol; the job's result is ``SANDBOX_ERROR``."""


class Worker:
    """One pre-started sandboxed worker process and the socket to it. Serves one job at a time."""

    def __init__(self, mode: Isolation):
        self.mode = mode
        self.cgroup: WorkerCgroup | None = None
        host_sock, child_sock = socket.socketpair()
        self.sock = host_sock
        command = command_for(mode, child_sock.fileno())
        self.host_dir = command.host_dir
        argv = command.argv
        parents = cgroup_parents()
        if parents:
            self.cgroup = WorkerCgroup(parents)
            if self.cgroup.paths:
                argv = self.cgroup.wrap(argv)
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115  (closed in close())
        try:
            self.proc = subprocess.Popen(
                argv,
                env=command.env,
                pass_fds=[child_sock.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self._errors,
                start_new_session=True,
            )
        finally:
            child_sock.close()
        try:
            header, _, _ = self._receive(_START_TIMEOUT_S)
        except WorkerError as exc:
            message = f"sandbox worker ({mode}) failed to start: {exc}; {self.startup_errors()}"
            self.close()
            raise WorkerError(message) from None
        if header.get("op") != "ready":
            self.close()
            raise WorkerError(f"sandbox worker sent {header!r} instead of 'ready'")
        if self.cgroup is not None:
            self.cgroup.keep_only_holding(self.proc.pid)
        #: whether the worker is PID 1 of its own PID namespace (it can then kill all it spawned)
        self.is_init = bool(header.get("init"))
        #: host PID of the process that forks this worker's jobs (found while it is idle)
        self.job_parent_pid = idle_worker_process(self.proc.pid)
        self.broken = False
        self.job_id = 0

    def startup_errors(self) -> str:
        with contextlib.suppress(OSError):
            self._errors.seek(0)
            text = self._errors.read(4000).decode(errors="replace").strip()
            if text:
                return f"worker stderr: {text}"
        return "no output from the worker"

    @property
    def alive(self) -> bool:
        return not self.broken and self.proc.poll() is None

    def _receive(self, timeout: float | None) -> tuple[dict[str, Any], list[bytes], list[int]]:
        self.sock.settimeout(timeout)
        try:
            return _zygote.recv_message(self.sock)
        except (TimeoutError, EOFError, OSError, ValueError) as exc:
            self.broken = True
            raise WorkerError(f"no answer from the sandbox worker ({type(exc).__name__}: {exc})") from None

    def submit(self, job: dict[str, Any], blobs: Sequence[bytes], fds: Sequence[int] = ()) -> None:
        if job.get("op") == "run":
            self.job_id += 1
            job = dict(job, id=self.job_id)
        try:
            self.sock.settimeout(_START_TIMEOUT_S)
            _zygote.send_message(self.sock, job, list(blobs), list(fds))
        except OSError as exc:
            self.broken = True
            raise WorkerError(f"could not reach the sandbox worker: {exc}") from None

    def result(self, timeout: float | None) -> tuple[dict[str, Any], list[bytes]]:
        header, blobs, _ = self._receive(timeout)
        if header.get("op") == "error":
            self.broken = True
            raise WorkerError(f"sandbox worker error: {header.get('message')}")
        if header.get("recycle"):
            self.broken = True  # the job left state behind that cleanup cannot remove
        return header, blobs

    @property
    def has_memory_cgroup(self) -> bool:
        return self.cgroup is not None and "memory" in self.cgroup.paths

    def oom_kills(self) -> int:
        return self.cgroup.oom_kills() if self.cgroup is not None else 0

    def kill_job(self) -> None:
        """Ask the worker to kill the current job (a late request cannot hit a later job)."""
        with contextlib.suppress(OSError):
            _zygote.send_message(self.sock, {"op": "kill", "id": self.job_id})

    def ping(self, timeout: float = 10.0) -> dict[str, Any]:
        self.submit({"op": "ping"}, [])
        header, _, _ = self._receive(timeout)
        return header

    def close(self) -> None:
        self.broken = True
        with contextlib.suppress(OSError):
            self.sock.close()
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                proc.kill()
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if self.cgroup is not None:
            self.cgroup.remove()
        if self.host_dir:
            shutil.rmtree(self.host_dir, ignore_errors=True)
        with contextlib.suppress(OSError):
            self._errors.close()


class WorkerPool:
    """Up to ``size`` workers, started on demand (or all at once by :meth:`start`) and reused.

    Workers are started from one long-lived thread: bubblewrap's ``--die-with-parent`` fires when
    the *thread* that started it exits, and callers' threads come and go.
    """

    def __init__(self, mode: Isolation, size: int):
        self.mode = mode
        self.size = size
        self._idle: list[Worker] = []
        self._started = 0
        self._closed = False
        self._cond = threading.Condition()
        self._launcher = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-launcher")

    def _launch(self) -> Worker:
        return self._launcher.submit(Worker, self.mode).result()

    def start(self) -> None:
        """Start every worker now (in parallel with the caller's other work)."""
        with self._cond:
            missing = self.size - self._started
            self._started += missing
        futures = [self._launcher.submit(Worker, self.mode) for _ in range(missing)]
        for future in futures:
            try:
                worker = future.result()
            except Exception:
                with self._cond:
                    self._started -= 1
                    self._cond.notify()
                raise
            self.release(worker)

    def acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise WorkerError("the sandbox is closed")
                if self._idle:
                    return self._idle.pop()
                if self._started < self.size:
                    self._started += 1
                    break
                self._cond.wait()
        try:
            return self._launch()
        except BaseException:
            with self._cond:
                self._started -= 1
                self._cond.notify()
            raise

    def release(self, worker: Worker) -> None:
        keep = worker.alive
        with self._cond:
            if keep and not self._closed:
                self._idle.append(worker)
            else:
                self._started -= 1
                keep = False
            self._cond.notify()
        if not keep:
            worker.close()

    def idle_workers(self) -> list[Worker]:
        with self._cond:
            return list(self._idle)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._cond.notify_all()
        for worker in idle:
            worker.close()
        self._launcher.shutdown(wait=True)
