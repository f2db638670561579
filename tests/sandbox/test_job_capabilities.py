"""Jobs hold no capabilities: inside the sandbox's user namespace they could otherwise take the
worker's socket to the host (``pidfd_getfd``) and forge the results of later jobs."""

from __future__ import annotations

from cascade_plugins.sandbox import Sandbox

PROBE = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
held = [line.split()[0] for line in open("/proc/self/status") if line.startswith("Cap") and int(line.split()[1], 16)]
stolen = []
try:
    pidfd = os.pidfd_open(1)
except OSError:
    pidfd = None
if pidfd is not None:
    for fd in range(16):
        got = libc.syscall(438, pidfd, fd, 0)
        if got >= 0:
            stolen.append(fd)
            os.close(got)
opened = []
for fd in range(16):
    try:
        os.close(os.open(f"/proc/1/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK))
        opened.append(fd)
    except OSError:
        pass
print(held, stolen, opened, libc.ptrace(16, 1, 0, 0))
"""


def test_a_job_holds_no_capability_and_reaches_no_descriptor_of_the_worker(sandbox: Sandbox, check_healthy):
    result = sandbox.run(sandbox.prepare(PROBE, "python"))
    assert result.verdict == "OK", result
    assert result.stdout.decode().split() == ["[]", "[]", "[]", "-1"], result.stdout
    check_healthy(sandbox)


def test_a_compiled_program_holds_no_capability_after_exec(sandbox: Sandbox):
    source = (
        "#include <cstdio>\n#include <cstring>\nint main(){ FILE* f = std::fopen(\"/proc/self/status\", \"r\");"
        " char line[256]; while (std::fgets(line, sizeof line, f)) if (!std::strncmp(line, \"CapEff:\", 7) ||"
        " !std::strncmp(line, \"CapPrm:\", 7)) std::fputs(line, stdout); }\n"
    )
    program = sandbox.prepare(source, "cpp")
    result = sandbox.run(program)
    assert result.verdict == "OK", result
    assert result.stdout.decode().split() == ["CapPrm:", "0000000000000000", "CapEff:", "0000000000000000"]
