"""Attacks of a hostile program on a host where the trainer runs as root, for real, under both
namespace mechanisms (bubblewrap, and the unshare fallback with bubblewrap disabled).

On a root host a sandbox that keeps the job's capabilities is no sandbox: the job can ptrace the
worker (and so forge every later verdict it reports), remount the root read-write, unmount the
masks, or read whatever the host keeps private. Each test does the attack and checks it fails.
"""

from __future__ import annotations

import os
import stat
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade_plugins.sandbox import Isolation, Limits, Sandbox, isolation
from cascade_plugins.sandbox import sandbox as sandbox_module
from cascade_plugins.sandbox.isolation import DISABLE_ENV

FAST = Limits(cpu_time_s=2.0, wall_time_s=6.0, memory_mb=256, max_processes=16)
ROOT = os.geteuid() == 0
MECHANISMS = {"bwrap": ("", Isolation.BWRAP), "unshare": ("bwrap", Isolation.UNSHARE)}


def _open_box(monkeypatch: pytest.MonkeyPatch, disabled: str, expected: Isolation) -> Sandbox:
    monkeypatch.setattr(isolation, "_probe_cache", {})
    monkeypatch.setenv(DISABLE_ENV, disabled)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        box = Sandbox(isolation="auto", max_workers=1)
    if box.isolation_mode != expected:
        box.close()
        pytest.skip(f"{expected} does not work on this host (got {box.isolation_mode})")
    return box


@pytest.fixture(params=sorted(MECHANISMS), scope="module")
def box(request) -> Iterator[Sandbox]:
    disabled, expected = MECHANISMS[request.param]
    with pytest.MonkeyPatch.context() as monkeypatch:
        sandbox = _open_box(monkeypatch, disabled, expected)
        with sandbox:
            yield sandbox


def run_py(box: Sandbox, source: str, limits: Limits = FAST):
    return box.run(box.prepare(source, "python"), limits=limits)


CAPABILITIES = """
import subprocess
def caps(text):
    return {k: int(v, 16) for k, v in (l.split(":") for l in text.splitlines() if l.startswith("Cap"))}
own = caps(open("/proc/self/status").read())
child = caps(subprocess.run(["/bin/sh", "-c", "cat /proc/self/status"], capture_output=True, text=True).stdout)
print(own, child, sep="\\n")
"""


def test_jobs_hold_no_capability_not_even_after_exec(box):
    result = run_py(box, CAPABILITIES)
    assert result.verdict == "OK", result
    own, child = (eval(line) for line in result.stdout.decode().splitlines())  # dicts printed by the job
    assert set(own) >= {"CapEff", "CapPrm", "CapBnd", "CapInh", "CapAmb"}
    assert not any(own.values()) and not any(child.values()), result.stdout


PTRACE_THE_WORKER = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
PTRACE_DETACH, PTRACE_SEIZE = 17, 0x4206
attached = libc.ptrace(PTRACE_SEIZE, 1, 0, 0) == 0  # seizing does not stop the worker
if attached:
    libc.ptrace(PTRACE_DETACH, 1, 0, 0)
try:
    with open("/proc/1/mem", "r+b") as mem:
        mem.seek(0x400000)
        mem.write(b"\\x90")
    wrote_mem = True
except OSError:
    wrote_mem = False
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(8)
local, remote = iovec(ctypes.addressof(buf), 8), iovec(0x400000, 8)
vm_write = libc.process_vm_writev(1, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0) > 0
opened = []  # the worker's descriptors: its socket to the host is the verdict channel
for fd in range(64):
    try:
        opened.append(os.open(f"/proc/1/fd/{fd}", os.O_RDWR))
    except OSError:
        pass
