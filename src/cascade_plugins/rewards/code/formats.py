"""The test formats a sample's ``tests`` may use, parsed into one small type each.

1. LiveCodeBench / NeMo-Gym ``unit_tests``: ``{"inputs": [...], "outputs": [...], "fn_name": null}``
   (stdin/stdout) or with ``"fn_name": "name"`` (call-based; each input holds one JSON value per
   line, the arguments). Also accepted nested as ``{"unit_tests": {...}}`` or APPS-style
   ``{"input_output": "<json>"}``, and as a JSON string.
2. HumanEval: ``{"test": "<defines check(candidate)>", "entry_point": "f"}``, optionally with the
   problem's ``"prompt"`` (its code defines helpers some tests call, such as ``poly``).
3. MBPP: a list of assert statements, or ``{"test_list": [...], "test_setup_code": "...",
   "test_imports": [...]}``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["AssertTests", "CallTests", "HumanEvalTests", "StdioTests", "TestFormatError", "TestSuite", "parse_tests"]


class TestFormatError(ValueError):
    """The sample's tests are malformed; the message names the key path."""

    __test__ = False  # not a pytest class


@dataclass(frozen=True)
class StdioTests:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.inputs)


@dataclass(frozen=True)
class CallTests:
    fn_name: str
    #: the positional arguments of each call
    args: tuple[tuple[Any, ...], ...]
    outputs: tuple[Any, ...]

    @property
    def count(self) -> int:
        return len(self.args)


@dataclass(frozen=True)
class AssertTests:
    asserts: tuple[str, ...]
    setup: str = ""

    @property
    def count(self) -> int:
        return len(self.asserts)


@dataclass(frozen=True)
class HumanEvalTests:
    test: str
    entry_point: str
    #: the problem's own code (signature, docstring, helpers): run on the tests' side, so helpers
    #: the tests call (HumanEval/32's ``poly``) are the problem's, not the solution's
    prompt: str = ""

    @property
    def count(self) -> int:
        return 1


TestSuite = StdioTests | CallTests | AssertTests | HumanEvalTests


