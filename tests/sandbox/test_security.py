"""Hostile programs, each run for real in the sandbox.

Every test checks the verdict, that the limits held, that no process is left over (the host's
/proc) and that the worker pool still serves the next program.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from cascade_plugins.sandbox import Isolation, Limits, Sandbox

FAST = Limits(cpu_time_s=1.0, wall_time_s=3.0, memory_mb=256, max_processes=16)


def run_py(sandbox: Sandbox, source: str, limits: Limits = FAST, stdin: str = ""):
    return sandbox.run(sandbox.prepare(source, "python"), stdin, limits=limits)


def test_fork_bomb_is_contained(sandbox, check_healthy):
    started = time.monotonic()
    result = run_py(sandbox, "import os\nwhile True:\n    os.fork()\n")
    assert result.verdict == "RE", result
    assert time.monotonic() - started < FAST.wall_s + 5
    check_healthy(sandbox)


def test_memory_bomb_is_mle(sandbox, check_healthy):
    result = run_py(sandbox, "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 2**20))\n")
    assert result.verdict == "MLE", result
    assert result.peak_memory_kb < 2 * FAST.memory_mb * 1024
    check_healthy(sandbox)


def test_cpp_memory_bomb_is_mle(sandbox, check_healthy):
    source = (
        "#include <vector>\n#include <cstdio>\nint main(){ std::vector<char*> v;"
        " for(;;){ char* p = new char[1<<24]; for(int i=0;i<(1<<24);i+=4096) p[i]=1; v.push_back(p);} }\n"
    )
    program = sandbox.prepare(source, "cpp")
    assert program.compile_result is not None and program.compile_result.verdict == "OK", program.compile_result
    result = sandbox.run(program, limits=FAST)
    assert result.verdict == "MLE", result
    check_healthy(sandbox)


def test_infinite_loop_is_tle_near_the_cpu_limit(sandbox, check_healthy):
    result = run_py(sandbox, "while True:\n    pass\n")
    assert result.verdict == "TLE", result
    assert result.cpu_time_s < FAST.cpu_time_s + 1.0
    # On a loaded machine the wall-clock deadline may come first; either way a limit stopped it.
    assert result.cpu_time_s >= FAST.cpu_time_s or "wall" in result.message, result
    assert result.wall_time_s <= FAST.wall_s + 1.0
    check_healthy(sandbox)


def test_sleep_is_tle_at_the_wall_limit(sandbox, check_healthy):
    result = run_py(sandbox, "import time\ntime.sleep(60)\n")
    assert result.verdict == "TLE", result
    assert "wall" in result.message
    assert FAST.wall_s <= result.wall_time_s < FAST.wall_s + 1.5
    check_healthy(sandbox)


def test_sigstop_to_itself_is_tle(sandbox, check_healthy):
    result = run_py(sandbox, "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\nprint('resumed')\n")
    assert result.verdict == "TLE", result
    assert b"resumed" not in result.stdout
    check_healthy(sandbox)


def test_network_is_unreachable(namespaced, check_healthy):
    source = """
import socket
for host in ("127.0.0.1", "1.1.1.1", "8.8.8.8"):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect((host, 53))
        print("connected", host)
    except OSError as exc:
        print("blocked", host, exc.errno)
try:
    socket.getaddrinfo("pypi.org", 443)
    print("resolved")
except OSError:
    print("no dns")
"""
    result = run_py(namespaced, source)
    assert result.verdict == "OK", result
    lines = result.stdout.decode().splitlines()
    assert [line.split()[0] for line in lines] == ["blocked", "blocked", "blocked", "no"], lines
    check_healthy(namespaced)


def test_writes_outside_the_work_dir_fail(namespaced, check_healthy, tmp_path: Path):
    target = tmp_path / "escaped.txt"
    source = f"""
import os
for path in ({str(target)!r}, "/etc/escaped", "/usr/escaped", {str(Path.cwd() / "escaped")!r}):
    try:
        with open(path, "w") as handle:
            handle.write("x")
        print("wrote", path)
    except OSError as exc:
        print("denied", exc.errno)
with open("inside.txt", "w") as handle:
    handle.write("fine")
print("inside", open("inside.txt").read())
"""
    result = run_py(namespaced, source)
    assert result.verdict == "OK", result
    out = result.stdout.decode()
    assert "wrote" not in out and out.count("denied") == 4 and "inside fine" in out, out
    assert not target.exists() and not (Path.cwd() / "escaped").exists()
    check_healthy(namespaced)


def test_nothing_leaks_between_runs(check_healthy):
    with Sandbox(max_workers=1) as box:  # one worker: the second run lands where the first ran
        if box.isolation_mode == Isolation.RLIMITS_ONLY:
            pytest.skip("without namespaces a job can write wherever its user may")
        places = ["/tmp/left", "left-here", "../left-above", "/dev/shm/left"]
        writer = (
            f"import os\nwritten = 0\nfor path in {places!r}:\n"
            "    try:\n        open(path, 'w').write('x')\n        written += 1\n    except OSError:\n        pass\n"
            "os.makedirs('../locked/inner')\nopen('../locked/inner/f', 'w').write('x')\n"
            "os.chmod('../locked/inner', 0)\nos.chmod('../locked', 0)\n"
            "print(written, os.getcwd())\n"
        )
        first = run_py(box, writer)
        assert first.verdict == "OK", first
        written, workdir = first.stdout.decode().split()
        assert int(written) >= 2  # at least the work directory and its parent are writable
        places.append(os.path.join(os.path.dirname(workdir), "locked"))
        reader = f"import os\nprint([os.path.exists(p) for p in {[*places, workdir]!r}])\n"
        second = run_py(box, reader)
        assert second.stdout == b"[False, False, False, False, False, False]\n", second
        check_healthy(box)


def test_parent_environment_secrets_are_invisible(monkeypatch, check_healthy):
    monkeypatch.setenv("CASCADE_TEST_SECRET", "hunter2-secret")
    with Sandbox(max_workers=1) as box:  # started after the secret is in our environment
        source = """