print(attached, wrote_mem, vm_write, bool(opened))
"""


def test_the_worker_cannot_be_ptraced_or_written(box, check_healthy):
    result = run_py(box, PTRACE_THE_WORKER)
    assert result.verdict == "OK", result
    assert result.stdout == b"False False False False\n", result
    check_healthy(box)  # an innocent program judged next on the same worker is judged truly


@pytest.mark.skipif(not ROOT, reason="only a root host gives bubblewrap's sandbox capabilities to drop")
def test_the_probe_refuses_a_bubblewrap_that_keeps_capabilities():
    """The control: on this host, bubblewrap without ``--cap-drop ALL`` hands its sandbox every
    capability (the jobs' own second lock in the worker would still drop them), and the probe
    that ``isolation: required`` relies on notices."""
    bwrap = isolation.bwrap_binary()
    if bwrap is None:
        pytest.skip("no bubblewrap")
    command = isolation.bwrap_command(bwrap, 0)
    assert isolation._verify(command) is None
    at = command.argv.index("--cap-drop")
    del command.argv[at : at + 2]
    assert "capabilities" in (isolation._verify(command) or "")


REMOUNT_AND_UNMASK = """
import ctypes, subprocess
libc = ctypes.CDLL(None, use_errno=True)
MS_REMOUNT, MS_BIND = 32, 4096
remounted = libc.mount(None, b"/", None, MS_REMOUNT | MS_BIND, None) == 0
remounted_usr = libc.mount(None, b"/usr", None, MS_REMOUNT | MS_BIND, None) == 0
unmasked = libc.umount2(b"/etc/shadow", 2) == 0
tool = subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True).returncode == 0
try:
    open("/usr/cascade-escaped", "w")
    wrote = True
except OSError:
    wrote = False
print(remounted, remounted_usr, unmasked, tool, wrote)
"""


def test_nothing_can_be_remounted_or_unmasked(box, check_healthy):
    result = run_py(box, REMOUNT_AND_UNMASK)
    assert result.verdict == "OK", result
    assert result.stdout == b"False False False False False\n", result
    assert not Path("/usr/cascade-escaped").exists()
    check_healthy(box)


def _host_private_paths() -> tuple[list[str], list[str]]:
    """Files and directories under /etc that other users may not read, found here independently."""
    files, dirs = [], []
    for parent, subdirs, names in os.walk("/etc"):
        for name in list(subdirs):
            path = os.path.join(parent, name)
            if not os.path.islink(path) and not os.stat(path).st_mode & stat.S_IROTH:
                dirs.append(path)
                subdirs.remove(name)
        for name in names:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode) and not info.st_mode & stat.S_IROTH and info.st_size:
                files.append(path)
    return files, dirs


def test_what_the_host_keeps_private_is_not_readable(box):
    files, dirs = _host_private_paths()
    assert "/etc/shadow" in files or not os.path.exists("/etc/shadow")
    source = f"""
import os
leaked = []
for path in {files!r}:
    try:
        if open(path, "rb").read():
            leaked.append(path)
    except OSError:
        pass
for path in {dirs!r}:
    try:
        if os.listdir(path):
            leaked.append(path)
    except OSError:
        pass
print(leaked)
"""
    result = run_py(box, source)
    assert result.verdict == "OK", result
    assert result.stdout == b"[]\n", result


def test_the_judges_files_on_the_host_cannot_be_found(box):
    """A program that searches the file system for the test data it is being judged on."""
    secret_dir = Path(tempfile.mkdtemp(prefix="cascade-judge-", dir="/var/tmp" if os.path.isdir("/var/tmp") else None))
    try:
        token = f"answer-{os.getpid()}-{time.monotonic_ns()}"
        (secret_dir / "01.in").write_text("1 2\n")
        (secret_dir / f"{token}.ans").write_text("3\n")
        source = f"""
import os
found = []
for top in os.listdir("/"):
    if top in ("proc", "sys", "usr"):
        continue
    for parent, dirs, names in os.walk("/" + top):
        found += [os.path.join(parent, n) for n in names if n.endswith(".ans") or {token!r} in n]
