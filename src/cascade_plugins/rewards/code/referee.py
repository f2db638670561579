"""The program the ``code`` reward runs in the sandbox for call-based, assert and HumanEval tests.

It must stay standard-library only and self-contained: the sandbox runs this file as ``main.py``.
The host imports it only for its codec (:func:`encode`, :func:`decode`) and for tests.

One sandboxed job, two processes that share nothing but one socket:

* the **referee** (the job's main process) holds the tests. It reads them from stdin, runs the
  test code (HumanEval ``check``, assert statements, call-based argument lists), and writes one
  verdict record per test to a private copy of its stdout, each prefixed by a token that came
  with the tests;
* the **contestant** is forked *before* the referee reads anything, so its memory never held the
  tests, the token or the records. It holds no capability (the referee dropped them all before
  it forked anything, and checks each contestant; the referee is not dumpable, so the
  contestant can neither trace it nor open its ``/proc`` entries), keeps only the socket (stdin
  and stdout are ``/dev/null``; stderr is shared, for tracebacks), loads the solution and calls
  its functions when the referee asks.

The test code sees the solution's functions as :class:`Remote` proxies. A call sends the
arguments over the socket and waits for the answer under the test's CPU and wall budget (the
referee reads the contestant's CPU clock from ``/proc``). Values cross as tagged JSON: ``None``,
``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, ``list``, ``tuple``, ``dict``,
``set`` and ``frozenset``; the referee decodes what the contestant sends into exactly these
built-in types, so the tests only ever compare plain data, never an object of the solution.
Names the test code uses but does not define (the entry point, MBPP's functions) are looked up
in the contestant; built-in names never are, except the declared entry point.

Frames on the socket: a 4-byte big-endian length, then a JSON object. The contestant first
sends ``{"id": 0, "ready": true}``.
Referee -> contestant: ``{"op": "load", "id": n, "source", "setup", "names", "method"}`` (the
reply lists which of ``names`` the solution defines) and ``{"op": "call", "id": n, "name",
"args", "kwargs", "method"}``. Contestant -> referee: ``{"id": n, ...}`` with exactly one of
``loaded``, ``load_failed``, ``value``, ``raised``, ``unencodable`` or ``interrupted``, plus
optional ``events`` (what it noticed the solution do; telemetry only, never part of a verdict).
Anything else is a protocol violation and fails the test.
"""

from __future__ import annotations

import _signal
import atexit
import builtins
import contextlib
import gc
import json
import os
import select
import shutil
import signal
import socket
import struct
import sys
import time
import types
from collections.abc import Callable
from typing import Any, ClassVar

_FRAME = struct.Struct(">I")
_RECV_CHUNK = 1 << 16
#: exact types that encode as themselves
_PLAIN = frozenset({int, float, str, bool, type(None)})
#: fd the contestant's socket is moved to (0, 1 are /dev/null, 2 is the shared stderr)
_CONTESTANT_FD = 3
_SIGUSR1 = int(signal.SIGUSR1)
_OPEN_MAX = os.sysconf("SC_OPEN_MAX")
#: seconds a contestant gets to answer an interrupt before it is killed
_INTERRUPT_GRACE_S = 0.5
#: how many characters of an error message are kept
_MESSAGE_CHARS = 2000

#: exceptions the solution raises that reach the test code as themselves (others as SolutionError)
_RERAISED = frozenset(
    {
        "ArithmeticError", "AssertionError", "AttributeError", "IndexError", "KeyError", "LookupError",
        "NameError", "NotImplementedError", "OverflowError", "RecursionError", "RuntimeError", "TypeError",
        "UnboundLocalError", "UnicodeError", "ValueError", "ZeroDivisionError",
    }
)  # fmt: skip
#: what the contestant may report it saw (anything else it sends there is dropped)
EVENT_NAMES = frozenset(
    {
        "frame access", "gc scan", "tracing hook", "ctypes", "signals another process", "starts a process",
        "opens /proc", "patched builtins", "patched the harness", "atexit handler", "signal handler",
        "exit called",
    }
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Values across the process boundary
# ---------------------------------------------------------------------------------------------


class Unencodable(Exception):
    """A value of a type that cannot cross the process boundary."""


class Remote:
    """A function of the solution, as the test code sees it: calling it asks the contestant."""

    __slots__ = ("_name", "_referee")

    def __init__(self, referee: Referee, name: str):
        self._referee = referee
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._referee.call(self._name, args, kwargs)

    def __repr__(self) -> str:
        return f"<solution function {self._name}>"


def encode(value: Any, refs: bool = False) -> Any:
    """``value`` as JSON-compatible data; lists and scalars as themselves, the rest tagged.

    Subclasses of the built-in types become the built-in type (an ``int`` subclass with an
    ``__eq__`` of its own arrives as a plain ``int``). ``refs``: :class:`Remote` proxies become
    references to the solution's own functions (arguments sent to the contestant). Raises
    :class:`Unencodable` for anything else.
    """
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is list:
        return [item if type(item) in _PLAIN else encode(item, refs) for item in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, tuple):
        return {"$": "tuple", "v": [encode(item, refs) for item in tuple.__iter__(value)]}
    if isinstance(value, list):
        return [encode(item, refs) for item in list.__iter__(value)]
    if isinstance(value, dict):
        return {"$": "dict", "v": [[encode(k, refs), encode(v, refs)] for k, v in dict.items(value)]}
    if isinstance(value, frozenset):
        return {"$": "frozenset", "v": [encode(item, refs) for item in frozenset.__iter__(value)]}
    if isinstance(value, set):
        return {"$": "set", "v": [encode(item, refs) for item in set.__iter__(value)]}
    if isinstance(value, (bytes, bytearray)):
        return {"$": "bytes", "v": bytes(value).hex()}
    if isinstance(value, complex):
        return {"$": "complex", "v": [value.real, value.imag]}
    if refs and kind is Remote:
        return {"$": "ref", "v": value._name}
    raise Unencodable(f"a value of type {kind.__name__}")


def _real(parts: list[Any]) -> bool:
    return all(type(part) in (int, float) for part in parts)


def _tagged(resolve: Any) -> Any:
    def hook(obj: dict[str, Any]) -> Any:
        if len(obj) != 2 or "$" not in obj or "v" not in obj:
            raise ValueError("an untagged JSON object")
        tag, payload = obj["$"], obj["v"]
        if tag == "tuple" and type(payload) is list:
            return tuple(payload)
        if tag == "dict" and type(payload) is list:
            if not all(type(pair) is list and len(pair) == 2 for pair in payload):
                raise ValueError("a dict that is not a list of pairs")
            return {key: item for key, item in payload}
        if tag == "set" and type(payload) is list:
            return set(payload)
        if tag == "frozenset" and type(payload) is list:
            return frozenset(payload)
        if tag == "bytes" and type(payload) is str:
            return bytes.fromhex(payload)
        if tag == "complex" and type(payload) is list and len(payload) == 2 and _real(payload):
            return complex(payload[0], payload[1])
        if tag == "ref" and type(payload) is str and resolve is not None:
            return resolve(payload)
        raise ValueError(f"an unknown tag {str(tag)[:40]!r}")

    return hook


def decoder(resolve: Any = None) -> json.JSONDecoder:
    """What :func:`decode` uses; built once by a caller that decodes often (``json.loads`` with
    options builds a new decoder at every call)."""
    return json.JSONDecoder(object_hook=_tagged(resolve))


_DECODER = decoder()
#: compact JSON, built once for the same reason
_COMPACT = json.JSONEncoder(separators=(",", ":"))
_FRAMED = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def decode(data: bytes | str, resolve: Any = None, using: json.JSONDecoder | None = None) -> Any:
    """The value :func:`encode` produced, as built-in types only. ``resolve`` turns references
    into functions (the contestant's side); without it a reference is an error (``using``: a
    :func:`decoder` built before). Raises ``ValueError``, ``TypeError`` (an unhashable set
    element or key, or data that is not text) or ``RecursionError``."""
    if type(data) is not str:
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"the encoded value is a {type(data).__name__}, not text")
        data = bytes(data).decode(json.detect_encoding(data), "surrogatepass")
    return (using or (_DECODER if resolve is None else decoder(resolve))).decode(data)


