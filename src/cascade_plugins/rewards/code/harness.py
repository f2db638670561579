"""Host side of the harness for call-based, assert-list and HumanEval suites.

The tests run in one sandboxed job, the :mod:`referee <cascade_plugins.rewards.code.referee>`
program, which keeps the tests and the verdict records in its own process and calls the solution
in a second process it forked before it read the tests (see ``docs/sandbox.md``, "The code
harness"). The tests reach the referee through a pipe given to :meth:`Sandbox.spawn` as stdin, so
they never pass through the sandbox worker's memory, from which every job is forked. Expected
return values of call-based tests never enter the sandbox at all: the host compares them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import select
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from cascade_plugins.rewards.code.formats import AssertTests, CallTests, HumanEvalTests
from cascade_plugins.sandbox import ExecResult, Limits, Program, Sandbox, SandboxProcess

#: CPU seconds the solution may spend loading (on top of one test's budget)
LOAD_CPU_S = 2.0


@cache
def referee_program() -> Program:
    """The referee, resident in each sandbox worker: its top level is loaded once per worker and
    every run forks from there (loading it per run would cost more than most test suites)."""
    return Program("python", Path(__file__).with_name("referee.py").read_text(encoding="utf-8"), resident=True)


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


def harness_limits(cpu_per_test: float, counts: Sequence[int], memory_mb: int, output_bytes: int) -> Limits:
    """The limits of a job running suites of ``counts`` tests: every test's budget plus loading,
    per suite (the referee enforces each test's own), and room for every suite's records."""
    return Limits(
        cpu_time_s=sum(cpu_per_test * (count + 1) + LOAD_CPU_S + 1.0 for count in counts),
        memory_mb=memory_mb,
        output_bytes=max(output_bytes, min(output_bytes * len(counts), 64 << 20)),
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


#: seconds a suite may run past its own wall-clock allowance before the host ends the job
WATCHDOG_GRACE_S = 1.0


def run_harness(
    box: Sandbox, specs: Sequence[HarnessSpec], limits: Limits, suite_wall_s: Sequence[float] | None = None
) -> list[HarnessReport]:
    """Run the referee once on the suites ``specs``, one after the other (each against a fresh
    contestant), and sort each suite's records.

    The records come through a pipe as they are written, so the host sees each suite end: a
    suite still running ``suite_wall_s[k]`` seconds (plus a grace) after the one before it
    ended ends the job (a contestant that stopped the referee costs one suite's time, not the
    batch's). A suite whose report has no ``done`` record did not finish: the job ended, or
    the referee stopped the batch after a contestant left something it could not clean up.
    """
    read_end, write_end = os.pipe()
    records_read, records_write = os.pipe()
    try:
        argv = ["--one"] if len(specs) == 1 else []
        process = box.spawn(referee_program(), stdin=read_end, stdout=records_write, limits=limits, argv=argv)
    finally:
        os.close(read_end)
        os.close(records_write)
    data = specs[0].data if len(specs) == 1 else b"[" + b",".join(spec.data for spec in specs) + b"]"
    try:
        with open(write_end, "wb", closefd=False) as pipe:
            pipe.write(data)
    except BrokenPipeError:
        pass  # the referee ended (or never started): its result says why
    finally:
        os.close(write_end)
    try:
        stdout = _read_records(process, records_read, specs, suite_wall_s, limits.output_bytes)
    finally:
        os.close(records_read)
    result = process.wait()
    result = dataclasses.replace(result, stdout=stdout)
    return [_report(result, spec.token) for spec in specs]


def _read_records(
    process: SandboxProcess,
    fd: int,
    specs: Sequence[HarnessSpec],
    suite_wall_s: Sequence[float] | None,
    cap: int,
) -> bytes:
    """What the referee writes, until it closes the pipe or the watchdog or the cap ends the job."""
    done_marks = [f'{spec.token} {{"done"'.encode() for spec in specs]
    current, data = 0, bytearray()
    deadline = time.monotonic() + suite_wall_s[0] + WATCHDOG_GRACE_S if suite_wall_s else None
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        readable, _, _ = select.select([fd], [], [], wait)
        if not readable:
            process.kill()  # the current suite overran its allowance
            break
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            break
        start = max(0, len(data) - 64)
        data += chunk
        if len(data) > cap:
            process.kill()
            break
        while current < len(specs) and data.find(done_marks[current], start) >= 0:
            current += 1
            if suite_wall_s and current < len(specs):
                deadline = time.monotonic() + suite_wall_s[current] + WATCHDOG_GRACE_S
    return bytes(data)


def _report(result: ExecResult, token: str) -> HarnessReport:
    report = HarnessReport(result)
    for record in parse_records(result.stdout, token):
        if "harness_error" in record:
            report.harness_error = str(record["harness_error"])
        elif "load_error" in record:
            report.load_error = record
        elif "done" in record:
            report.done = record
        elif isinstance(record.get("i"), int) and record["i"] not in report.tests:
            report.tests[record["i"]] = record
    return report
