"""How long a spawned program has been on a CPU or waiting for one, as its host reads it."""

from __future__ import annotations

import os
import time

import pytest

from cascade_plugins.sandbox import Limits, Sandbox, SandboxProcess
from cascade_plugins.sandbox.activity import Activity

BUSY = "import time\nend = time.process_time() + 0.6\nwhile time.process_time() < end:\n    pass\ninput()\n"
# Two processes pinned to one CPU, both busy: each waits for the CPU while the other runs.
CROWDED = """
import os, time
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
hold_r, hold_w = os.pipe()
child = os.fork()
end = time.process_time() + 0.5
while time.process_time() < end:
    pass
if child == 0:
    os.read(hold_r, 1)  # blocked until the parent lets it go: its times stay on record
    os._exit(0)
input()
os.write(hold_w, b"x")
os.waitpid(child, 0)
"""


def _spawn(sandbox: Sandbox, source: str) -> tuple[SandboxProcess, int]:
    """Start ``source`` with a pipe as its stdin (it ends once that is written to)."""
    read_end, write_end = os.pipe()
    process = sandbox.spawn(sandbox.prepare(source, "python"), stdin=read_end, limits=Limits(cpu_time_s=5))
    os.close(read_end)
    return process, write_end


def _activity_once_quiet(process: SandboxProcess) -> Activity:
    """The activity once it stops changing (the program blocked on its input)."""
    previous = process.activity()
    for _ in range(200):
        time.sleep(0.05)
        current = process.activity()
        assert current is not None and previous is not None
        if current == previous:
            return current
        previous = current
    raise AssertionError(f"the program never blocked: {previous}")


@pytest.fixture(scope="module")
def measurable(sandbox: Sandbox) -> Sandbox:
    if not os.path.exists("/proc/self/schedstat"):
        pytest.skip("no scheduler statistics on this host")
    return sandbox


def test_a_working_program_adds_running_time_a_blocked_one_adds_nothing(measurable: Sandbox) -> None:
    process, stdin = _spawn(measurable, BUSY)
    with process:
        quiet = _activity_once_quiet(process)
        assert quiet.running_s >= 0.5  # its busy loop, counted while it ran
        time.sleep(0.3)
        assert process.activity() == quiet  # blocked on its input: neither on a CPU nor waiting
        os.write(stdin, b"go\n")
        os.close(stdin)
        result = process.wait()
    assert result.verdict == "OK", result
    assert process.activity() is None  # ended


def test_time_spent_waiting_for_a_cpu_is_counted_for_every_process_of_the_job(measurable: Sandbox) -> None:
    process, stdin = _spawn(measurable, CROWDED)
    with process:
        quiet = _activity_once_quiet(process)
        # parent and child each ran 0.5 s on the one CPU they shared, so each also waited
        assert quiet.running_s >= 0.9
        assert quiet.waiting_s >= 0.3
        os.write(stdin, b"\n")
        os.close(stdin)
        assert process.wait().verdict == "OK"