def _dumps(message: dict[str, Any]) -> bytes:
    payload = _FRAMED.encode(message).encode("utf-8", "surrogatepass")
    return _FRAME.pack(len(payload)) + payload


def _message(exc: BaseException) -> str:
    try:
        text = f"{type(exc).__name__}: {exc}"
    except Exception:  # a solution's exception whose __str__ fails
        text = type(exc).__name__
    return text[:_MESSAGE_CHARS]


# ---------------------------------------------------------------------------------------------
# The contestant: the solution's process
# ---------------------------------------------------------------------------------------------


class _Interrupted(BaseException):
    """Raised in the solution when the referee's budget for the current call ran out."""


#: whether solution code is running (an interrupt at any other moment is stale and dropped)
_ARMED = [False]


def _on_interrupt(signum: int, frame: Any) -> None:
    if _ARMED[0]:
        _ARMED[0] = False
        raise _Interrupted()


class _SolutionCode:
    """``with _SolutionCode():`` around what runs the solution: the referee may interrupt it."""

    def __enter__(self) -> None:
        _ARMED[0] = True

    def __exit__(self, *exc: object) -> None:
        _ARMED[0] = False


def _drop_privileges() -> None:
    """No capabilities, now or after an ``exec``, and no new privileges (best effort: without
    ``CAP_SETPCAP`` there is nothing to drop; the referee checks the result)."""
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_securebits, pr_capbset_drop, pr_cap_ambient, pr_set_no_new_privs = 28, 24, 47, 38
    noroot_locked_no_setuid_fixup_locked_keep_caps_locked = 0x2F
    prctl(pr_set_securebits, noroot_locked_no_setuid_fixup_locked_keep_caps_locked, 0, 0, 0)
    prctl(pr_cap_ambient, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL
    for capability in range(64):
        if prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            break  # EINVAL past the last capability (or EPERM: nothing to drop)
    # capset(header {_LINUX_CAPABILITY_VERSION_3, this process}, data[2] {effective, permitted,
    # inheritable} all zero)
    ctypes.CDLL(None).capset((ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)())
    prctl(pr_set_no_new_privs, 1, 0, 0, 0)


class _Watch:
    """What the contestant notices the solution do (audit events, patched names). Telemetry for
    the reward's metrics only: the solution owns this process and could silence it."""

    #: built-ins a harness running in this process would rely on
    _BUILTINS = (
        "exec", "eval", "compile", "isinstance", "issubclass", "type", "print", "open", "__import__", "abs",
        "len", "sorted", "sum", "min", "max", "hash", "id", "repr", "str", "int", "float", "bool", "list",
        "dict", "set", "tuple", "range", "enumerate", "zip", "map", "filter", "getattr", "setattr", "hasattr",
        "iter", "next", "any", "all", "round", "AssertionError", "Exception", "BaseException", "SystemExit",
    )  # fmt: skip
    #: this program's own functions (patching them changes only what the solution sends)
    _SERVER = ("encode", "decode", "_dumps", "_tagged", "Contestant", "_on_interrupt")
    _FRAME_ATTRIBUTES = frozenset({"tb_frame", "gi_frame", "cr_frame", "ag_frame", "f_back"})
    _EVENTS: ClassVar[dict[str, str]] = {
        "gc.get_objects": "gc scan",
        "gc.get_referrers": "gc scan",
        "gc.get_referents": "gc scan",
        "sys._current_frames": "frame access",
        "sys.settrace": "tracing hook",
        "sys.setprofile": "tracing hook",
        "ctypes.dlopen": "ctypes",
        "ctypes.dlsym": "ctypes",
        "os.kill": "signals another process",
        "os.killpg": "signals another process",
        "os.exec": "starts a process",
        "os.posix_spawn": "starts a process",
        "os.fork": "starts a process",
        "os.system": "starts a process",
        "subprocess.Popen": "starts a process",
    }

    def __init__(self, server_globals: dict[str, Any]):
        self.seen: set[str] = set()
        self.reported: set[str] = set()
        self._inside = False
        self._builtins_now = vars(builtins)
        self._builtins = tuple(map(self._builtins_now.get, self._BUILTINS))
        self._server_now = server_globals
        self._server = tuple(map(server_globals.get, self._SERVER))
        self._atexit_handlers = atexit._ncallbacks()
        self._modules = {
            (module, name): getattr(sys.modules[module], name)
            for module, name in (("os", "_exit"), ("os", "write"), ("sys", "exit"), ("json", "dumps"),
                                 ("json", "loads"), ("socket", "socket"))
        }  # fmt: skip

    def audit(self, event: str, args: tuple[Any, ...]) -> None:
        if self._inside:
            return
        name = self._EVENTS.get(event)
        if name is None:
            if event == "sys._getframe":
                name = self._frame_request()
            elif event == "object.__getattr__" and len(args) == 2 and args[1] in self._FRAME_ATTRIBUTES:
                name = "frame access"
            elif event == "open" and args and isinstance(args[0], (str, bytes)):
                path = os.fsdecode(args[0])
                name = "opens /proc" if path.startswith("/proc/") else None
        if name is not None:
            self.seen.add(name)

    def _frame_request(self) -> str | None:
        """Frame access if the solution asked for a frame itself (or through ``inspect``);
        ``collections.namedtuple`` and ``enum`` ask too, and do not count."""
        self._inside = True
        try:
            caller = sys._getframe(2)
            for _ in range(3):
                if caller is None:
                    return None
                filename = caller.f_code.co_filename
                if filename == "solution.py":
                    return "frame access"
                if not filename.endswith("inspect.py"):
                    return None
                caller = caller.f_back
            return None
        except Exception:
            return None
        finally:
            self._inside = False

    def original_builtins(self) -> _OriginalBuiltins:
        """Our own encoding runs on the built-ins it was written for, not the solution's (whose
        patches would only make the reply unreadable, and hide what it patched)."""
        return _OriginalBuiltins(self)

    def observations(self) -> list[str]:
        """New observations since the last report."""
        self._inside = True
        try:
            if tuple(map(self._builtins_now.get, self._BUILTINS)) != self._builtins:
                self.seen.add("patched builtins")
            if tuple(map(self._server_now.get, self._SERVER)) != self._server:
                self.seen.add("patched the harness")
            if any(getattr(sys.modules[m], n, None) is not v for (m, n), v in self._modules.items()):
                self.seen.add("patched the harness")
            if _signal.getsignal(_SIGUSR1) is not _on_interrupt:  # (signal's wrapper makes an enum)
                self.seen.add("signal handler")
            if atexit._ncallbacks() != self._atexit_handlers:
                self.seen.add("atexit handler")
        except BaseException:
            self.seen.add("patched the harness")
        finally:
            self._inside = False
        fresh = sorted(self.seen - self.reported)
        self.reported |= self.seen
        return fresh


class _OriginalBuiltins:
    """:meth:`_Watch.original_builtins`, entered several times per call (so not a generator)."""

    __slots__ = ("patched", "watch")

    def __init__(self, watch: _Watch):
        self.watch = watch
        self.patched: tuple[Any, ...] | None = None

    def __enter__(self) -> None:
        watch = self.watch
        patched = tuple(map(watch._builtins_now.get, watch._BUILTINS))
        if patched != watch._builtins:
            watch.seen.add("patched builtins")
            watch._builtins_now.update(zip(watch._BUILTINS, watch._builtins, strict=True))
            self.patched = patched

    def __exit__(self, *exc: object) -> None:
        if self.patched is not None:
            self.watch._builtins_now.update(zip(self.watch._BUILTINS, self.patched, strict=True))


class Contestant:
    """Serves the referee's requests in the solution's process."""

    def __init__(self) -> None:
        self.sock: socket.socket | None = None  # set in the forked child
        self.namespace: dict[str, Any] = {"__name__": "solution", "__builtins__": builtins}
        self.buffer = bytearray()
        self.watch = _Watch(globals())
        self.decoder = decoder(self.resolve)

    def receive(self) -> dict[str, Any] | None:
        while True:
            if len(self.buffer) >= _FRAME.size:
                (size,) = _FRAME.unpack_from(self.buffer)
                if len(self.buffer) >= _FRAME.size + size:
                    payload = bytes(self.buffer[_FRAME.size : _FRAME.size + size])
                    del self.buffer[: _FRAME.size + size]
                    return json.loads(payload)
            chunk = self.sock.recv(_RECV_CHUNK)
            if not chunk:
                return None
            self.buffer += chunk

    def reply(self, message: dict[str, Any]) -> None:
        with self.watch.original_builtins():
            events = self.watch.observations()
            if events:
                message["events"] = events
            self.sock.sendall(_dumps(message))

    def resolve(self, name: str) -> Any:
        return self.namespace[name]

    def load(self, request: dict[str, Any]) -> None:
        try:
            with _SolutionCode():
                exec(compile(request["source"], "solution.py", "exec"), self.namespace)
                if request.get("setup"):
                    exec(compile(request["setup"], "setup.py", "exec"), self.namespace)
        except _Interrupted:
            self.reply({"id": request["id"], "interrupted": True})
            return
        except BaseException as exc:
            with self.watch.original_builtins():
                kind = "memory" if isinstance(exc, MemoryError) else "exit" if isinstance(exc, SystemExit) else "error"
                if kind == "exit":
                    self.watch.seen.add("exit called")
                failed = [kind, _message(exc)]
            self.reply({"id": request["id"], "load_failed": failed})
            return
        with self.watch.original_builtins():
            found = self.lookup(request)
        self.reply({"id": request["id"], "loaded": found})

    def lookup(self, request: dict[str, Any]) -> dict[str, Any]:
        """What the solution defines of the names the tests use but do not define."""
        found: dict[str, Any] = {}
        holder = self.namespace.get("Solution")
        for name in request["names"]:
            if request.get("method") and isinstance(holder, type) and hasattr(holder, name):
                found[name] = "function"
                continue
            if name not in self.namespace:
                continue
            value = self.namespace[name]
            if isinstance(value, types.ModuleType):
                found[name] = "module"
            elif callable(value):
                found[name] = "function"
            else:
                try:
                    found[name] = {"value": encode(value)}
                except (Unencodable, RecursionError, ValueError):
                    continue
        return found

    def call(self, request: dict[str, Any]) -> None:
        try:
            with _SolutionCode():
                key, answer = self._call(request)
        except _Interrupted:
            key, answer = "interrupted", True
        self.reply({"id": request["id"], key: answer})

    def _call(self, request: dict[str, Any]) -> tuple[str, Any]:
        try:
            with self.watch.original_builtins():
                name = request["name"]
                holder = self.namespace.get("Solution")
                if request.get("method") and isinstance(holder, type) and hasattr(holder, name):
                    target = getattr(holder(), name)
                else:
                    target = self.namespace[name]
                args = decode(request["args"], using=self.decoder)
                kwargs = decode(request["kwargs"], using=self.decoder)
            value = target(*args, **kwargs)
        except _Interrupted:
            raise
        except BaseException as exc:
            with self.watch.original_builtins():
                if isinstance(exc, SystemExit):
                    self.watch.seen.add("exit called")
                return "raised", [type(exc).__name__, _message(exc)]
        with self.watch.original_builtins():
            try:
                return "value", _COMPACT.encode(encode(value))
            except (Unencodable, RecursionError, ValueError, TypeError) as exc:
                return "unencodable", _message(exc)

    def serve(self) -> None:
        signal.signal(signal.SIGUSR1, _on_interrupt)
        sys.addaudithook(self.watch.audit)
        handlers = {"load": self.load, "call": self.call}
        while True:
            with self.watch.original_builtins():
                request = self.receive()
            if request is None:
                return
            handlers[request["op"]](request)


def _become_contestant(contestant: Contestant, sock: socket.socket) -> None:
    """Runs in the forked child; never returns. Everything that can be done before the fork
    (dropping capabilities, building ``contestant``) was: each page a child touches is copied."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(sock.fileno(), _CONTESTANT_FD)
        os.closerange(_CONTESTANT_FD + 1, _OPEN_MAX)
        contestant.sock = socket.socket(fileno=_CONTESTANT_FD)
        contestant.sock.sendall(_dumps({"id": 0, "ready": True}))
        contestant.serve()
    except BaseException:
        pass
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The nursery: a fresh contestant for every suite, and a clean sandbox after it
# ---------------------------------------------------------------------------------------------

#: the sandbox's writable directories, ``:``-separated (set by the sandbox worker)
_SCRATCH_ENV = "CASCADE_SANDBOX_SCRATCH"
#: seconds the referee waits for the nursery to answer
_NURSERY_TIMEOUT_S = 5.0
_PR_SET_CHILD_SUBREAPER = 36
#: seconds the referee waits for killed processes to end before it gives up on the batch
_STOP_WAIT_S = 0.5


def _descendants(root: int) -> list[int]:
    """The live processes below ``root``."""
    parents: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = _read(f"/proc/{name}/stat")
                state, ppid = stat[stat.rindex(b")") + 2 :].split()[:2]
                if state not in b"ZX":  # ended: a zombie's children have already moved up
                    parents[int(name)] = int(ppid)
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent]
        found += children
        frontier += children
    return found


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 1 << 16)
    finally:
        os.close(fd)


def _ipc_objects() -> tuple[Any, ...]:
    """The POSIX queues and System V objects that exist (they outlive the processes that made them)."""
    state: list[Any] = []
    try:
        state.append(sorted(os.listdir("/dev/mqueue")))
    except OSError:
        state.append(None)
    for kind in ("shm", "sem", "msg"):
        try:
            state.append(_read(f"/proc/sysvipc/{kind}"))
        except OSError:
            state.append(None)
    return tuple(state)


class _Scratch:
    """The sandbox's writable directories as they were before the first contestant. After each
    contestant, what it added is deleted and the directories' modes and times are put back; a
    change to what was there before (a file written, replaced, or its times or mode set) cannot
    be undone, and ends the batch."""

    def __init__(self, roots: list[str]):
        self.roots = [root for root in roots if os.path.isdir(root)]
        self.files: dict[str, tuple[int, ...]] = {}
        self.dirs: dict[str, tuple[int, ...]] = {}
        for root in self.roots:
            self._record(root)
        self.ipc = _ipc_objects()

    @staticmethod
    def _file_key(st: os.stat_result) -> tuple[int, ...]:
        return (st.st_ino, st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _record(self, path: str) -> None:
        st = os.lstat(path)
        self.dirs[path] = (st.st_ino, st.st_mode, st.st_atime_ns, st.st_mtime_ns)
        with os.scandir(path) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    self._record(entry.path)
                else:
                    self.files[entry.path] = self._file_key(entry.stat(follow_symlinks=False))

    def restore(self) -> str | None:
        """Put the directories back; what could not be, else ``None``."""
        problems: list[str] = []
        for root in self.roots:
            self._sweep(root, problems)
        for path, (ino, mode, atime, mtime) in self.dirs.items():
            try:
                st = os.lstat(path)
                if st.st_ino != ino:
                    problems.append(f"{path} was replaced")
                    continue
                if st.st_mode != mode:
                    os.chmod(path, mode & 0o7777)
                if (st.st_atime_ns, st.st_mtime_ns) != (atime, mtime):
                    os.utime(path, ns=(atime, mtime), follow_symlinks=False)
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
        if _ipc_objects() != self.ipc:
            problems.append("IPC objects were left behind")
        return "; ".join(problems[:3]) or None

    def _sweep(self, path: str, problems: list[str]) -> None:
        try:
            entries = list(os.scandir(path))
        except PermissionError:  # a contestant locked it
            try:
                os.chmod(path, 0o700 | (self.dirs[path][1] & 0o7777))
                entries = list(os.scandir(path))
            except OSError as exc:
                problems.append(f"{path}: {exc.strerror}")
                return
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror}")
            return
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if entry.path in self.dirs and entry.is_dir(follow_symlinks=False):
                self._sweep(entry.path, problems)
            elif entry.path in self.files and self._file_key(st) == self.files[entry.path]:
                continue
            elif entry.path in self.files or entry.path in self.dirs:
                problems.append(f"{entry.path} was changed")
            elif not _remove(entry.path, entry.is_dir(follow_symlinks=False)):
                problems.append(f"{entry.path} could not be deleted")


def _remove(path: str, is_dir: bool) -> bool:
    if not is_dir:
        with contextlib.suppress(OSError):
            os.unlink(path)
        return not os.path.lexists(path)
    for parent, dirs, _files in os.walk(path):  # let us into whatever the contestant locked
        for name in dirs:
            with contextlib.suppress(OSError):
                if not os.path.islink(os.path.join(parent, name)):
                    os.chmod(os.path.join(parent, name), 0o700)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    shutil.rmtree(path, ignore_errors=True)
    return not os.path.lexists(path)


def _fork_child(run: Callable[[socket.socket], None], kind: int = socket.SOCK_STREAM) -> tuple[int, socket.socket]:
    """Fork a child that runs ``run`` (which never returns) on its end of a new socket pair;
    the child's pid and our end."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, kind)
    pid = os.fork()
    if pid == 0:
        ours.close()
        run(theirs)
    theirs.close()
    return pid, ours


class _Nursery:
    """A process forked before the referee reads any test, which forks each suite's contestant.

    So no contestant's memory ever held a test, whichever suite of the batch it serves. It is
    the contestants' subreaper, so every process they start stays below it. Between two suites
    the referee kills all of them and restores the writable directories (:class:`_Scratch`);
    when that fails the batch ends there. The nursery itself does as little as it can, since
    every page it touches after a fork is a copy: a spawn request is one byte carrying the
    contestant's end of its socket, the reply its pid.
    """

    def __init__(self) -> None:
        roots = [root for root in os.environ.get(_SCRATCH_ENV, "").split(":") if root] or [os.getcwd()]
        self.scratch = _Scratch(roots)
        contestant = Contestant()
        self.pid, self.sock = _fork_child(lambda sock: _nursery_main(sock, contestant), socket.SOCK_SEQPACKET)
        self.sock.settimeout(_NURSERY_TIMEOUT_S)

    def spawn(self) -> tuple[int, socket.socket]:
        ours, theirs = socket.socketpair()
        try:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGCONT)  # a contestant may have stopped it
            socket.send_fds(self.sock, [b"s"], [theirs.fileno()])
            reply = self.sock.recv(256)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        if not reply.isdigit():
            ours.close()
            raise ValueError(reply.decode(errors="replace") or "the nursery is gone")
        return int(reply), ours

    def clean(self) -> str | None:
        """``None`` once the sandbox is as before the last contestant, else what is left."""
        if not _stop_descendants(self.pid):
            return "processes of the solution that would not stop"
        if os.waitpid(self.pid, os.WNOHANG)[0] != 0:
            return "the nursery is gone"  # what it held may have escaped to the sandbox's init
        return self.scratch.restore()

    def close(self) -> None:
        self.sock.close()  # the nursery kills what is left and exits
        with contextlib.suppress(OSError):
            deadline = time.monotonic() + _NURSERY_TIMEOUT_S
            while os.waitpid(self.pid, os.WNOHANG)[0] == 0:  # its children's CPU time joins ours
                if time.monotonic() > deadline:
                    os.kill(self.pid, signal.SIGKILL)
                time.sleep(0.001)


