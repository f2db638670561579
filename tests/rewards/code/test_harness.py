"""Harness plumbing without the sandbox: the value codec, the referee's input, its records, and
in-order early exit. (The harness itself runs for real in test_reward.py and test_reward_hacking.py.)"""

from __future__ import annotations

import json
import math
import threading
from collections import Counter, OrderedDict, namedtuple

import pytest

from cascade_plugins.rewards.code import referee
from cascade_plugins.rewards.code.formats import AssertTests, CallTests, HumanEvalTests
from cascade_plugins.rewards.code.harness import harness_limits, harness_spec, parse_records
from cascade_plugins.rewards.code.reward import TestOutcome, run_in_order


def roundtrip(value, resolve=None):  # type: ignore[no-untyped-def]
    return referee.decode(json.dumps(referee.encode(value)), resolve)


@pytest.mark.parametrize(
    "value",
    [
        None, True, 0, -(10**30), 1.5, "text", "ünï", b"\x00\xff", [1, [2, "x"]], (1, (2,)), (),
        {"a": 1}, {1: "int key", (1, 2): "tuple key"}, {1, 2}, frozenset({"a"}), 1 + 2j, [{"nested": (1, {2})}],
    ],
)  # fmt: skip
def test_plain_values_cross_unchanged(value):
    back = roundtrip(value)
    assert back == value and type(back) is type(value)


def test_floats_that_json_cannot_spell_still_cross():
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip([float("inf"), -float("inf")]) == [math.inf, -math.inf]


def test_subclasses_arrive_as_their_builtin_type():
    class Sneaky(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    Point = namedtuple("Point", "x y")
    assert type(roundtrip(Sneaky(3))) is int and roundtrip(Sneaky(3)) != 4
    assert roundtrip(Point(1, 2)) == (1, 2) and type(roundtrip(Point(1, 2))) is tuple
    assert type(roundtrip(OrderedDict(a=1))) is dict and type(roundtrip(Counter("aab"))) is dict
    assert roundtrip(True) is True and roundtrip(False) is False  # bool before int


@pytest.mark.parametrize("value", [object(), lambda: 0, iter([1]), (x for x in [1]), range(3), print])
def test_other_values_cannot_cross(value):
    with pytest.raises(referee.Unencodable):
        referee.encode(value)


def test_a_cycle_cannot_cross():
    loop: list = []
    loop.append(loop)
    with pytest.raises(RecursionError):
        referee.encode(loop)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": 1}',  # an untagged object
        '{"$": "object", "v": "__eq__"}',  # an unknown tag
        '{"$": "tuple", "v": 1}',  # a malformed payload
        '{"$": "dict", "v": [[1]]}',  # a pair that is not a pair
        '{"$": "complex", "v": ["1", 2]}',
        '{"$": "ref", "v": "add"}',  # a reference, where none may be resolved
        '{"$": "tuple", "v": [1], "extra": 2}',
    ],
)
def test_the_decoder_accepts_nothing_but_its_own_tags(text):
    with pytest.raises(ValueError):
        referee.decode(text)


def test_unhashable_keys_and_deep_nesting_are_errors():
    with pytest.raises(TypeError):
        referee.decode('{"$": "set", "v": [[1]]}')
    with pytest.raises(RecursionError):
        referee.decode("[" * 100_000 + "]" * 100_000)


def test_references_resolve_only_on_the_solutions_side():
    assert referee.decode('[{"$": "ref", "v": "f"}]', {"f": len}.__getitem__) == [len]
    prebuilt = referee.decoder({"f": len}.__getitem__)
    assert referee.decode('[{"$": "ref", "v": "f"}]', using=prebuilt) == [len]
    with pytest.raises(ValueError):
        referee.decode('[{"$": "ref", "v": "f"}]')


def test_encoded_values_arrive_as_text_or_bytes_only():
    assert referee.decode(b'{"$": "tuple", "v": [1, "\xc3\xa9"]}') == (1, "é")
    with pytest.raises(TypeError):
        referee.decode(12)  # type: ignore[arg-type]


def test_the_referee_input_carries_a_fresh_token_and_no_expected_outputs():
    suite = CallTests("f", ((1, 2),), ("SECRET-EXPECTED",))
    first = harness_spec("def f(a, b): pass", suite, cpu_per_test=1.0, stop_on_failure=True, reply_bytes=1024)
    second = harness_spec("def f(a, b): pass", suite, cpu_per_test=1.0, stop_on_failure=True, reply_bytes=1024)
    assert first.token != second.token and len(first.token) == 32
    spec = json.loads(first.data)
    assert spec["token"] == first.token and spec["args"] == [[1, 2]] and spec["kind"] == "call"
    assert b"SECRET-EXPECTED" not in first.data


def test_assert_and_humaneval_specs():
    asserts = harness_spec(
        "x = 1", AssertTests(("assert x == 1",), "import math"), cpu_per_test=2, stop_on_failure=False, reply_bytes=1
    )
    spec = json.loads(asserts.data)
    assert spec["kind"] == "asserts" and spec["setup"] == "import math" and spec["stop_on_failure"] is False
    humaneval = harness_spec(
        "def f(): pass", HumanEvalTests("def check(c): pass", "f", "def g(): return 1"),
        cpu_per_test=2, stop_on_failure=True, reply_bytes=1,
    )  # fmt: skip
    assert json.loads(humaneval.data)["prompt"] == "def g(): return 1"


def test_the_job_budget_covers_every_test_and_the_load():
    limits = harness_limits(2.0, [5], memory_mb=256, output_bytes=4096)
    assert limits.cpu_time_s >= 2.0 * 5 + 2.0 and limits.memory_mb == 256 and limits.output_bytes == 4096


def test_a_batch_budget_covers_every_suite():
    one, batch = harness_limits(2.0, [5], 256, 4096), harness_limits(2.0, [5, 1, 3], 256, 4096)
    assert batch.cpu_time_s == pytest.approx(one.cpu_time_s + harness_limits(2.0, [1], 256, 4096).cpu_time_s
                                             + harness_limits(2.0, [3], 256, 4096).cpu_time_s)  # fmt: skip
    assert batch.output_bytes == 3 * 4096 and batch.memory_mb == 256


def test_records_need_the_token():
    stdout = b"".join(
        [b'{"i": 0, "status": "pass"}\n', b'tok {"i": 0, "status": "wrong"}\n', b"tok not json\n",
         b"tok [1]\n", b'other {"i": 1}\n', b'tokx {"i": 2}\n']
    )  # fmt: skip
    assert parse_records(stdout, "tok") == [{"i": 0, "status": "wrong"}]


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
