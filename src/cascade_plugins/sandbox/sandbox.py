"""The public entry point: :class:`Sandbox` prepares, runs and spawns untrusted programs."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from cascade_plugins.sandbox.activity import Activity, job_activity
from cascade_plugins.sandbox.isolation import resolve, worker_env
from cascade_plugins.sandbox.limits import (
    COMPILE_LIMITS,
    ExecResult,
    Isolation,
    IsolationSetting,
    Limits,
    Program,
    Verdict,
)
from cascade_plugins.sandbox.pool import _GRACE_S, Worker, WorkerError, WorkerPool
from cascade_plugins.sandbox.verdicts import classify

_LANGUAGES = {"python": "python", "python3": "python", "py": "python", "cpp": "cpp", "c++": "cpp"}
#: C++ dialects a language name may ask for (``c++20``, ``cpp20``, ``gnu++20``, ``c++2a``...), as
#: judges compile them: with GNU extensions
_CXX_DIALECT = re.compile(r"^(?:c\+\+|cpp|cxx|gnu\+\+|g\+\+)(11|14|17|20|23|2a|2b)$")
_CXX_ALIASES = {"2a": "20", "2b": "23"}
DEFAULT_CXX_STANDARD = "gnu++17"
#: no source lines echoed back in diagnostics (``-fdiagnostics-plain-output``): an ``#include``
#: of a file is not a way to print it
_CXX_FLAGS = ("-O2", "-pipe", "-fdiagnostics-plain-output", "-fmax-errors=20")
_BINARY = "prog"
_PY_MAIN = "main.py"
_CXX_MAIN = "main.cpp"
#: a job whose worker dies or stops answering runs again on a fresh worker this many times
INFRASTRUCTURE_RETRIES = 2
_COMPILE_CACHE_SIZE = 256
_COMPILE_CACHE_BYTES = 128 * 1024 * 1024


def normalize_language(language: str) -> str:
    return language_and_standard(language)[0]


def language_and_standard(language: str) -> tuple[str, str | None]:
    """``("python", None)``, ``("cpp", "gnu++17")``, ``("cpp", "gnu++20")`` for ``"c++20"``..."""
    name = language.strip().lower() if isinstance(language, str) else ""
    if name in _LANGUAGES:
        lang = _LANGUAGES[name]
        return lang, (DEFAULT_CXX_STANDARD if lang == "cpp" else None)
    dialect = _CXX_DIALECT.match(name)
    if dialect is not None:
        version = dialect.group(1)
        return "cpp", f"gnu++{_CXX_ALIASES.get(version, version)}"
    raise ValueError(f"unsupported language {language!r}: use 'python', 'cpp' or a C++ dialect such as 'c++20'")


_DIAGNOSTIC_LOCATION = re.compile(rb"^(?:In file included from |\s+from )?(/[^:\n]*):\d+")
#: headers whose lines a diagnostic may quote: the compiler's own, public to every program
_SYSTEM_HEADERS = (b"/usr/include/", b"/usr/lib/gcc/", b"/usr/local/include/")


def _hide_foreign_diagnostics(stderr: bytes) -> bytes:
    """Drop compiler diagnostics located in files outside the program (``#include "/etc/passwd"``
    makes g++ quote that file's tokens in its errors) and system headers aside."""
    kept: list[bytes] = []
    dropped = 0
    for line in stderr.splitlines(keepends=True):
        where = _DIAGNOSTIC_LOCATION.match(line)
        if where is not None and not where.group(1).startswith(_SYSTEM_HEADERS):
            dropped += 1
            continue
        kept.append(line)
    if dropped:
        kept.append(f"({dropped} diagnostics about files outside the program are not shown)\n".encode())
    return b"".join(kept)


def _as_bytes(data: bytes | str | None) -> bytes:
    if data is None:
        return b""
    return data.encode() if isinstance(data, str) else bytes(data)


def _check_file_name(name: str) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"sandbox file name {name!r} must be a relative path without '..'")
    return name