class _OneContestant:
    """For a job of one suite: its contestant, forked at once (one process less than a nursery)."""

    def __init__(self) -> None:
        contestant = Contestant()
        self.pid, self.sock = _fork_child(lambda sock: _become_contestant(contestant, sock))

    def spawn(self) -> tuple[int, socket.socket]:
        return self.pid, self.sock

    def clean(self) -> str | None:
        return "a job of one suite"

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)  # its CPU time joins ours in the job's usage


def _stop_descendants(root: int) -> bool:
    """Kill every live process below ``root`` and wait until each has ended; ``False`` if some
    would not. (Only their parent can reap them: the nursery does, before each fork.)"""
    deadline = time.monotonic() + _STOP_WAIT_S
    while True:
        pids = _descendants(root)
        if not pids:
            return True
        if time.monotonic() > deadline:
            return False
        # A pidfd turns readable once its process has ended: wait for that, not a fixed time.
        waiting = select.poll()
        pidfds = set()
        for pid in pids:
            with contextlib.suppress(OSError):
                fd = os.pidfd_open(pid)
                pidfds.add(fd)
                waiting.register(fd, select.POLLIN)
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            if not pidfds:
                time.sleep(0.001)  # a kernel without pidfds
            while pidfds and time.monotonic() < deadline:
                for fd, _event in waiting.poll(max(0.0, deadline - time.monotonic()) * 1000):
                    waiting.unregister(fd)
                    pidfds.discard(fd)
                    os.close(fd)
        finally:
            for fd in pidfds:
                os.close(fd)


