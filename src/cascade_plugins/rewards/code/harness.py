"""Host side of the harness for call-based, assert-list and HumanEval suites.

The tests run in one sandboxed job, the :mod:`referee <cascade_plugins.rewards.code.referee>`
program, which keeps the tests and the verdict records in its own process and calls the solution
in a second process it forked before it read the tests (see ``docs/sandbox.md``, "The code
harness"). The tests reach the referee through a pipe given to :meth:`Sandbox.spawn` as stdin, so
they never pass through the sandbox worker's memory, from which every job is forked. Expected
return values of call-based tests never enter the sandbox at all: the host compares them.
"""

from __future__ import annotations

import json
import marshal
import os
import secrets
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cascade_plugins.rewards.code.formats import AssertTests, CallTests, HumanEvalTests
from cascade_plugins.sandbox import ExecResult, Limits, Program, Sandbox

#: CPU seconds the solution may spend loading (on top of one test's budget)
LOAD_CPU_S = 2.0


#: The job's main.py: runs the referee as compiled on the host (compiling its source would cost
#: ~20 ms per job). The sandbox runs the host's own interpreter binary, so the code object fits;
#: the version check turns a mismatch into a clear harness error rather than a crash.
_LOADER = """
import marshal, sys
with open("referee.bin", "rb") as handle:
    version, code = handle.read().split(b"\\n", 1)
if version != b"%s":
    raise SystemExit("referee.bin was compiled for %s, not " + sys.implementation.cache_tag)
del handle, version
exec(marshal.loads(code))
"""


@cache
def referee_program() -> Program:
    source = Path(__file__).with_name("referee.py").read_text(encoding="utf-8")
    version = f"{sys.implementation.cache_tag}-{sys.hexversion:x}"
    code = compile(source, "referee.py", "exec", optimize=2)  # no docstrings: less to load
    compiled = version.encode() + b"\n" + marshal.dumps(code)
    return Program("python", _LOADER % (version, version), {"referee.bin": compiled})


@dataclass(frozen=True)
class HarnessSpec:
    """What the referee reads on stdin, and the token its records carry."""

    token: str
    data: bytes


def harness_spec(
    solution: str,
    suite: CallTests | AssertTests | HumanEvalTests,
    *,
    cpu_per_test: float,
    stop_on_failure: bool,
    reply_bytes: int,
) -> HarnessSpec:
    token = secrets.token_hex(16)
    spec: dict[str, Any] = {
        "token": token,
        "solution": solution,
        "count": suite.count,
        "cpu_per_test": cpu_per_test,
        "load_cpu": cpu_per_test + LOAD_CPU_S,
        "stop_on_failure": stop_on_failure,
        "reply_bytes": reply_bytes,
    }
    if isinstance(suite, CallTests):
        spec.update(kind="call", fn_name=suite.fn_name, args=[list(a) for a in suite.args])
    elif isinstance(suite, AssertTests):
        spec.update(kind="asserts", asserts=list(suite.asserts), setup=suite.setup)
    else:
        spec.update(kind="humaneval", test=suite.test, entry_point=suite.entry_point, prompt=suite.prompt)
    return HarnessSpec(token, json.dumps(spec).encode())


def harness_limits(cpu_per_test: float, count: int, memory_mb: int, output_bytes: int) -> Limits:
    """The job's limits: every test's budget plus loading (the referee enforces each test's own)."""
    return Limits(
        cpu_time_s=cpu_per_test * (count + 1) + LOAD_CPU_S + 1.0,
        memory_mb=memory_mb,
        output_bytes=output_bytes,
    )


@dataclass
class HarnessReport:
    """The referee's records of one run, sorted by kind."""

    result: ExecResult
    #: per-test records by index
    tests: dict[int, dict[str, Any]] = field(default_factory=dict)
    load_error: dict[str, Any] | None = None
    harness_error: str | None = None
    #: the final record: telemetry counts (``events``) and what the contestant ``noticed``
    done: dict[str, Any] | None = None


def parse_records(stdout: bytes, token: str) -> list[dict[str, Any]]:
    """The referee's records (lines carrying ``token``); anything else on stdout is ignored."""
    prefix = token.encode() + b" "
    records = []
    for line in stdout.splitlines():
        if line.startswith(prefix):
            try:
                record = json.loads(line[len(prefix) :])
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def run_harness(box: Sandbox, spec: HarnessSpec, limits: Limits) -> HarnessReport:
    """Run the referee on ``spec`` and sort its records."""
    read_end, write_end = os.pipe()
    try:
        process = box.spawn(referee_program(), stdin=read_end, limits=limits)
    finally:
        os.close(read_end)
    try:
        with open(write_end, "wb", closefd=False) as pipe:
            pipe.write(spec.data)
    except BrokenPipeError:
        pass  # the referee ended (or never started): its result says why
    finally:
        os.close(write_end)
    result = process.wait()
    report = HarnessReport(result)
    for record in parse_records(result.stdout, spec.token):
        if "harness_error" in record:
            report.harness_error = str(record["harness_error"])
        elif "load_error" in record:
            report.load_error = record
        elif "done" in record:
            report.done = record
        elif isinstance(record.get("i"), int) and record["i"] not in report.tests:
            report.tests[record["i"]] = record
    return report
