"""Parsing the three real test formats, and precise errors for broken ones."""

from __future__ import annotations

import json

import pytest

from cascade_plugins.rewards.code.formats import (
    AssertTests,
    CallTests,
    HumanEvalTests,
    StdioTests,
    TestFormatError,
    parse_tests,
)


def test_livecodebench_stdin_stdout():
    suite = parse_tests({"inputs": ["1 2\n", "3 4\n"], "outputs": ["3\n", "7\n"], "fn_name": None})
    assert suite == StdioTests(("1 2\n", "3 4\n"), ("3\n", "7\n"))


def test_livecodebench_call_based_parses_json_lines():
    tests = {"inputs": ["[2,7,11,15]\n9", "[3,3]\n6"], "outputs": ["[0, 1]", "[0, 1]"], "fn_name": "twoSum"}
    suite = parse_tests(tests)
    assert isinstance(suite, CallTests)
    assert suite.fn_name == "twoSum"
    assert suite.args == (([2, 7, 11, 15], 9), ([3, 3], 6))
    assert suite.outputs == ([0, 1], [0, 1])


def test_json_string_and_nested_unit_tests_are_accepted():
    raw = json.dumps({"inputs": ["1\n"], "outputs": ["1\n"], "fn_name": ""})
    assert parse_tests(raw) == StdioTests(("1\n",), ("1\n",))
    assert parse_tests({"unit_tests": raw}) == StdioTests(("1\n",), ("1\n",))
    assert parse_tests({"input_output": raw}) == StdioTests(("1\n",), ("1\n",))


def test_humaneval():
    suite = parse_tests({"test": "def check(candidate):\n    assert candidate(1) == 2\n", "entry_point": "inc"})
    assert suite == HumanEvalTests("def check(candidate):\n    assert candidate(1) == 2\n", "inc")


def test_mbpp_assert_list_and_dict():
    asserts = ["assert f(1) == 1", "assert f(2) == 4"]
    assert parse_tests(asserts) == AssertTests(tuple(asserts))
    mbpp = {"test_list": ["assert f(1) == 1"], "test_setup_code": "X = 1", "test_imports": ["import math"]}
    suite = parse_tests(mbpp)
    assert suite == AssertTests(("assert f(1) == 1",), "import math\nX = 1")


@pytest.mark.parametrize(
    ("tests", "message"),
    [
        (None, "tests must be an object or a list, got NoneType"),
        ("not json", "tests is a string but not JSON"),
        ({"inputs": ["1"], "outputs": []}, "tests has 1 inputs but 0 outputs"),
        ({"inputs": [], "outputs": []}, "tests has no tests"),
        ({"inputs": [{"a": 1}], "outputs": ["1"]}, r"tests.inputs\[0\] must be a string"),
        ({"inputs": ["[1"], "outputs": ["1"], "fn_name": "f"}, r"tests.inputs\[0\] line 1 is not JSON"),
        ({"inputs": ["1"], "outputs": ["1"], "fn_name": "not valid"}, "fn_name must be a Python identifier"),
        ({"test": "assert True", "entry_point": "f"}, r"tests.test must be Python source defining check"),
        ({"test": "def check(c): pass", "entry_point": 3}, "tests.entry_point must be a function name"),
        (["assert f(1) ==", "x"], r"tests\[0\] is not valid Python"),
        ({"unit_tests": {"inputs": "x", "outputs": []}}, r"tests.unit_tests.inputs and tests.unit_tests.outputs"),
        ({"foo": 1}, r"no known test format \(keys: foo\)"),
    ],
)
def test_malformed_tests_name_the_problem(tests, message):
    with pytest.raises(TestFormatError, match=message):
        parse_tests(tests)


def test_find_tests_in_the_row_where_data_sets_keep_them():
    from cascade_plugins.rewards.code.formats import find_tests

    unit = {"inputs": ["1"], "outputs": ["1"], "fn_name": None}
    assert find_tests(unit, {}) == (unit, "tests")
    assert find_tests(None, {"verifier_metadata": {"unit_tests": unit}}) == (unit, "verifier_metadata.unit_tests")
    assert find_tests(None, {"input_output": "{}"}) == ("{}", "input_output")
    mbpp = {"test_list": ["assert f()"], "test_setup_code": "", "task_id": 3}
    assert find_tests(None, mbpp) == ({"test_list": ["assert f()"], "test_setup_code": ""}, "test_list")
    humaneval = {"test": "def check(c): pass", "entry_point": "f", "prompt": "..."}
    assert find_tests(None, humaneval) == ({"test": "def check(c): pass", "entry_point": "f"}, "test")
    with pytest.raises(TestFormatError, match="sample has no tests"):
        find_tests(None, {"prompt": "x"})
    with pytest.raises(TestFormatError, match=r"verifier_metadata.unit_tests.inputs and"):
        parse_tests({"inputs": "x", "outputs": []}, "verifier_metadata.unit_tests")


def test_humaneval_prompt_is_optional_code():
    suite = parse_tests({"test": "def check(c): pass", "entry_point": "f", "prompt": "def f():\n    '''doc'''\n"})
    assert isinstance(suite, HumanEvalTests) and suite.prompt.startswith("def f")
    assert parse_tests({"test": "def check(c): pass", "entry_point": "f"}).prompt == ""
    with pytest.raises(TestFormatError, match=r"tests\.prompt must be the problem's Python code"):
        parse_tests({"test": "def check(c): pass", "entry_point": "f", "prompt": "Write a function f."})