def _reap() -> None:
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def _nursery_main(control: socket.socket, contestant: Contestant) -> None:
    """Runs in the nursery; never returns."""
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # never hold the tests' pipe
        os.dup2(devnull, 1)  # nor the records
        with contextlib.suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        while True:
            message, fds, _flags, _address = socket.recv_fds(control, 16, 1)
            if message != b"s" or len(fds) != 1:
                break
            _reap()
            try:
                pid = os.fork()
            except OSError as exc:
                control.send(f"the nursery could not fork: {exc.strerror}".encode())
                os.close(fds[0])
                continue
            if pid == 0:
                control.close()
                _become_contestant(contestant, socket.socket(fileno=fds[0]))
            os.close(fds[0])
            control.send(str(pid).encode())
    except BaseException:
        pass
    _stop_descendants(os.getpid())
    _reap()
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# The referee: the tests' process
# ---------------------------------------------------------------------------------------------


class _Stop(BaseException):
    """Ends the current test from inside the test code (a BaseException: ``except Exception``
    in test code cannot swallow it, and a bare ``except`` is caught by :attr:`Referee.failure`)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class HarnessFailure(BaseException):
    """The harness itself cannot run (the sandbox's fault, not the solution's)."""


class SolutionError(Exception):
    """The solution raised an exception that is not re-raised as itself."""


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) of ``pid`` from ``/proc``; 0 once it is gone."""
    try:
        fd = os.open(f"/proc/{pid}/stat", os.O_RDONLY)
        try:
            fields = os.read(fd, 4096).rsplit(b")", 1)[1].split()
        finally:
            os.close(fd)
        return (int(fields[11]) + int(fields[12])) / _TICKS
    except (OSError, IndexError, ValueError):
        return 0.0