def is_python(source: str) -> bool:
    """Whether ``source`` compiles as Python."""
    try:
        compile(source, "<prompt>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, Sequence) and all(isinstance(line, str) for line in value):
        return "\n".join(value)  # some data sets store stdin as a list of lines
    raise TestFormatError(f"{where} must be a string, got {type(value).__name__}")


def _call_args(value: Any, where: str) -> tuple[Any, ...]:
    if isinstance(value, list):
        return tuple(value)
    if not isinstance(value, str):
        raise TestFormatError(f"{where} must be a string of JSON lines or a list of arguments")
    args = []
    for number, line in enumerate(value.splitlines(), 1):
        if not line.strip():
            continue
        try:
            args.append(json.loads(line))
        except ValueError as exc:
            raise TestFormatError(f"{where} line {number} is not JSON: {exc}") from None
    return tuple(args)


def _call_output(value: Any, where: str) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise TestFormatError(f"{where} is not JSON: {value[:80]!r}") from None


def _unit_tests(tests: Mapping[str, Any], where: str) -> StdioTests | CallTests:
    inputs, outputs = tests.get("inputs"), tests.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        raise TestFormatError(f"{where}.inputs and {where}.outputs must be lists")
    if len(inputs) != len(outputs):
        raise TestFormatError(f"{where} has {len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        raise TestFormatError(f"{where} has no tests")
    fn_name = tests.get("fn_name")
    if fn_name in (None, ""):
        return StdioTests(
            tuple(_text(v, f"{where}.inputs[{i}]") for i, v in enumerate(inputs)),
            tuple(_text(v, f"{where}.outputs[{i}]") for i, v in enumerate(outputs)),
        )
    if not isinstance(fn_name, str) or not fn_name.isidentifier():
        raise TestFormatError(f"{where}.fn_name must be a Python identifier, got {fn_name!r}")
    return CallTests(
        fn_name,
        tuple(_call_args(v, f"{where}.inputs[{i}]") for i, v in enumerate(inputs)),
        tuple(_call_output(v, f"{where}.outputs[{i}]") for i, v in enumerate(outputs)),
    )


def _asserts(statements: Any, where: str, setup: Any = "", imports: Any = ()) -> AssertTests:
    if not isinstance(statements, list) or not statements:
        raise TestFormatError(f"{where} must be a non-empty list of assert statements")
    for index, statement in enumerate(statements):
        if not isinstance(statement, str) or not statement.strip():
            raise TestFormatError(f"{where}[{index}] must be a non-empty string")
        try:
            compile(statement, f"{where}[{index}]", "exec")
        except SyntaxError as exc:
            raise TestFormatError(f"{where}[{index}] is not valid Python: {exc.msg}") from None
    if not isinstance(setup, str):
        raise TestFormatError("tests.test_setup_code must be a string")
    if not isinstance(imports, (list, tuple)) or not all(isinstance(i, str) for i in imports):
        raise TestFormatError("tests.test_imports must be a list of strings")
    prelude = "\n".join([*imports, setup]).strip()
    return AssertTests(tuple(statements), prelude)


def find_tests(tests: Any, metadata: Mapping[str, Any]) -> tuple[Any, str]:
    """The tests of a sample and where they were found: ``sample.tests``, else the places data sets
    keep them in a row (NeMo-Gym ``verifier_metadata.unit_tests``, ``unit_tests``, APPS
    ``input_output``, MBPP ``test_list``, HumanEval ``test`` + ``entry_point``)."""
    if tests is not None:
        return tests, "tests"
    verifier = metadata.get("verifier_metadata")
    if isinstance(verifier, Mapping) and verifier.get("unit_tests") is not None:
        return verifier["unit_tests"], "verifier_metadata.unit_tests"
    for key in ("unit_tests", "input_output"):
        if metadata.get(key) is not None:
            return metadata[key], key
    if metadata.get("test_list") is not None:
        keys = ("test_list", "test_setup_code", "test_imports")
        return {k: metadata[k] for k in keys if k in metadata}, "test_list"
    if metadata.get("test") is not None and metadata.get("entry_point") is not None:
        return {"test": metadata["test"], "entry_point": metadata["entry_point"]}, "test"
    raise TestFormatError(
        "sample has no tests: expected 'tests', or one of verifier_metadata.unit_tests, unit_tests, "
        "input_output, test_list, test + entry_point"
    )


def parse_tests(tests: Any, where: str = "tests") -> TestSuite:
    """Parse ``sample.tests`` into a suite; raises :class:`TestFormatError` naming what is wrong."""
    if isinstance(tests, str):
        try:
            tests = json.loads(tests)
        except ValueError:
            raise TestFormatError(f"{where} is a string but not JSON") from None
    if isinstance(tests, list):
        if tests and all(isinstance(t, str) for t in tests):
            return _asserts(tests, where)
        raise TestFormatError(f"{where} as a list must hold assert statements (strings)")
    if not isinstance(tests, Mapping):
        raise TestFormatError(f"{where} must be an object or a list, got {type(tests).__name__}")
    if "unit_tests" in tests:
        return parse_tests(tests["unit_tests"], f"{where}.unit_tests")
    if "input_output" in tests:
        return parse_tests(tests["input_output"], f"{where}.input_output")
    if "inputs" in tests or "outputs" in tests:
        return _unit_tests(tests, where)
    if "test" in tests or "entry_point" in tests:
        test, entry_point = tests.get("test"), tests.get("entry_point")
        if not isinstance(test, str) or "def check" not in test:
            raise TestFormatError(f"{where}.test must be Python source defining check(candidate)")
        if not isinstance(entry_point, str) or not entry_point.isidentifier():
            raise TestFormatError(f"{where}.entry_point must be a function name, got {entry_point!r}")
        prompt = tests.get("prompt") or ""
        if not isinstance(prompt, str) or (prompt and not is_python(prompt)):
            raise TestFormatError(f"{where}.prompt must be the problem's Python code")
        return HumanEvalTests(test, entry_point, prompt)
    if "test_list" in tests:
        setup, imports = tests.get("test_setup_code") or "", tests.get("test_imports") or ()
        return _asserts(tests["test_list"], f"{where}.test_list", setup, imports)
    keys = ", ".join(sorted(map(str, tests))) or "none"
    raise TestFormatError(
        f"{where} has no known test format (keys: {keys}); expected inputs/outputs[/fn_name], "
        "test/entry_point, or test_list"
    )
