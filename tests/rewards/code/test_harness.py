"""Harness plumbing and in-order early exit, without the sandbox."""

from __future__ import annotations

import json
import threading

from cascade_plugins.rewards.code.formats import AssertTests, CallTests
from cascade_plugins.rewards.code.harness import harness_input, parse_records
from cascade_plugins.rewards.code.reward import TestOutcome, run_in_order


def test_harness_input_carries_a_fresh_token_and_no_expected_outputs():
    suite = CallTests("f", ((1, 2),), ("SECRET-EXPECTED",))
    first = harness_input("def f(a, b): pass", suite, cpu_per_test=1.0, stop_on_failure=True)
    second = harness_input("def f(a, b): pass", suite, cpu_per_test=1.0, stop_on_failure=True)
    assert first.token != second.token and len(first.token) == 32
    token_line, spec = first.stdin.decode().split("\n", 1)
    assert token_line == first.token
    assert json.loads(spec)["args"] == [[1, 2]]
    assert b"SECRET-EXPECTED" not in first.stdin


def test_parse_records_ignores_untagged_and_broken_lines():
    stdout = b"".join(
        [b'{"i": 0, "status": "pass"}\n', b"tok {\"i\": 0, \"status\": \"wrong\"}\n", b"tok not json\n",
         b"tok [1]\n", b"other {\"i\": 1}\n"]
    )
    assert parse_records(stdout, "tok") == [{"i": 0, "status": "wrong"}]


def test_assert_suite_spec():
    run = harness_input("x = 1", AssertTests(("assert x == 1",), "import math"), cpu_per_test=2, stop_on_failure=False)
    spec = json.loads(run.stdin.split(b"\n", 1)[1])
    assert spec["kind"] == "asserts" and spec["setup"] == "import math" and spec["stop_on_failure"] is False


def verdicts(outcomes: list[TestOutcome]) -> list[str]:
    return [o.verdict for o in outcomes]


def test_run_in_order_stops_at_the_first_failure():
    calls: list[int] = []

    def one(i: int) -> TestOutcome:
        calls.append(i)
        return TestOutcome("WA" if i == 2 else "correct")

    assert verdicts(run_in_order(5, one, True, 1)) == ["correct", "correct", "WA", "SKIPPED", "SKIPPED"]
    assert calls == [0, 1, 2]
    assert verdicts(run_in_order(5, one, False, 1)) == ["correct", "correct", "WA", "correct", "correct"]


def test_run_in_order_in_parallel_does_not_depend_on_scheduling():
    release_first = threading.Event()

    def one(i: int) -> TestOutcome:
        if i == 0:
            release_first.wait(5)  # test 0 finishes last
            return TestOutcome("TLE")
        if i == 3:
            release_first.set()
            return TestOutcome("WA")
        return TestOutcome("correct")

    assert verdicts(run_in_order(5, one, True, 4)) == ["TLE"] + ["SKIPPED"] * 4