_TICKS = os.sysconf("SC_CLK_TCK")


def _code_names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _capabilities(pid: int) -> str | None:
    """``None`` if ``pid`` holds no capability, else its CapEff/CapPrm lines."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            lines = [line.strip() for line in handle if line.startswith(("CapEff:", "CapPrm:"))]
    except OSError:
        return None
    held = [line for line in lines if int(line.split()[1], 16)]
    return ", ".join(held) or None


def _emit(records: int, token: str, record: dict[str, Any]) -> None:
    os.write(records, (token + " " + json.dumps(record) + "\n").encode())


class Referee:
    def __init__(self, sock: socket.socket, pid: int, records: int, token: str):
        self.sock = sock
        self.pid = pid
        self.records = records
        self.token = token
        self.buffer = bytearray()
        self.alive = True
        self.next_id = 1
        self.reply_limit = 8 << 20
        #: telemetry: counts of what was observed
        self.events: dict[str, int] = {}
        self.contestant_events: set[str] = set()
        #: the current test's budget and the first failure seen in it
        self.cpu_budget = 0.0
        self.wall_deadline = 0.0
        self.cpu_start = 0.0
        self.failure: _Stop | None = None
        self.calls = 0
        self.started = False

    # -- records and telemetry ----------------------------------------------------------

    def emit(self, record: dict[str, Any]) -> None:
        _emit(self.records, self.token, record)

    def count(self, event: str) -> None:
        self.events[event] = self.events.get(event, 0) + 1

    # -- budget ---------------------------------------------------------------------------

    def used(self) -> float:
        return time.process_time() + _process_cpu(self.pid) - self.cpu_start

    def start_budget(self, cpu: float) -> None:
        self.cpu_start = time.process_time() + _process_cpu(self.pid)
        self.cpu_budget = cpu
        self.wall_deadline = time.monotonic() + 2 * cpu + 1
        self.failure = None

    # -- the socket -----------------------------------------------------------------------

    def fail(self, status: str, message: str) -> _Stop:
        stop = _Stop(status, message)
        if self.failure is None:
            self.failure = stop
        return stop

    def gone(self, during: str) -> _Stop:
        self.alive = False
        self.count("early_exit")
        return self.fail("exited", f"the solution's process ended during {during}")

    def kill(self) -> None:
        if self.alive:
            self.alive = False
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def protocol(self, what: str) -> _Stop:
        self.count("protocol_error")
        self.kill()
        return self.fail("protocol", f"the solution's process broke the harness protocol: {what}")

    def send(self, message: dict[str, Any]) -> None:
        self.sock.settimeout(max(0.001, self.wall_deadline - time.monotonic()))
        try:
            self.sock.sendall(_dumps(message))
        except TimeoutError:
            self.kill()
            raise self.timeout() from None
        except OSError:
            raise self.gone(message["op"]) from None

    def timeout(self) -> _Stop:
        self.count("timeout")
        return self.fail("timeout", f"CPU time exceeded {self.cpu_budget:g}s")

    def _frame(self) -> bytes | None:
        if len(self.buffer) < _FRAME.size:
            return None
        (size,) = _FRAME.unpack_from(self.buffer)
        if size > self.reply_limit:
            raise self.protocol(f"a reply of {size} bytes (the limit is {self.reply_limit})")
        if len(self.buffer) < _FRAME.size + size:
            return None
        payload = bytes(self.buffer[_FRAME.size : _FRAME.size + size])
        del self.buffer[: _FRAME.size + size]
        return payload

    def _read(self, wait: float, during: str) -> bool:
        """Read what arrives within ``wait`` seconds; ``False`` if nothing did."""
        readable, _, _ = select.select([self.sock], [], [], max(0.0, wait))
        if not readable:
            return False
        try:
            chunk = self.sock.recv(_RECV_CHUNK)
        except OSError:
            chunk = b""
        if not chunk:
            raise self.gone(during)
        self.buffer += chunk
        return True

    def receive(self, ident: int, during: str) -> dict[str, Any]:
        """The reply to request ``ident``, within the budget (else the contestant is interrupted)."""
        # The first wait is short and costs no /proc read: most answers come within it.
        wait = 0.002
        while True:
            payload = self._frame()
            if payload is not None:
                return self._check_reply(payload, ident)
            now = time.monotonic()
            if wait is None:
                used = self.used()
                if now >= self.wall_deadline or used > self.cpu_budget:
                    return self._interrupt(ident, during)
                wait = min(self.wall_deadline - now, max(0.005, (self.cpu_budget - used) / 2))
            if not self._read(wait, during):
                wait = None

    def _interrupt(self, ident: int, during: str) -> dict[str, Any]:
        """Ask the solution to stop the current call; kill it if it does not."""
        with contextlib.suppress(OSError):
            os.kill(self.pid, signal.SIGUSR1)
        deadline = time.monotonic() + _INTERRUPT_GRACE_S
        while time.monotonic() < deadline:
            payload = self._frame()
            if payload is not None:
                reply = self._check_reply(payload, ident)
                if reply.get("interrupted"):
                    raise self.timeout()
                return reply  # it finished just in time; the test's CPU check decides
            self._read(deadline - time.monotonic(), during)
        self.count("interrupt_ignored")
        self.kill()
        raise self.timeout()

    _REPLY_KEYS = frozenset(
        {"ready", "loaded", "load_failed", "value", "raised", "unencodable", "interrupted"}
    )

    def _check_reply(self, payload: bytes, ident: int) -> dict[str, Any]:
        try:
            reply = json.loads(payload)
        except (ValueError, RecursionError):
            raise self.protocol("a reply that is not JSON") from None
        if type(reply) is not dict or reply.get("id") != ident:
            raise self.protocol("a reply to no request")
        events = reply.pop("events", [])
        if type(events) is list:
            self.contestant_events.update(e for e in events[:32] if type(e) is str and e in EVENT_NAMES)
        keys = set(reply) - {"id"}
        if len(keys) != 1 or not keys <= self._REPLY_KEYS:
            raise self.protocol(f"a reply with keys {sorted(map(str, keys))[:5]}")
        return reply

    def request(self, op: str, during: str, **fields: Any) -> dict[str, Any]:
        if not self.alive:
            raise self.fail("not_run", "not run: the solution's process is gone")
        ident = self.next_id
        self.next_id += 1
        self.send({"op": op, "id": ident, **fields})
        if not self.started:
            self._start_up()
        reply = self.receive(ident, during)
        if "interrupted" in reply:  # the solution interrupted itself (SIGUSR1): its time is up
            raise self.timeout()
        return reply

    def _start_up(self) -> None:
        """The contestant's first message (sent before it reads our first request, so waiting
        for it costs nothing), and a look at its capabilities: it must hold none."""
        try:
            hello = self.receive(0, "start-up")
        except _Stop as stop:
            raise HarnessFailure(f"the solution's process did not start: {stop.message}") from None
        kept = _capabilities(self.pid)
        if "ready" not in hello or kept is not None:
            raise HarnessFailure(f"the solution's process did not drop its capabilities ({kept})")
        self.started = True

    # -- calls from the test code ---------------------------------------------------------

    def call(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], method: bool = False) -> Any:
        if self.failure is not None:
            raise self.failure  # the test already failed (its code swallowed our exception)
        self.calls += 1
        if time.monotonic() > self.wall_deadline or (self.calls % 16 == 0 and self.used() > self.cpu_budget):
            raise self.timeout()
        try:
            encoded_args = _COMPACT.encode(encode(list(args), refs=True))
            encoded_kwargs = _COMPACT.encode(encode(dict(kwargs), refs=True))
        except (Unencodable, RecursionError, ValueError) as exc:
            raise self.fail("unsupported", f"the test passes {exc} to the solution; it cannot cross") from None
        reply = self.request("call", f"a call of {name}", name=name, args=encoded_args, kwargs=encoded_kwargs,
                             method=method)  # fmt: skip
        if "value" in reply:
            if type(reply["value"]) is not str:
                raise self.protocol("a value that is not encoded")
            try:
                return decode(reply["value"])
            except (ValueError, TypeError, RecursionError) as exc:
                raise self.protocol(f"an undecodable value ({_message(exc)[:200]})") from None
        if "raised" in reply:
            raised = reply["raised"]
            if type(raised) is not list or len(raised) != 2 or not all(type(x) is str for x in raised):
                raise self.protocol("a malformed exception")
            kind, message = raised[0][:100], raised[1][:_MESSAGE_CHARS]
            if kind == "MemoryError":
                raise self.fail("memory", message)
            if kind == "SystemExit":
                self.count("early_exit")
            exception = getattr(builtins, kind) if kind in _RERAISED else SolutionError
            raise exception(message if exception is not SolutionError else f"{kind}: {message}")
        if "unencodable" in reply:
            raise self.fail("wrong", f"{name} returned {str(reply['unencodable'])[:200]}, which cannot be compared")
        if "interrupted" in reply:
            raise self.timeout()
        raise self.protocol("an unexpected reply to a call")


# ---------------------------------------------------------------------------------------------
# Running a suite
# ---------------------------------------------------------------------------------------------


def _load(referee: Referee, spec: dict[str, Any]) -> dict[str, Any] | None:
    """Load the solution and build the test code's namespace; ``None`` after a load failure."""
    referee.start_budget(spec["load_cpu"])
    kind = spec["kind"]
    namespace: dict[str, Any] = {"__name__": "tests", "__builtins__": builtins}
    try:
        labels = [label for label in ("prompt", "setup", "test") if spec.get(label)]
        trusted = [compile(spec[label], f"<{label}>", "exec") for label in labels]
        for code in trusted:
            exec(code, namespace)
        compiled = [compile(a, f"<test {i}>", "exec") for i, a in enumerate(spec.get("asserts", []))]
    except Exception as exc:  # the trusted test code itself failed to run
        referee.emit({"load_error": f"the tests do not run: {_message(exc)}", "why": "tests"})
        return None
    wanted: set[str] = set()
    for code in [*trusted, *compiled]:
        wanted |= _code_names(code)
    declared = spec.get("entry_point") or spec.get("fn_name")
    names = sorted({n for n in wanted if n not in namespace and not hasattr(builtins, n)} | {declared} - {None})
    try:
        reply = referee.request(
            "load", "loading", source=spec["solution"], setup=spec.get("setup", ""), names=names, method=kind == "call"
        )
        if "load_failed" in reply:
            failed = reply["load_failed"]
            why, message = (failed[0], failed[1]) if type(failed) is list and len(failed) == 2 else ("error", "")
            if why == "exit":
                referee.count("early_exit")
            referee.emit({"load_error": str(message)[:_MESSAGE_CHARS], "why": str(why)[:20]})
            return None
        found = reply.get("loaded")
        if type(found) is not dict:
            raise referee.protocol("an unexpected reply to the load")
        for name, what in found.items():
            if name not in names:
                continue
            if what == "function":
                namespace[name] = Remote(referee, name)
            elif what == "module":
                try:
                    namespace[name] = __import__(name)
                except BaseException:
                    continue
            elif type(what) is dict and type(what.get("value")) in (str, int, float, bool, list, dict):
                namespace[name] = decode(json.dumps(what["value"]))
        if declared and not isinstance(namespace.get(declared), Remote):
            what = "function or Solution method" if kind == "call" else "function"
            referee.emit({"load_error": f"NameError: the solution defines no {what} {declared!r}", "why": "missing"})
            return None
        namespace["__compiled_asserts__"] = compiled
        return namespace
    except _Stop as stop:
        why = {"exited": "exit", "timeout": "timeout"}.get(stop.status, stop.status)
        referee.emit({"load_error": stop.message, "why": why})
        return None