import os
seen = repr(dict(os.environ))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            seen += open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError:
            pass
print("hunter2" in seen, sorted(os.environ))
"""
        result = run_py(box, source)
        assert result.verdict == "OK", result
        assert result.stdout.startswith(b"False "), result
        assert b"CASCADE_TEST_SECRET" not in result.stdout
        check_healthy(box)


def test_killing_the_parent_does_not_break_the_pool(namespaced, check_healthy):
    sandbox = namespaced  # without a PID namespace the worker is an ordinary parent and can be killed
    pids_before = sorted(sandbox.worker_pids())
    source = """
import os, signal
for target in (os.getppid(), 1):
    for sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGSTOP, signal.SIGINT):
        try:
            os.kill(target, sig)
        except OSError:
            pass
try:
    os.kill(-1, signal.SIGKILL)
except OSError:
    pass
print("still here")
"""
    result = run_py(sandbox, source)
    assert result.verdict in ("OK", "RE"), result
    check_healthy(sandbox)
    assert sorted(sandbox.worker_pids()) == pids_before  # no worker had to be replaced


def test_daemon_left_behind_is_killed(sandbox, check_healthy):
    source = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.closerange(0, 3)
        time.sleep(300)
    os._exit(0)
print("parent done")
"""
    started = time.monotonic()
    result = run_py(sandbox, source)
    assert result.verdict == "OK", result
    assert time.monotonic() - started < FAST.wall_s  # the job ends with its main process
    check_healthy(sandbox)


def test_stdout_flood_is_ole(sandbox, check_healthy):
    limits = Limits(cpu_time_s=2.0, output_bytes=64 * 1024)
    result = run_py(sandbox, "import sys\nwhile True:\n    sys.stdout.write('x' * 4096)\n", limits=limits)
    assert result.verdict == "OLE", result
    assert len(result.stdout) + len(result.stderr) <= limits.output_bytes
    check_healthy(sandbox)


def test_cpp_include_dev_random_is_ce_within_compile_limits(sandbox, check_healthy):
    compile_limits = Limits(cpu_time_s=2.0, wall_time_s=4.0, memory_mb=512, max_processes=16)
    started = time.monotonic()
    program = sandbox.prepare("#include </dev/random>\nint main(){}\n", "cpp", compile_limits=compile_limits)
    elapsed = time.monotonic() - started
    assert program.compile_result is not None and program.compile_result.verdict == "CE", program.compile_result
    assert elapsed < compile_limits.wall_s + 5
    assert sandbox.run(program).verdict == "CE"
    check_healthy(sandbox)


@pytest.mark.parametrize("name", ["/etc/shadow", f"/proc/{os.getpid()}/environ"])
def test_host_secrets_are_not_readable(namespaced, name):
    result = run_py(namespaced, f"print(open({name!r}, 'rb').read()[:40])")
    assert result.verdict == "RE" or result.stdout in (b"b''\n",), result


def test_filling_the_work_dir_stops_at_the_tmpfs_size(namespaced, check_healthy):
    source = """
import errno
written = 0
try:
    for i in range(100):
        with open(f"f{i}", "wb") as handle:
            handle.write(b"x" * (15 * 2**20))
        written += 15
except OSError as exc:
    print("stopped", errno.errorcode[exc.errno], written)
"""
    result = run_py(namespaced, source, limits=Limits(cpu_time_s=5.0, memory_mb=256))
    assert result.verdict == "OK", result
    words = result.stdout.split()
    assert words[:2] == [b"stopped", b"ENOSPC"] and int(words[2]) <= 512, result
    check_healthy(namespaced)


def test_many_processes_cannot_add_up_beyond_the_memory_backstop(sandbox, check_healthy):
    worker = sandbox._workers().acquire()
    has_memory_cgroup = worker.cgroup is not None and "memory" in worker.cgroup.paths
    sandbox._workers().release(worker)
    if not has_memory_cgroup:
        pytest.skip("no writable memory cgroup on this host: only the per-process limit applies")
    source = """
import os, time
for i in range(4):
    if os.fork() == 0:
        block = bytearray(300 * 2**20)
        for j in range(0, len(block), 4096):
            block[j] = 1
        time.sleep(0.5)
        os._exit(0)
for i in range(4):
    os.wait()
"""
    # 4 x 300 MiB > 2 x 384 + 256 MiB. The kernel reclaims before it kills, which can take seconds.
    limits = Limits(cpu_time_s=3.0, wall_time_s=20.0, memory_mb=384, max_processes=16)
    result = run_py(sandbox, source, limits=limits)
    assert result.verdict == "MLE" and "all processes together" in result.message, result
    check_healthy(sandbox)
