"""Run many Python tests in one sandboxed process: call-based, assert-list and HumanEval suites.

The harness is a fixed program; the solution and the tests reach it on stdin, after a random
token. It runs each test in turn and reports one JSON record per test on a private copy of the
original stdout, prefixed by the token, while the solution's own output goes to ``/dev/null``.
So a solution cannot fake results by printing them, by exiting early (a missing record fails
the test) or by reading the token from a file. Expected return values of call-based tests never
enter the sandbox: the host compares them. (Assert and HumanEval tests carry their expectations
in the test code itself, exactly as in their original harnesses.)
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from cascade_plugins.rewards.code.formats import AssertTests, CallTests, HumanEvalTests

HARNESS_SOURCE = r'''
import json, os, signal, sys, time, copy


class _TestTimeout(BaseException):
    """Raised by the CPU timer; a BaseException so that `except Exception` in solutions cannot eat it."""


def _on_timer(signum, frame):
    raise _TestTimeout()


def _cascade_main():
    token = sys.stdin.readline().strip()
    spec = json.loads(sys.stdin.read())
    channel = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdin = open(os.devnull)

    def emit(record):
        os.write(channel, (token + " " + json.dumps(record) + "\n").encode())

    def describe(exc):
        return (type(exc).__name__ + ": " + str(exc))[:2000]

    per_test_cpu = spec["cpu_per_test"]
    stop = spec["stop_on_failure"]
    namespace = {"__name__": "solution", "__builtins__": __builtins__}
    try:
        exec(compile(spec["solution"], "solution.py", "exec"), namespace)
        if spec.get("setup"):
            exec(compile(spec["setup"], "setup.py", "exec"), namespace)
    except BaseException as exc:
        emit({"load_error": describe(exc), "memory": isinstance(exc, MemoryError)})
        return
    kind = spec["kind"]
    if kind == "call":
        name = spec["fn_name"]
        holder = namespace.get("Solution")
        if not (isinstance(holder, type) and hasattr(holder, name)) and not callable(namespace.get(name)):
            emit({"load_error": "NameError: the solution defines no function or Solution method " + repr(name)})
            return
    # A CPU timer per test (a safety margin above the limit): an endless test ends here, not at the
    # whole process's budget. The process-wide limits still hold if a solution defeats the timer.
    signal.signal(signal.SIGPROF, _on_timer)
    for index in range(spec["count"]):
        started = time.process_time()
        record = {"i": index}
        signal.setitimer(signal.ITIMER_PROF, per_test_cpu * 1.05 + 0.05)
        try:
            try:
                if kind == "call":
                    holder = namespace.get("Solution")
                    if isinstance(holder, type) and hasattr(holder, name):
                        target = getattr(holder(), name)
                    else:
                        target = namespace[name]
                    value = target(*copy.deepcopy(spec["args"][index]))
                    try:
                        record["got"] = json.dumps(value)
                    except (TypeError, ValueError) as exc:
                        record["error"] = "the result cannot be compared: " + describe(exc)
                        record["status"] = "wrong"
                    else:
                        record["status"] = "done"
                elif kind == "asserts":
                    exec(compile(spec["asserts"][index], "test_%d" % index, "exec"), namespace)
                    record["status"] = "pass"
                else:
                    exec(compile(spec["test"], "test.py", "exec"), namespace)
                    namespace["check"](namespace[spec["entry_point"]])
                    record["status"] = "pass"
            finally:
                signal.setitimer(signal.ITIMER_PROF, 0)
        except _TestTimeout:
            record["status"] = "timeout"
        except AssertionError as exc:
            record["status"] = "wrong"
            record["error"] = describe(exc)
        except MemoryError as exc:
            record["status"] = "memory"
            record["error"] = describe(exc)
        except BaseException as exc:
            record["status"] = "error"
            record["error"] = describe(exc)
        record["cpu"] = time.process_time() - started
        if record["cpu"] > per_test_cpu:
            record["status"] = "timeout"
        emit(record)
        if stop and record["status"] in ("wrong", "memory", "error", "timeout"):
            break
    emit({"done": True})


_cascade_main()
'''


@dataclass(frozen=True)
class HarnessRun:
    """The stdin that drives the harness, and the token its records carry."""

    token: str
    stdin: bytes


def harness_input(
    solution: str,
    suite: CallTests | AssertTests | HumanEvalTests,
    *,
    cpu_per_test: float,
    stop_on_failure: bool,
) -> HarnessRun:
    spec: dict[str, Any] = {
        "solution": solution,
        "count": suite.count,
        "cpu_per_test": cpu_per_test,
        "stop_on_failure": stop_on_failure,
    }
    if isinstance(suite, CallTests):
        spec.update(kind="call", fn_name=suite.fn_name, args=[list(a) for a in suite.args])
    elif isinstance(suite, AssertTests):
        spec.update(kind="asserts", asserts=list(suite.asserts), setup=suite.setup)
    else:
        spec.update(kind="humaneval", test=suite.test, entry_point=suite.entry_point)
    token = secrets.token_hex(16)
    return HarnessRun(token, f"{token}\n{json.dumps(spec)}".encode())


def parse_records(stdout: bytes, token: str) -> list[dict[str, Any]]:
    """The harness's records from its stdout (lines without the token are ignored)."""
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
