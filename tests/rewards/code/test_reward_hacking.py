"""Reward hacking: programs that solve nothing, run for real through the ``code`` reward.

Every cheat of ``cheats.py`` (builtins patching, frame walking, gc scanning, forged records on
descriptors, exit tricks, objects equal to everything, patched ``isinstance``/``type``/
``math.isclose``, reading the tests from disk or memory, answers learned from the prompt, attacks
on the harness's channel and on the process that runs the tests) must get reward 0 in every
format, in both languages where the format allows. An honest solution in the same batch gets 1,
so a cheat fails because it cheats, not because the harness is broken.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins.interfaces import RewardResult, Sample
from cascade_plugins.rewards.code import CodeReward
from cascade_plugins.sandbox import Isolation

_spec = importlib.util.spec_from_file_location("code_reward_cheats", Path(__file__).with_name("cheats.py"))
assert _spec is not None and _spec.loader is not None
cheats = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cheats)

HONEST = "def add(a, b):\n    return a + b\n"
HUMANEVAL_TEST = (
    f"# {cheats.MARKER}\n"
    "def check(candidate):\n"
    "    assert isinstance(candidate(2, 3), int)\n"
    "    assert candidate(2, 3) == 5\n"
    "    assert candidate(-1, 1) == 0\n"
    "    assert candidate(10, 20) == 30\n"
)
SUITES: dict[str, Any] = {
    "humaneval": {"test": HUMANEVAL_TEST, "entry_point": "add"},
    "asserts": {
        "test_list": [
            f"assert isinstance(add(2, 3), int)  # {cheats.MARKER}",
            "assert add(2, 3) == 5",
            "assert add(-1, 1) == 0",
            "assert add(10, 20) == 30",
        ]
    },
    "call": {"inputs": ["2\n3", "-1\n1", "10\n20"], "outputs": ["5", "0", "30"], "fn_name": "add"},
    "humaneval, floats": {
        "test": "import math\n\ndef check(candidate):\n    assert math.isclose(candidate(0.5, 0.25), 0.75)\n"
        "    assert abs(candidate(1.5, 2.25) - 3.75) < 1e-9\n",
        "entry_point": "add",
    },
    "asserts, floats": {
        "test_list": ["assert math.isclose(add(0.5, 0.25), 0.75)", "assert abs(add(1.5, 2.25) - 3.75) < 1e-9"],
        "test_imports": ["import math"],
    },
}
#: cheats that stop the whole test process are slow to end (its wall-clock limit): one suite each
SLOW_CHEATS = {"stops the process that runs the tests": "humaneval"}

STDIO = {"inputs": ["2 3\n", "-1 1\n", "10 20\n"], "outputs": ["5\n", "0\n", "30\n"], "fn_name": None}
#: outputs no program can compute: a copy of them is the only way to pass
STDIO_SECRET = {
    "inputs": ["2 3\n", "-1 1\n", "10 20\n"],
    "outputs": ["5 tok-91ac52\n", "0 tok-3b7e0d\n", "30 tok-c4f1a8\n"],
    "fn_name": None,
}
HONEST_PYTHON_STDIO = "a, b = map(int, input().split())\nprint(a + b)\n"
HONEST_CPP_STDIO = (
    "#include <cstdio>\nint main(){ long a, b; std::scanf(\"%ld %ld\", &a, &b); std::printf(\"%ld\\n\", a + b); }"
)


def fenced(code: str, language: str = "python") -> str:
    return f"<think>no idea</think>\n```{language}\n{code}\n```\n"


def cases() -> list[tuple[str, str]]:
    return [
        (cheat, suite)
        for cheat in cheats.PYTHON_CHEATS
        for suite in SUITES
        if cheat not in SLOW_CHEATS or SLOW_CHEATS[cheat] == suite
    ]


@pytest.fixture(scope="module")
def reward() -> Iterator[CodeReward]:
    instance = CodeReward(max_workers=2, time_limit_s=0.5)
    if instance._box().isolation_mode == Isolation.RLIMITS_ONLY:
        instance.close()
        pytest.skip("without namespaces the solution shares the host's processes and files (docs/sandbox.md)")
    yield instance
    instance.close()


@pytest.fixture(scope="module")
def harness_results(reward: CodeReward) -> dict[tuple[str, str], RewardResult]:
    """Every cheat on every suite, and the honest solution on each, scored as one batch."""
    keys = [*cases(), *(("honest", suite) for suite in SUITES)]
    samples = [
        Sample(response=fenced(HONEST if cheat == "honest" else cheats.PYTHON_CHEATS[cheat]), tests=SUITES[suite])
        for cheat, suite in keys
    ]
    return dict(zip(keys, reward.score(samples), strict=True))


@pytest.mark.slow
@pytest.mark.parametrize("suite", list(SUITES))
def test_the_honest_solution_passes(harness_results, suite):
    result = harness_results[("honest", suite)]
    assert (result.reward, result.verdict) == (1.0, "correct"), result.details


@pytest.mark.slow
@pytest.mark.parametrize(("cheat", "suite"), cases())
def test_cheat_gets_nothing(harness_results, cheat, suite):
    result = harness_results[(cheat, suite)]
    assert result.reward == 0.0, (result.verdict, result.details)
    assert result.verdict != "correct" and result.details["passed"] < result.details["total"]


@pytest.mark.slow
def test_stopping_the_test_process_is_a_timeout(harness_results):
    result = harness_results[("stops the process that runs the tests", "humaneval")]
    assert result.verdict == "TLE", result.details


@pytest.mark.slow
def test_cheats_show_up_in_the_telemetry(harness_results):
    def seen(cheat: str, suite: str = "humaneval") -> dict[str, Any]:
        return harness_results[(cheat, suite)].details.get("suspicious", {})

    assert "patched builtins" in seen("patches everything at once")["noticed"]
    assert "frame access" in seen("looks for the tests in its callers' frames")["noticed"]
    assert seen("walks the frames to the reporter when called")["protocol_errors"] >= 1  # then it forged
    assert "gc scan" in seen("rewrites the tests found by gc")["noticed"]
    assert seen("os._exit(0) at import")["early_exit"] is True
    assert seen("sends garbage on the harness's channel")["protocol_errors"] >= 1
    assert seen("swallows every exception while looping")["ignored_interrupts"] >= 1
    assert "frame walking" in seen("walks the frames to the reporter at import, then os._exit(0)")["source"]
    assert "suspicious" not in harness_results[("honest", "humaneval")].details


@pytest.mark.slow
@pytest.mark.parametrize(
    "tests",
    [
        {"inputs": ["1\n2"], "outputs": ["[]"], "fn_name": "add"},
        {"test": f"# {cheats.MARKER}\ndef check(candidate):\n    assert candidate(1, 2) == []\n", "entry_point": "add"},
        {"test_list": [f"assert add(1, 2) == []  # {cheats.MARKER}"]},
    ],
    ids=["call", "humaneval", "asserts"],
)
def test_the_solution_reaches_nothing_of_the_tests_or_the_verdict(reward, tests):
    """The solution's process reports all it can reach: capabilities, the test process's
    descriptors and memory (by /proc, ptrace, pidfd_getfd), extra descriptors, a stdin or stdout
    that is not /dev/null, and any copy of the tests (in its memory, its live objects, or files)."""
    result = reward.score([Sample(response=fenced(cheats.REACH_PROBE), tests=tests)])[0]
    assert result.verdict == "correct", result.details.get("first_failure")


@pytest.fixture(scope="module")
def stdio_results(reward: CodeReward) -> dict[tuple[str, str, str], RewardResult]:
    cpp = CodeReward(language="cpp", max_workers=2, time_limit_s=0.5)
    try:
        results: dict[tuple[str, str, str], RewardResult] = {}
        for language, instance, table, honest in (
            ("python", reward, cheats.PYTHON_STDIO_CHEATS, HONEST_PYTHON_STDIO),
            ("cpp", cpp, cheats.CPP_STDIO_CHEATS, HONEST_CPP_STDIO),
        ):
            keys = [(language, name, suite) for name in [*table, "honest"] for suite in ("stdio", "secret")]
            samples = [
                Sample(
                    response=fenced(honest if name == "honest" else table[name], language),
                    tests=STDIO if suite == "stdio" else STDIO_SECRET,
                )
                for _, name, suite in keys
            ]
            results.update(zip(keys, instance.score(samples), strict=True))
        return results
    finally:
        cpp.close()


STDIO_CASES = [
    (language, name, suite)
    for language, table in (("python", cheats.PYTHON_STDIO_CHEATS), ("cpp", cheats.CPP_STDIO_CHEATS))
    for name in table
    for suite in ("stdio", "secret")
]


@pytest.mark.slow
@pytest.mark.parametrize(("language", "cheat", "suite"), STDIO_CASES)
def test_stdio_cheat_gets_nothing(stdio_results, language, cheat, suite):
    result = stdio_results[(language, cheat, suite)]
    assert result.reward == 0.0, (result.verdict, result.details)


@pytest.mark.slow
@pytest.mark.parametrize("language", ["python", "cpp"])
def test_the_honest_stdio_program_passes(stdio_results, language):
    assert stdio_results[(language, "honest", "stdio")].verdict == "correct"
    assert stdio_results[(language, "honest", "secret")].verdict == "WA"  # the secrets are not computable