def _run_test(referee: Referee, spec: dict[str, Any], namespace: dict[str, Any], index: int) -> dict[str, Any]:
    record: dict[str, Any] = {"i": index}
    kind = spec["kind"]
    referee.start_budget(spec["cpu_per_test"])
    try:
        if kind == "call":
            value = referee.call(spec["fn_name"], tuple(spec["args"][index]), {}, method=True)
            try:
                record["got"] = json.dumps(value)
            except (TypeError, ValueError) as exc:
                raise referee.fail("wrong", f"the result cannot be compared: {_message(exc)}") from None
            status = "done"
        elif kind == "asserts":
            exec(namespace["__compiled_asserts__"][index], namespace)
            status = "pass"
        else:
            namespace["check"](namespace[spec["entry_point"]])
            status = "pass"
    except _Stop:
        status = "failed"
    except AssertionError as exc:
        status, record["error"] = "wrong", _message(exc)
    except MemoryError as exc:
        status, record["error"] = "memory", _message(exc)
    except BaseException as exc:
        status, record["error"] = "error", _message(exc)
    record["cpu"] = referee.used()
    if referee.failure is not None:  # whatever the test code did with our exception
        status, record["error"] = referee.failure.status, referee.failure.message
    elif record["cpu"] > spec["cpu_per_test"]:
        status = "timeout"
        referee.count("timeout")
    record["status"] = status
    return record