class Sandbox:
    """Runs untrusted Python and C++ programs in isolated, pre-started workers.

    ``isolation``: ``"auto"`` (bubblewrap, else unshare, else rlimits with a warning),
    ``"required"`` (raise :class:`SandboxUnavailable` unless namespace isolation works) or
    ``"none"`` (rlimits only; for trusted code). ``max_workers`` bounds parallel executions
    (default: the number of CPUs). Thread-safe; picklable (workers restart lazily after unpickling).
    """

    def __init__(self, isolation: IsolationSetting = "auto", max_workers: int | None = None):
        if max_workers is not None and max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, got {max_workers}")
        self.isolation: IsolationSetting = isolation
        self.max_workers = max_workers or os.cpu_count() or 1
        self.isolation_mode: Isolation = resolve(isolation)
        self._pool: WorkerPool | None = None
        self._lock = threading.Lock()
        self._compiled: OrderedDict[str, Program] = OrderedDict()

    # -- lifecycle ------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"isolation": self.isolation, "max_workers": self.max_workers}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__(state["isolation"], state["max_workers"])  # type: ignore[misc]

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _workers(self) -> WorkerPool:
        with self._lock:
            if self._pool is None:
                self._pool = WorkerPool(self.isolation_mode, self.max_workers)
            return self._pool

    def start(self) -> None:
        """Start all workers now instead of on first use."""
        self._workers().start()

    def close(self) -> None:
        """Stop every worker; the sandbox starts new ones if it is used again."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- programs -------------------------------------------------------------------------

    def prepare(
        self,
        source: str,
        language: str,
        *,
        extra_files: Mapping[str, bytes] | None = None,
        compile_limits: Limits | None = None,
    ) -> Program:
        """A runnable program; C++ is compiled here, once (failures give a ``CE`` compile_result).

        ``language``: ``python``, ``cpp`` (``gnu++17``) or a C++ dialect (``c++20``, ``gnu++23``).
        """
        if not isinstance(source, str):
            raise TypeError(f"program source must be a string, got {type(source).__name__}")
        lang, standard = language_and_standard(language)
        files = {_check_file_name(k): _as_bytes(v) for k, v in (extra_files or {}).items()}
        if lang == "python" or standard is None:
            return Program("python", source, files)
        key = hashlib.sha256(repr((source, standard, sorted(files.items()), compile_limits)).encode()).hexdigest()
        with self._lock:
            cached = self._compiled.get(key)
            if cached is not None:
                self._compiled.move_to_end(key)
                return cached
        program = self._compile(source, files, compile_limits or COMPILE_LIMITS, standard)
        outcome = program.compile_result
        # Cache what the compiler decided, not what a loaded machine or a broken sandbox caused.
        if outcome is not None and (outcome.verdict == Verdict.OK or outcome.exit_code not in (None, 0)):
            with self._lock:
                self._compiled[key] = program
                while len(self._compiled) > _COMPILE_CACHE_SIZE or (
                    len(self._compiled) > 1 and self._cached_bytes() > _COMPILE_CACHE_BYTES
                ):
                    self._compiled.popitem(last=False)
        return program

    def _cached_bytes(self) -> int:
        return sum(len(p.binary or b"") for p in self._compiled.values())

    def _compile(self, source: str, files: dict[str, bytes], limits: Limits, standard: str) -> Program:
        compiler = shutil.which("g++")
        if compiler is None:
            return Program("cpp", source, files, None, ExecResult.sandbox_error("g++ is not installed"))
        argv = [compiler, f"-std={standard}", *_CXX_FLAGS, "-o", _BINARY, _CXX_MAIN]
        all_files = {**files, _CXX_MAIN: source.encode()}
        raw = self._execute("exec", argv, all_files, b"", limits, collect=[_BINARY])
        if isinstance(raw, ExecResult):
            return Program("cpp", source, files, None, raw)
        result = self._to_result(raw, limits)
        binary = raw["collected"].get(_BINARY)
        if result.verdict == Verdict.OK and binary:
            return Program("cpp", source, files, binary, result)
        why = result.message or "the compiler failed"
        ce = ExecResult(
            Verdict.CE,
            result.exit_code,
            result.signal,
            result.stdout,
            _hide_foreign_diagnostics(result.stderr),
            result.cpu_time_s,
            result.wall_time_s,
            result.peak_memory_kb,
            f"compilation failed: {why}" if result.verdict != Verdict.OK else "compilation produced no binary",
        )
        return Program("cpp", source, files, None, ce)

    # -- running --------------------------------------------------------------------------

    def _job_for(
        self, program: Program, argv: Sequence[str], files: Mapping[str, bytes]
    ) -> tuple[str, list[str], dict[str, bytes]]:
        all_files = {**program.extra_files, **{_check_file_name(k): _as_bytes(v) for k, v in files.items()}}
        if program.language == "python":
            all_files[_PY_MAIN] = program.source.encode()
            return "resident" if program.resident else "python", list(argv), all_files
        if program.binary is None:
            raise ValueError("C++ program has no binary: build it with Sandbox.prepare")
        all_files[_BINARY] = program.binary
        return "exec", [f"./{_BINARY}", *argv], all_files

    def _watch_pids(self, worker: Worker, limits: Limits) -> int | None:
        """Process cap enforced by the worker itself when neither rlimits nor a cgroup bind."""
        if worker.cgroup is not None:
            worker.cgroup.apply(limits.max_processes, limits.total_memory_mb)
            if worker.cgroup.limits_processes:
                return None
        if os.geteuid() == 0:  # RLIMIT_NPROC does not bind uid 0
            return limits.max_processes
        return None

    def _build(
        self,
        worker: Worker,
        mode: str,
        argv: list[str],
        files: Mapping[str, bytes],
        stdin: bytes,
        stdin_fd: int | None,
        stdout_fd: int | None,
        limits: Limits,
        collect: Sequence[str] = (),
    ) -> tuple[dict[str, Any], list[bytes], list[int]]:
        blobs: list[bytes] = []
        fds: list[int] = []
        file_specs = []
        for name, data in files.items():
            executable = name == _BINARY and mode == "exec"
            file_specs.append([name, len(blobs), 0o755 if executable else 0o644])
            blobs.append(data)
        job: dict[str, Any] = {
            "op": "run",
            "mode": mode,
            "argv": argv,
            "main": _PY_MAIN,
            "files": file_specs,
            "env": worker_env(),
            "rlimits": limits.rlimits(),
            "wall_time_s": limits.wall_s,
            "cpu_time_s": limits.cpu_time_s,
            "output_bytes": limits.output_bytes,
            "collect": list(collect),
            "collect_limit": limits.file_size_mb * 1024 * 1024,
            "watch_pids": self._watch_pids(worker, limits),
            # Without a memory cgroup the worker itself adds up the job's processes' memory.
            "memory_backstop_kb": None if worker.has_memory_cgroup else limits.total_memory_mb * 1024,
        }
        if stdin_fd is not None:
            job["stdin"] = "fd"
            fds.append(stdin_fd)
        else:
            job["stdin"] = "data"
            job["stdin_blob"] = len(blobs)
            blobs.append(stdin)
        if stdout_fd is not None:
            job["stdout"] = "fd"
            fds.append(stdout_fd)
        else:
            job["stdout"] = "capture"
        return job, blobs, fds

    @staticmethod
    def _parse(header: dict[str, Any], blobs: list[bytes], oom_killed: bool = False) -> dict[str, Any]:
        raw = dict(header, oom_killed=oom_killed)
        raw["stdout"], raw["stderr"] = blobs[0], blobs[1]
        raw["collected"] = dict(zip(header.get("collected", []), blobs[2:], strict=False))
        return raw

    @staticmethod
    def _to_result(raw: Mapping[str, Any], limits: Limits) -> ExecResult:
        verdict, message = classify(raw, limits)
        return ExecResult(
            verdict,
            raw.get("exit_code"),
            raw.get("signal"),
            raw["stdout"],
            raw["stderr"],
            float(raw.get("cpu_time_s", 0.0)),
            float(raw.get("wall_time_s", 0.0)),
            int(raw.get("peak_memory_kb", 0)),
            message,
        )

    def _execute(
        self,
        mode: str,
        argv: list[str],
        files: Mapping[str, bytes],
        stdin: bytes,
        limits: Limits,
        collect: Sequence[str] = (),
    ) -> dict[str, Any] | ExecResult:
        pool = self._workers()
        failures: list[str] = []
        for _attempt in range(1 + INFRASTRUCTURE_RETRIES):
            try:
                worker = pool.acquire()
            except WorkerError as exc:
                failures.append(str(exc))
                continue
            try:
                job, blobs, fds = self._build(worker, mode, argv, files, stdin, None, None, limits, collect)
                oom_before = worker.oom_kills()
                worker.submit(job, blobs, fds)
                header, out = worker.result(limits.wall_s + _GRACE_S)
                return self._parse(header, out, worker.oom_kills() > oom_before)
            except WorkerError as exc:  # the worker died or hung: not the program's doing, try again
                failures.append(str(exc))
            finally:
                pool.release(worker)
        return ExecResult.sandbox_error(f"failed {len(failures)} times: {failures[-1]}")

    def run(
        self,
        program: Program,
        stdin: bytes | str = b"",
        *,
        argv: Sequence[str] = (),
        files: Mapping[str, bytes] | None = None,
        limits: Limits | None = None,
    ) -> ExecResult:
        """Run ``program`` once with ``stdin``; stdout and stderr are captured (capped)."""
        limits = limits or Limits()
        if program.compile_failed:
            assert program.compile_result is not None
            return program.compile_result
        mode, full_argv, all_files = self._job_for(program, argv, files or {})
        raw = self._execute(mode, full_argv, all_files, _as_bytes(stdin), limits)
        if isinstance(raw, ExecResult):
            return raw
        return self._to_result(raw, limits)

    def run_many(
        self,
        program: Program,
        inputs: Sequence[bytes | str],
        *,
        limits: Limits | None = None,
        stop_on_failure: bool = True,
        argv: Sequence[str] = (),
        files: Mapping[str, bytes] | None = None,
    ) -> list[ExecResult]:
        """Run ``program`` once per input, in parallel up to ``max_workers``.

        With ``stop_on_failure`` the first non-OK result (in input order) ends the batch: inputs
        after it are reported ``SKIPPED`` (whether or not they had already started), so the
        outcome does not depend on scheduling.
        """
        limits = limits or Limits()
        if program.compile_failed:
            assert program.compile_result is not None
            return [program.compile_result] * len(inputs)
        results: list[ExecResult | None] = [None] * len(inputs)
        first_failure = [len(inputs)]
        guard = threading.Lock()

        def one(index: int) -> None:
            with guard:
                if stop_on_failure and index > first_failure[0]:
                    return
            result = self.run(program, inputs[index], argv=argv, files=files, limits=limits)
            results[index] = result
            if not result.ok:
                with guard:
                    first_failure[0] = min(first_failure[0], index)

        if len(inputs) <= 1 or self.max_workers == 1:
            for index in range(len(inputs)):
                one(index)
        else:
            with ThreadPoolExecutor(min(self.max_workers, len(inputs))) as executor:
                for future in [executor.submit(one, i) for i in range(len(inputs))]:
                    future.result()
        cut = first_failure[0] if stop_on_failure else len(inputs)
        return [
            r if (i <= cut and r is not None) else ExecResult.skipped()
            for i, r in enumerate(results)
        ]

    def spawn(
        self,
        program: Program,
        *,
        stdin: int | None = None,
        stdout: int | None = None,
        limits: Limits | None = None,
        argv: Sequence[str] = (),
        files: Mapping[str, bytes] | None = None,
    ) -> SandboxProcess:
        """Start ``program`` with the given descriptors as its stdin/stdout and return at once.

        ``None`` means empty stdin / captured stdout. The worker holds its own copies of the
        descriptors, so close yours once the program is started (as with ``subprocess``).
        """
        limits = limits or Limits()
        if program.compile_failed:
            assert program.compile_result is not None
            return SandboxProcess(None, None, limits, program.compile_result)
        mode, full_argv, all_files = self._job_for(program, argv, files or {})
        pool = self._workers()
        try:
            worker = pool.acquire()
        except WorkerError as exc:
            return SandboxProcess(None, None, limits, ExecResult.sandbox_error(str(exc)))
        try:
            job, blobs, fds = self._build(worker, mode, full_argv, all_files, b"", stdin, stdout, limits)
            oom_before = worker.oom_kills()
            worker.submit(job, blobs, fds)
        except WorkerError as exc:
            pool.release(worker)
            return SandboxProcess(None, None, limits, ExecResult.sandbox_error(str(exc)))
        return SandboxProcess(pool, worker, limits, oom_before=oom_before)

    # -- introspection (tests, health checks) ---------------------------------------------

    def health(self) -> list[dict[str, Any]]:
        """Ping every idle worker: ``[{"pid": host pid, "processes": processes in its sandbox}]``."""
        report = []
        pool = self._workers()
        for worker in pool.idle_workers():
            try:
                answer = worker.ping()
                report.append({"pid": worker.proc.pid, "alive": True, "processes": answer.get("processes")})
            except WorkerError:
                report.append({"pid": worker.proc.pid, "alive": False, "processes": None})
        return report

    def worker_pids(self) -> list[int]:
        """Host PIDs of the idle workers' root processes (everything a job starts descends from one)."""
        pool = self._pool
        return [w.proc.pid for w in pool.idle_workers()] if pool is not None else []