print(found, os.path.exists({str(secret_dir)!r}), os.path.exists({str(Path.cwd())!r}))
"""
        result = run_py(box, source, limits=Limits(cpu_time_s=10.0, wall_time_s=30.0, memory_mb=256))
        assert result.verdict == "OK", result
        assert result.stdout == b"[] False False\n", result
    finally:
        for child in secret_dir.iterdir():
            child.unlink()
        secret_dir.rmdir()


def test_the_root_shows_only_what_programs_need(box):
    result = run_py(box, "import os\nprint(sorted(os.listdir('/')))")
    assert result.verdict == "OK", result
    shown = set(eval(result.stdout))  # a list printed by the job
    python = {p.split("/")[1] for p in isolation._python_roots()}
    allowed = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "dev", "proc", "tmp", "opt"}
    assert shown <= allowed | python, shown - allowed - python
    assert {"home", "var", "srv", "mnt", "sys"}.isdisjoint(shown - python), shown


def test_posix_message_queues_do_not_carry_state_to_the_next_job(box):
    writer = """
import ctypes, os
rt = ctypes.CDLL("librt.so.1", use_errno=True)
rt.mq_open.restype = ctypes.c_int
fd = rt.mq_open(b"/cascade-left", os.O_CREAT | os.O_RDWR, 0o644, None)
print(fd >= 0)
"""
    first = run_py(box, writer)
    assert first.verdict == "OK", first
    if first.stdout != b"True\n":
        pytest.skip("POSIX message queues are not available in this sandbox")
    reader = "import os\nprint(os.listdir('/dev/mqueue'))"
    assert run_py(box, reader).stdout == b"[]\n"


def test_memory_of_many_processes_is_capped_without_a_cgroup(monkeypatch, check_healthy):
    """cgroup v2 hosts (and hosts that refuse us a cgroup): the worker adds up the memory itself."""
    monkeypatch.setattr(isolation, "_probe_cache", {})
    monkeypatch.setenv(DISABLE_ENV, "cgroup")
    source = """
import os, time
for i in range(4):
    if os.fork() == 0:
        block = bytearray(300 * 2**20)
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(2)
        os._exit(0)
for i in range(4):
    os.wait()
print("all done")
"""
    limits = Limits(cpu_time_s=5.0, wall_time_s=20.0, memory_mb=384, max_processes=16)  # 4 x 300 > 2 x 384 + 256
    with Sandbox(max_workers=1) as box:
        worker = box._workers().acquire()
        assert not worker.has_memory_cgroup
        box._workers().release(worker)
        result = run_py(box, source, limits=limits)
        assert result.verdict == "MLE" and "all processes together" in result.message, result
        fine = run_py(box, source.replace("300 *", "100 *"), limits=limits)
        assert fine.verdict == "OK" and fine.stdout == b"all done\n", fine
        check_healthy(box)


def test_a_worker_killed_under_a_job_is_replaced_and_the_job_retried(check_healthy):
    with Sandbox(max_workers=1) as box:
        box.start()
        (first_worker,) = box.worker_pids()

        def kill_the_worker() -> None:
            time.sleep(0.5)
            os.killpg(first_worker, 9)

        killer = threading.Thread(target=kill_the_worker)
        killer.start()
        result = run_py(box, "import time\ntime.sleep(1.5)\nprint('done')")
        killer.join()
        assert result.verdict == "OK" and result.stdout == b"done\n", result
        assert box.worker_pids() != [first_worker]
        check_healthy(box)


def test_when_every_attempt_fails_the_result_is_a_sandbox_error(monkeypatch):
    monkeypatch.setattr(sandbox_module, "INFRASTRUCTURE_RETRIES", 1)
    with Sandbox(max_workers=1) as box:
        pool = box._workers()
        acquire = pool.acquire
        handed_out = []

        def acquire_and_note():
            worker = acquire()
            handed_out.append(worker)
            return worker

        monkeypatch.setattr(pool, "acquire", acquire_and_note)
        stop = threading.Event()

        def keep_killing() -> None:  # every worker that takes the job dies under it
            while not stop.wait(0.2):
                for worker in list(handed_out):
                    if worker.proc.poll() is None:
                        os.killpg(worker.proc.pid, 9)

        killer = threading.Thread(target=keep_killing)
        killer.start()
        try:
            result = run_py(box, "import time\ntime.sleep(3)\nprint('done')")
        finally:
            stop.set()
            killer.join()
    assert len(handed_out) == 2
    assert result.verdict == "SANDBOX_ERROR" and "failed 2 times" in result.message, result