def main() -> None:
    # The workdir (the contestant can write there) must not be importable from, and nothing
    # may be imported from files after the contestant starts: everything is imported above.
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != os.getcwd()]
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE 0: no ptrace, no /proc/<us>/fd
        _drop_privileges()  # the sandbox's job has none already; every contestant is our fork
    except Exception:
        pass
    _stay_on_this_cpu()
    gc.freeze()  # neither process's collector walks (and so copies) what both inherited
    nursery: _Nursery | _OneContestant = _OneContestant() if sys.argv[1:] == ["--one"] else _Nursery()
    # Only now read the tests: the nursery's memory (and so every contestant's) is a copy of ours
    # from before this line.
    chunks = []
    while True:
        chunk = os.read(0, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    specs = json.loads(b"".join(chunks))
    del chunks
    records = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # what the test code prints does not reach the records
    os.close(devnull)
    try:
        for spec in specs if type(specs) is list else [specs]:
            if not _run_suite(nursery, spec, records):
                break  # the suites left get no record: the host runs each again in a job of its own
    finally:
        nursery.close()


def _stay_on_this_cpu() -> None:
    """Keep this job's processes on the CPU the scheduler gave the referee. Referee and
    contestant take turns (every call is a round trip), so one CPU loses no parallelism, and a
    wake-up on the same CPU is much cheaper than one that crosses to another (an interrupt
    between CPUs; under a hypervisor, an exit). Each job picks afresh, so load still spreads."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        stat = _read("/proc/self/stat")
        os.sched_setaffinity(0, {int(stat[stat.rindex(b")") + 2 :].split()[36])})


def _run_suite(nursery: _Nursery | _OneContestant, spec: dict[str, Any], records: int) -> bool:
    """Run one suite against a fresh contestant; ``False`` if no further suite may run here."""
    try:
        pid, sock = nursery.spawn()
    except (OSError, ValueError) as exc:
        _emit(records, spec["token"], {"harness_error": f"no process for the solution: {exc}"})
        return False
    referee = Referee(sock, pid, records, spec["token"])
    referee.reply_limit = spec["reply_bytes"]
    try:
        _run(referee, spec)
    except BaseException as exc:
        referee.emit({"harness_error": _message(exc)})
    finally:
        referee.kill()
        sock.close()
    try:
        return nursery.clean() is None
    except (OSError, ValueError):
        return False


def _run(referee: Referee, spec: dict[str, Any]) -> None:
    try:
        namespace = _load(referee, spec)
    except HarnessFailure as failure:
        referee.emit({"harness_error": str(failure)})
        return
    if namespace is not None:
        referee.emit({"loaded": True})
        for index in range(spec["count"]):
            record = _run_test(referee, spec, namespace, index)
            referee.emit(record)
            if spec["stop_on_failure"] and record["status"] not in ("pass", "done"):
                break
    referee.emit({"done": True, "events": referee.events, "noticed": sorted(referee.contestant_events)})


if __name__ == "__main__":
    main()