class SandboxProcess:
    """A running sandboxed program started by :meth:`Sandbox.spawn`."""

    def __init__(
        self,
        pool: WorkerPool | None,
        worker: Worker | None,
        limits: Limits,
        result: ExecResult | None = None,
        oom_before: int = 0,
    ):
        self._oom_before = oom_before
        self._pool = pool
        self._worker = worker
        self._limits = limits
        self._result = result
        self._lock = threading.Lock()

    def wait(self) -> ExecResult:
        """Wait for the program to end (the worker enforces its limits) and return its result."""
        with self._lock:
            if self._result is not None:
                return self._result
            assert self._worker is not None and self._pool is not None
            try:
                header, blobs = self._worker.result(self._limits.wall_s + _GRACE_S)
                oom_killed = self._worker.oom_kills() > self._oom_before
                self._result = Sandbox._to_result(Sandbox._parse(header, blobs, oom_killed), self._limits)
            except WorkerError as exc:
                self._result = ExecResult.sandbox_error(str(exc))
            finally:
                self._pool.release(self._worker)
                self._worker = None
            return self._result

    def kill(self) -> None:
        """Kill the program and everything it started (``wait`` then reports it)."""
        worker = self._worker
        if worker is not None and self._result is None:
            worker.kill_job()

    def activity(self) -> Activity | None:
        """Seconds the program's processes have so far spent on a CPU and waiting for one;
        ``None`` once it has ended or where the host cannot tell. A blocked program (on a pipe,
        in ``sleep``) adds to neither, one held up by a busy machine adds to the waiting."""
        worker = self._worker
        if worker is None or self._result is not None or worker.job_parent_pid is None:
            return None
        return job_activity(worker.job_parent_pid)

    @property
    def done(self) -> bool:
        return self._result is not None

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._result is None:
            self.kill()
            self.wait()
