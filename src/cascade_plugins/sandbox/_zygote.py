"""The worker that runs inside the sandbox: a pre-started Python process that forks one child per job.

It is started once per pool slot (inside bubblewrap, ``unshare`` or bare) and then serves jobs sent
over a Unix socket. Forking a warm interpreter costs about a millisecond, so the ~100 ms Python
start-up is paid once per worker rather than once per execution. Every job runs in a fresh child of
a pristine parent, in a fresh work directory, and everything the job started is killed and reaped
before the next job, so nothing leaks from one run to the next.

This file must stay standard-library only and self-contained: in bubblewrap mode it is the only
file of this package visible inside the sandbox. The host imports its framing helpers.

Wire format (both directions): 4-byte big-endian header length, a JSON header, then the binary
blobs whose lengths are listed in ``header["blobs"]``. File descriptors (stdin/stdout of an
interactive job) travel as ``SCM_RIGHTS`` on the first four bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import selectors
import shutil
import signal
import socket
import struct
import sys
import time
from typing import Any

_HEADER = struct.Struct(">I")
_MAX_HEADER = 16 * 1024 * 1024
_READ_CHUNK = 65536


# ---------------------------------------------------------------------------------------------
# Framing (shared with the host)
# ---------------------------------------------------------------------------------------------


#: messages whose blobs add up to at most this are sent in one piece
_JOIN_BYTES = 1 << 20


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise EOFError("peer closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def send_message(
    sock: socket.socket, header: dict[str, Any], blobs: list[bytes] = (), fds: list[int] = ()  # type: ignore[assignment]
) -> None:
    header = dict(header, blobs=[len(b) for b in blobs])
    payload = json.dumps(header, separators=(",", ":")).encode()
    prefix = _HEADER.pack(len(payload))
    if fds:
        socket.send_fds(sock, [prefix], list(fds))
        prefix = b""
    if sum(map(len, blobs)) <= _JOIN_BYTES:  # one system call (each wakes the peer) for most messages
        sock.sendall(b"".join([prefix, payload, *blobs]))
        return
    sock.sendall(prefix + payload)
    for blob in blobs:
        if blob:
            sock.sendall(blob)


def recv_message(sock: socket.socket, max_fds: int = 0) -> tuple[dict[str, Any], list[bytes], list[int]]:
    fds: list[int] = []
    if max_fds:
        data, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, max_fds)
        if not data:
            raise EOFError("peer closed the connection")
        if len(data) < _HEADER.size:
            data += _recv_exact(sock, _HEADER.size - len(data))
    else:
        data = _recv_exact(sock, _HEADER.size)
    (length,) = _HEADER.unpack(data)
    if length > _MAX_HEADER:
        raise ValueError(f"message header of {length} bytes is too large")
    header = json.loads(_recv_exact(sock, length))
    blobs = [_recv_exact(sock, n) if n else b"" for n in header.get("blobs", [])]
    return header, blobs, fds


# ---------------------------------------------------------------------------------------------
# The child: becomes the untrusted program
# ---------------------------------------------------------------------------------------------

_RLIMITS = {
    "cpu": resource.RLIMIT_CPU,
    "as": resource.RLIMIT_AS,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "nproc": resource.RLIMIT_NPROC,
    "nofile": resource.RLIMIT_NOFILE,
    "stack": resource.RLIMIT_STACK,
    "core": resource.RLIMIT_CORE,
}


def _run_python(path: str, argv: list[str], workdir: str, resident: dict[str, Any] | None = None) -> int:
    """Run ``path`` as ``__main__``; with ``resident`` (the module's namespace, its top level run
    once in the worker) call its ``main()`` instead."""
    import builtins
    import traceback
    import types

    sys.stdin = sys.__stdin__ = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stdout = sys.__stdout__ = open(1, "w", encoding="utf-8", closefd=False)  # noqa: SIM115
    sys.stderr = sys.__stderr__ = open(  # noqa: SIM115
        2, "w", encoding="utf-8", errors="backslashreplace", closefd=False, buffering=1
    )
    main = types.ModuleType("__main__")
    main.__file__ = path
    main.__builtins__ = builtins  # type: ignore[attr-defined]
    sys.modules["__main__"] = main
    sys.argv = [path, *argv]
    sys.path.insert(0, workdir)  # like a script's directory (the worker runs with -P)
    code = 0
    try:
        if resident is not None:
            resident.update(__name__="__main__", __file__=path)  # our copy of the worker's
            main.__dict__.update(resident)
            resident["main"]()
        else:
            with open(path, encoding="utf-8") as handle:
                source = handle.read()
            exec(compile(source, path, "exec"), main.__dict__)
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except BaseException as exc:
        tb = exc.__traceback__
        traceback.print_exception(type(exc), exc, tb.tb_next if tb is not None else None)  # hide this frame
        code = 1
    try:
        import threading

        threading._shutdown()  # type: ignore[attr-defined]  # join non-daemon threads, as python does
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            code = code or 120
    return code


_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38
_PR_CAP_AMBIENT = 47
_libc: Any = None


def _drop_capabilities() -> None:
    """No capabilities for the job, now or after ``exec``, and no new privileges.

    The sandbox already starts the worker without capabilities (bubblewrap's ``--cap-drop ALL``,
    ``setpriv`` under unshare); this is the second lock, in the job itself: in a user namespace made
    by root a capability left over would include CAP_SYS_PTRACE, enough to take the worker's socket
    to the host (``pidfd_getfd``) and forge later results. Best effort where there is nothing to
    drop (EPERM).
    """
    if _libc is None:
        return
    import ctypes

    _libc.prctl(_PR_SET_SECUREBITS, 0x2F, 0, 0, 0)  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS, all locked
    _libc.prctl(_PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for capability in range(64):
        if _libc.prctl(_PR_CAPBSET_DROP, capability, 0, 0, 0) != 0:
            break  # past the last capability, or nothing to drop
    # capset({_LINUX_CAPABILITY_VERSION_3, this process}, {effective, permitted, inheritable} x 2 = 0)
    _libc.capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
    _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)  # setuid binaries cannot give anything back


def _child(
    job: dict[str, Any], stdio: tuple[int, int, int], workdir: str, resident: dict[str, Any] | None = None
) -> None:
    """Runs in the forked child; never returns."""
    try:
        os.setsid()
        for sig in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGXFSZ, signal.SIGXCPU, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for target, fd in enumerate(stdio):
            if fd != target:
                os.dup2(fd, target)
        os.closerange(3, 1 << 16)
        os.chdir(workdir)
        with contextlib.suppress(OSError), open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")  # under memory pressure the kernel kills jobs, not the worker
        run_as = job.get("run_as")
        if run_as is not None:
            os.setgroups([])
            os.setgid(run_as)
            os.setuid(run_as)
        for name, (soft, hard) in job["rlimits"].items():
            resource.setrlimit(_RLIMITS[name], (soft, hard))
        _drop_capabilities()
        # The writable directories (each wiped after the job), for programs that clean up after
        # processes of their own
        scratch = ":".join(job.get("scratch") or [workdir])
        env = dict(job["env"], HOME=workdir, TMPDIR=workdir, CASCADE_SANDBOX_SCRATCH=scratch)
        os.environ.clear()
        os.environ.update(env)
        if job["mode"] == "exec":
            argv = job["argv"]
            os.execve(argv[0], argv, env)
        os._exit(_run_python(os.path.join(workdir, job["main"]), job["argv"], workdir, resident))
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            os.write(2, f"sandbox: could not start the program: {exc!r}\n".encode())
        os._exit(127)


# ---------------------------------------------------------------------------------------------
# The parent: supervises one job
# ---------------------------------------------------------------------------------------------


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` so far (user + system), from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _memory_kb(pid: int) -> int:
    """Proportional set size of ``pid`` (pages shared after a fork count once in all), else RSS."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as handle:
            for line in handle:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * _PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


_PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
#: resident programs a worker keeps loaded (more is a sign of programs made per job: start over)
_MAX_RESIDENTS = 8
#: seconds between two measurements of the job's total memory (where no memory cgroup does it)
_MEMORY_POLL_S = 0.02
#: seconds between two counts of the job's processes (where no pids cgroup caps them)
_PIDS_POLL_S = 0.01


def _count_processes() -> int:
    return sum(1 for name in os.listdir("/proc") if name.isdigit())


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
            parents[int(name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    found: list[int] = []
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent:
                found.append(pid)
                frontier.append(pid)
    return found


def _remove_tree(path: str) -> None:
    """``rm -rf`` that also gets through directories a job made unreadable (chmod 000)."""
    with contextlib.suppress(OSError):  # the common case: a folder of plain files
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    raise IsADirectoryError(entry.path)
                os.unlink(entry.path)
        os.rmdir(path)
        return
    shutil.rmtree(path, ignore_errors=True)
    if not os.path.lexists(path) or os.path.islink(path):
        return
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
        for parent, dirs, _files in os.walk(path):  # top-down: fix children before descending
            for name in dirs:
                child = os.path.join(parent, name)
                if not os.path.islink(child):  # the job is dead: nothing can swap it for a link now
                    with contextlib.suppress(OSError):
                        os.chmod(child, 0o700)
    shutil.rmtree(path, ignore_errors=True)


class Zygote:
    def __init__(self, sock: socket.socket, jobs_root: str, wipe: list[str], run_as: int | None = None):
        self.sock = sock
        self.jobs_root = jobs_root
        self.wipe = wipe
        self.is_init = os.getpid() == 1
        self.counter = 0
        #: the unprivileged uid jobs run as (a root host without namespaces), else None
        self.run_as = run_as
        #: top-level namespaces of resident programs, by a hash of their source
        self.residents: dict[bytes, dict[str, Any] | None] = {}
        #: one selector for every job (the host's socket stays registered)
        self.selector = selectors.DefaultSelector()
        self.selector.register(sock, selectors.EVENT_READ)

    def job_processes(self) -> int:
        """Processes the current job runs: everything in our PID namespace but us, or else our
        descendants (orphans come back to us as the child subreaper)."""
        if self.is_init:
            return _count_processes() - 1
        return len(_descendants(os.getpid()))

    def job_memory_kb(self, root: int) -> int:
        """Memory of every process of the current job together."""
        if self.is_init:
            pids = [int(name) for name in os.listdir("/proc") if name.isdigit() and name != "1"]
        else:
            pids = [root, *_descendants(root)]
        return sum(_memory_kb(pid) for pid in pids)

    # -- cleanup --------------------------------------------------------------------------

    def kill_everything(self, pgid: int | None) -> None:
        """Kill every process the job left behind and reap them all."""
        if self.is_init:
            # As PID 1 of the namespace, kill(-1) reaches every other process in it and nothing
            # outside; a process that is mid-fork cannot finish forking once SIGKILL is pending.
            with contextlib.suppress(ProcessLookupError):
                os.kill(-1, signal.SIGKILL)
        else:
            if pgid is not None:
                with contextlib.suppress(OSError):
                    os.killpg(pgid, signal.SIGKILL)
            # We are a child subreaper: orphans of the job are re-parented to us.
            for _ in range(50):
                pids = _descendants(os.getpid())
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(OSError):
                        os.kill(pid, signal.SIGKILL)
                self.reap(block=False)
        self.reap(block=True)

    @staticmethod
    def reap(block: bool) -> None:
        while True:
            try:
                pid, _status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    def clean_filesystem(self, workdir: str) -> bool:
        """Delete the job's files; ``False`` if something could not be deleted."""
        _remove_tree(workdir)
        clean = not os.path.lexists(workdir)
        for root in self.wipe:
            with contextlib.suppress(OSError):
                for entry in os.scandir(root):
                    if entry.is_dir(follow_symlinks=False):
                        _remove_tree(entry.path)
                    else:
                        with contextlib.suppress(OSError):
                            os.unlink(entry.path)
                clean = clean and not any(True for _ in os.scandir(root))
        return clean

    @staticmethod
    def ipc_leftovers() -> bool:
        with contextlib.suppress(OSError):
            if os.listdir("/dev/mqueue"):  # POSIX queues outlive their creators
                return True
        for kind in ("shm", "sem", "msg"):
            try:
                fd = os.open(f"/proc/sysvipc/{kind}", os.O_RDONLY)
            except OSError:
                continue
            try:
                if os.read(fd, 1 << 16).count(b"\n") > 1:  # more than the header line
                    return True
            except OSError:
                continue
            finally:
                os.close(fd)
        return False

    # -- one job --------------------------------------------------------------------------

    def resident(self, source: bytes) -> dict[str, Any] | None:
        """The namespace of a resident program, its top level run here once (only definitions
        and imports: every job forks from us); ``None`` if that fails, and then each job runs
        the file itself, so the program's own traceback says why."""
        import hashlib

        key = hashlib.sha256(source).digest()
        if key not in self.residents:
            if len(self.residents) >= _MAX_RESIDENTS:
                self.residents.clear()
            namespace: dict[str, Any] | None = {"__name__": "__resident__", "__builtins__": __builtins__}
            import io

            try:  # what the top level prints is not any job's output
                with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                    exec(compile(source, "main.py", "exec"), namespace)
                if not callable(namespace.get("main")):
                    namespace = None
            except BaseException:
                namespace = None
            self.residents[key] = namespace
            import gc

            gc.freeze()  # what we just made is shared with every job too
        return self.residents[key]

    def run_job(self, job: dict[str, Any], blobs: list[bytes], fds: list[int]) -> None:
        self.counter += 1
        workdir = os.path.join(self.jobs_root, f"job{self.counter}")
        if os.path.exists(workdir):
            shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir, mode=0o755)
        for name, index, mode in job["files"]:
            path = os.path.join(workdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as handle:
                handle.write(blobs[index])
            os.chmod(path, mode)
        if self.run_as is not None:
            for root, dirs, names in os.walk(workdir):
                for name in [*dirs, *names]:
                    os.chown(os.path.join(root, name), self.run_as, self.run_as)
            os.chown(workdir, self.run_as, self.run_as)
            os.chmod(workdir, 0o700)
            job = dict(job, run_as=self.run_as)

        fd_iter = iter(fds)
        to_close: list[int] = []
        stdin_data = b""
        if job["stdin"] == "fd":
            child_stdin = next(fd_iter)
            to_close.append(child_stdin)
            stdin_writer = None
        else:
            stdin_data = blobs[job["stdin_blob"]] if job.get("stdin_blob") is not None else b""
            child_stdin, stdin_writer = os.pipe()
            to_close.append(child_stdin)
        if job["stdout"] == "fd":
            child_stdout = next(fd_iter)
            to_close.append(child_stdout)
            stdout_reader = None
        else:
            stdout_reader, child_stdout = os.pipe()
            to_close.append(child_stdout)
        stderr_reader, child_stderr = os.pipe()
        to_close.append(child_stderr)

        job = dict(job, scratch=self.wipe)
        resident = None
        if job["mode"] == "resident":
            index = next(index for name, index, _mode in job["files"] if name == job["main"])
            resident = self.resident(blobs[index])
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:
            _child(job, (child_stdin, child_stdout, child_stderr), workdir, resident)
        for fd in to_close:
            os.close(fd)
        outcome = self.supervise(job, pid, started, stdin_writer, stdin_data, stdout_reader, stderr_reader)
        collected: list[bytes] = []
        names: list[str] = []
        for name in job.get("collect", []):
            path = os.path.join(workdir, name)
            try:
                if os.path.getsize(path) <= job["collect_limit"]:
                    with open(path, "rb") as handle:
                        collected.append(handle.read())
                    names.append(name)
            except OSError:
                continue
        clean = self.clean_filesystem(workdir)
        outcome["collected"] = names
        # Only a private IPC namespace says anything about this job (the host's is shared).
        outcome["recycle"] = not clean or (self.is_init and self.ipc_leftovers())
        stdout, stderr = outcome.pop("stdout"), outcome.pop("stderr")
        send_message(self.sock, dict(outcome, op="result"), [stdout, stderr, *collected])

    def supervise(
        self,
        job: dict[str, Any],
        pid: int,
        started: float,
        stdin_writer: int | None,
        stdin_data: bytes,
        stdout_reader: int | None,
        stderr_reader: int,
    ) -> dict[str, Any]:
        deadline = started + job["wall_time_s"]
        cpu_limit = job["cpu_time_s"]
        # RLIMIT_CPU only counts whole seconds: poll the CPU clock, first when a single thread could
        # have spent half the budget, then ever more often as it runs out.
        next_cpu_check = started + cpu_limit / 2
        output_cap = job["output_bytes"]
        watch_pids = job.get("watch_pids")
        memory_cap_kb = job.get("memory_backstop_kb")
        next_memory_check = started + _MEMORY_POLL_S
        next_pids_check = started + _PIDS_POLL_S
        selector = self.selector
        for key in list(selector.get_map().values()):  # left over if the last job failed midway
            if key.fileobj is not self.sock:
                selector.unregister(key.fileobj)
        buffers: dict[int, bytearray] = {}
        for fd in (stdout_reader, stderr_reader):
            if fd is not None:
                os.set_blocking(fd, False)
                selector.register(fd, selectors.EVENT_READ)
                buffers[fd] = bytearray()
        stdin_view = memoryview(stdin_data)
        if stdin_writer is not None:
            os.set_blocking(stdin_writer, False)
            if stdin_data:
                selector.register(stdin_writer, selectors.EVENT_WRITE)
            else:
                os.close(stdin_writer)
                stdin_writer = None
        try:
            pidfd = os.pidfd_open(pid)
            selector.register(pidfd, selectors.EVENT_READ)
        except (AttributeError, OSError):
            pidfd = None

        reason = ""
        total_output = 0
        status = None
        rusage = None
        while status is None:
            now = time.monotonic()
            if now >= deadline:
                reason = "wall"
                break
            if now >= next_cpu_check:
                used = _cpu_seconds(pid)
                if used > cpu_limit:
                    reason = "cpu"
                    break
                next_cpu_check = now + max(0.01, (cpu_limit - used) / 2)
            if memory_cap_kb and now >= next_memory_check:
                if self.job_memory_kb(pid) > memory_cap_kb:
                    reason = "memory"
                    break
                next_memory_check = now + _MEMORY_POLL_S
            timeout = min(deadline, next_cpu_check) - now
            if pidfd is None:
                timeout = min(timeout, 0.01)
            if watch_pids:
                timeout = min(timeout, max(0.0, next_pids_check - now))
            if memory_cap_kb:
                timeout = min(timeout, max(0.0, next_memory_check - now))
            for key, _events in selector.select(timeout):
                fd = key.fd
                if fd == pidfd:
                    continue
                if key.fileobj is self.sock:
                    try:
                        message, _, _ = recv_message(self.sock)
                    except (EOFError, OSError):
                        reason = "host_gone"
                        break
                    if message.get("op") == "kill" and message.get("id") == job.get("id"):
                        reason = "killed"
                    continue
                if fd == stdin_writer:
                    try:
                        written = os.write(fd, stdin_view[:_READ_CHUNK])
                    except BlockingIOError:
                        continue
                    except OSError:  # the program closed its stdin
                        written = len(stdin_view)
                    stdin_view = stdin_view[written:]
                    if not stdin_view:
                        selector.unregister(fd)
                        os.close(fd)
                        stdin_writer = None
                    continue
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(fd)
                    continue
                total_output += len(chunk)
                room = output_cap - sum(len(b) for b in buffers.values())
                buffers[fd] += chunk[: max(room, 0)]
                if total_output > output_cap:
                    reason = "output"
            if reason:
                break
            if watch_pids and now >= next_pids_check:
                if self.job_processes() > watch_pids:
                    reason = "processes"
                    break
                next_pids_check = now + _PIDS_POLL_S
            waited, wstatus, usage = os.wait4(pid, os.WNOHANG)
            if waited == pid:
                status, rusage = wstatus, usage
        ended = time.monotonic()
        if status is None:
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            _, status, rusage = os.wait4(pid, 0)
            ended = time.monotonic()
        self.kill_everything(pid)
        # Every writer is dead now: drain what is left in the pipes, still within the cap.
        for fd, buffer in buffers.items():
            while True:
                try:
                    chunk = os.read(fd, _READ_CHUNK)
                except OSError:
                    break
                if not chunk:
                    break
                total_output += len(chunk)
                room = output_cap - sum(len(b) for b in buffers.values())
                buffer += chunk[: max(room, 0)]
        if total_output > output_cap and not reason:
            reason = "output"
        for key in list(selector.get_map().values()):
            if key.fileobj is not self.sock:
                selector.unregister(key.fileobj)
        for fd in [*buffers, stdin_writer, pidfd]:
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        assert rusage is not None
        return {
            "exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
            "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
            "cpu_time_s": rusage.ru_utime + rusage.ru_stime,
            "wall_time_s": ended - started,
            "peak_memory_kb": rusage.ru_maxrss,
            "reason": reason,
            "stdout": bytes(buffers[stdout_reader]) if stdout_reader is not None else b"",
            "stderr": bytes(buffers[stderr_reader]),
        }

    # -- the serve loop -------------------------------------------------------------------

    def serve(self) -> None:
        send_message(self.sock, {"op": "ready", "init": self.is_init, "pid": os.getpid()})
        while True:
            try:
                job, blobs, fds = recv_message(self.sock, max_fds=2)
            except (EOFError, ConnectionError):
                return
            op = job.get("op")
            if op == "run":
                try:
                    self.run_job(job, blobs, fds)
                except Exception as exc:
                    with contextlib.suppress(Exception):
                        self.kill_everything(None)
                    send_message(self.sock, {"op": "error", "message": f"{type(exc).__name__}: {exc}"})
            elif op == "ping":
                send_message(self.sock, {"op": "pong", "processes": _count_processes() if self.is_init else None})
            elif op == "kill":
                continue  # a kill that arrived after its job ended
            else:
                send_message(self.sock, {"op": "error", "message": f"unknown op {op!r}"})


def _preload() -> None:
    """Import what solutions commonly use, so a forked child finds them already loaded."""
    import array  # noqa: F401
    import bisect  # noqa: F401
    import collections  # noqa: F401
    import copy  # noqa: F401
    import dataclasses  # noqa: F401
    import datetime  # noqa: F401
    import decimal  # noqa: F401
    import fractions  # noqa: F401
    import functools  # noqa: F401
    import heapq  # noqa: F401
    import itertools  # noqa: F401
    import math  # noqa: F401
    import operator  # noqa: F401
    import random  # noqa: F401
    import re  # noqa: F401
    import statistics  # noqa: F401
    import string  # noqa: F401
    import threading  # noqa: F401
    import traceback  # noqa: F401
    import types  # noqa: F401
    import typing  # noqa: F401


def main(argv: list[str]) -> None:
    sock = socket.socket(fileno=int(argv[1]))
    run_as = os.environ.pop("CASCADE_SANDBOX_RUN_AS", None)
    jobs_root = argv[2]
    wipe = [path for path in argv[3:] if path]
    os.makedirs(jobs_root, exist_ok=True)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    global _libc
    try:  # children may not ptrace us or read our memory/fds through /proc
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
        if os.getpid() != 1:
            _libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    except Exception:
        _libc = None
    _preload()
    import gc

    gc.collect()
    gc.freeze()  # keep the forked children from copying pages just to update GC headers
    Zygote(sock, jobs_root, wipe, int(run_as) if run_as else None).serve()


if __name__ == "__main__":
    main(sys.argv)
