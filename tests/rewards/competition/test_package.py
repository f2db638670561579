"""Loading Kattis problem packages, and the clear errors for broken ones."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.package import load_problem

PROBLEMS = Path(__file__).parent / "problems"
CopyProblem = Callable[[str], Path]


def test_batch_package() -> None:
    package = load_problem(PROBLEMS / "sum")
    assert package.name == "Sum of Two Numbers"
    assert package.kind == "pass-fail" and not package.interactive
    assert package.limits.time_limit_s == 1.0 and package.limits.memory_mb == 256
    # Kattis order: sorted entries, depth first (sample before secret, large before small)
    assert [t.name for t in package.tests()] == ["sample/1", "secret/large/1", "secret/small/1", "secret/small/2"]
    assert [g.name for g in package.data.groups()] == ["", "sample", "secret", "secret/large", "secret/small"]
    assert package.checker.kind == "default"


def test_validator_flags_reach_every_test() -> None:
    package = load_problem(PROBLEMS / "hypot")
    assert all(t.output_validator_flags == ("float_tolerance", "1e-6") for t in package.tests())


def test_custom_validator_package() -> None:
    package = load_problem(PROBLEMS / "split")
    assert package.checker.kind == "kattis"
    assert package.checker.program is not None
    assert package.checker.program.language == "cpp"
    assert package.checker.program.path.name == "split_validator"  # the program is its folder
    assert package.checker.program.main_path.name == "validate.cpp"


def test_interactive_package() -> None:
    package = load_problem(PROBLEMS / "guess")
    assert package.interactive
    assert package.checker.program is not None and package.checker.program.language == "python"


def test_scoring_package_with_subtasks_and_groups() -> None:
    package = load_problem(PROBLEMS / "divisors")
    assert package.kind == "scoring"
    assert package.subtasks is not None and package.subtasks.score_type == "GroupMin"
    small, large = package.subtasks.subtasks
    assert (small.name, small.points, len(small.tests)) == ("small", 30, 3)
    assert large.tests == ("secret/2-large/1", "secret/2-large/2", "secret/2-large/3")
    groups = {g.name: g for g in package.data.groups()}
    assert groups[""].grader_flags == ("ignore_sample",) and groups[""].on_reject == "continue"
    assert groups["secret"].on_reject == "continue"  # inherited
    assert groups["secret/1-small"].accept_score == 30 and groups["secret/1-small"].on_reject == "break"


def test_subtask_test_selection_by_count_and_list(copy_problem: CopyProblem) -> None:
    root = copy_problem("divisors")
    (root / "grading.yaml").write_text(
        "score_type: GroupMul\nsubtasks:\n"
        "  - {points: 10, tests: 2}\n"
        "  - {points: 20, tests: 5}\n"
        "  - {name: picked, points: 5, tests: [sample/1, secret/2-large/3]}\n"
    )
    subtasks = load_problem(root).subtasks
    assert subtasks is not None
    first, second, picked = subtasks.subtasks
    assert first.tests == ("sample/1", "secret/1-small/1") and first.name == "subtask1"
    assert second.tests[0] == "secret/1-small/2" and len(second.tests) == 5
    assert picked.tests == ("sample/1", "secret/2-large/3")


def test_the_same_package_twice_has_the_same_fingerprint_until_a_file_changes(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    before = load_problem(root).fingerprint
    assert load_problem(root).fingerprint == before
    (root / "data" / "secret" / "small" / "3.in").write_text("1 1\n")
    (root / "data" / "secret" / "small" / "3.ans").write_text("2\n")
    assert load_problem(root).fingerprint != before


def test_timelimit_file(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("name: x\n")
    (root / ".timelimit").write_text("3.5\n")
    assert load_problem(root).limits.time_limit_s == 3.5


# -- broken packages: the error names the file (and key) -------------------------------------------


def _breaks(root: Path, match: str) -> ProblemPackageError:
    with pytest.raises(ProblemPackageError, match=match) as caught:
        load_problem(root)
    return caught.value


def test_missing_problem_yaml(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").unlink()
    error = _breaks(root, "problem.yaml: missing")
    assert error.path == str((root / "problem.yaml").resolve())


def test_not_a_directory(tmp_path: Path) -> None:
    _breaks(tmp_path / "nope", "not a directory")


def test_unknown_key_in_problem_yaml(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("name: x\ntime_limit: 2\n")
    error = _breaks(root, re.escape("problem.yaml: time_limit: unknown key"))
    assert error.key == "time_limit"


def test_unknown_limit_key(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("limits:\n  memory_mb: 10\n")
    _breaks(root, "limits.memory_mb: unknown key")


def test_invalid_yaml_names_the_line(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("name: x\nlimits: [unclosed\n")
    _breaks(root, r"problem.yaml: line \d+: invalid YAML")


def test_bad_values(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("limits:\n  time_limit: -1\n")
    _breaks(root, "limits.time_limit: must be positive")
    (root / "problem.yaml").write_text("type: multi-pass\n")
    _breaks(root, "missing: a multi-pass problem needs an output validator")
    (root / "problem.yaml").write_text("type: [pass-fail, scoring]\n")
    _breaks(root, "type: pass-fail and scoring exclude each other")
    (root / "problem.yaml").write_text("type: pass-fail teamwork\n")
    _breaks(root, r"type: unknown problem type \['teamwork'\]")
    (root / "problem.yaml").write_text("validation: custom sometimes\n")
    _breaks(root, "validation: expected 'default' or 'custom")
    (root / "problem.yaml").write_text("validator_flags: float_tolerance\n")
    _breaks(root, "validator_flags: validator flag 'float_tolerance' needs a number")


def test_input_without_answer(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "data" / "secret" / "small" / "2.ans").unlink()
    _breaks(root, re.escape("secret/small/2.in: has no matching .ans file"))


def test_answer_without_input(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "data" / "sample" / "1.in").unlink()
    _breaks(root, re.escape("sample/1.ans: has no matching .in file"))


def test_no_test_data(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    shutil.rmtree(root / "data")
    _breaks(root, "data: missing")
    (root / "data").mkdir()
    _breaks(root, "holds no test case")


def test_bad_testdata_yaml(copy_problem: CopyProblem) -> None:
    root = copy_problem("divisors")
    path = root / "data" / "secret" / "1-small" / "testdata.yaml"
    path.write_text("on_reject: maybe\n")
    _breaks(root, re.escape("1-small/testdata.yaml: on_reject: expected 'break' or 'continue'"))
    path.write_text("grader_flags: median\n")
    _breaks(root, "grader_flags: unknown grader flags")
    path.write_text("accept_scor: 3\n")
    _breaks(root, "accept_scor: unknown key")


def test_custom_validation_without_a_validator(copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    shutil.rmtree(root / "output_validators")
    _breaks(root, "output_validators: missing")


def test_two_validator_programs_are_unsupported(copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    (root / "output_validators" / "other").mkdir()
    (root / "output_validators" / "other" / "other.py").write_text("import sys\nsys.exit(42)\n")
    error = _breaks(root, r"several output validators \(other, split_validator\): only one is supported")
    assert isinstance(error, UnsupportedFeature)


def test_validator_sources_in_two_languages_need_a_build_script(copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    (root / "output_validators" / "other.py").write_text("import sys\nsys.exit(42)\n")
    _breaks(root, r"output_validators: sources in several languages \(cpp, python3\): add a build or run script")


def test_validator_in_an_unsupported_language(copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    source = root / "output_validators" / "split_validator" / "validate.cpp"
    source.rename(source.with_suffix(".java"))
    error = _breaks(root, r"split_validator: program in an unsupported language \(java\)")
    assert isinstance(error, UnsupportedFeature)


@pytest.mark.parametrize(
    ("grading_yaml", "match"),
    [
        ("checker: wcmpp\n", "checker: unknown checker 'wcmpp'"),
        ("score_type: GroupMax\nsubtasks: []\n", "score_type: unknown score type 'GroupMax'"),
        ("score_type: GroupMin\n", "subtasks: GroupMin needs a non-empty list"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10}\n", r"subtasks\[0\].tests: missing"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10, tests: 'secret/9-huge/.*'}\n", "matches no test"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10, tests: 99}\n", "asks for 99 tests"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10, tests: [secret/x]}\n", "no such tests"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10, tests: '(', }\n", "invalid regular expression"),
        ("score_type: GroupThreshold\nsubtasks:\n  - {points: 10, tests: 1}\n", "needs a threshold"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 10, tests: 1, threshold: 2}\n", "only GroupThreshold"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: 1, tests: 1, weight: 2}\n", r"subtasks\[0\].weight: unknown"),
        ("score_type: Sum\nsubtasks: []\n", "use points_per_test"),
        ("subtasks: []\n", "subtasks: needs 'score_type'"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: -5, tests: 1}\n", "must not be negative"),
        ("score_type: GroupMin\nsubtasks:\n  - {points: ten, tests: 1}\n", "expected a number"),
        (
            "score_type: GroupMin\nsubtasks:\n  - {name: a, points: 1, tests: 1}\n  - {name: a, points: 1, tests: 1}\n",
            "duplicate",
        ),
    ],
)
def test_bad_grading_yaml(copy_problem: CopyProblem, grading_yaml: str, match: str) -> None:
    root = copy_problem("divisors")
    (root / "grading.yaml").write_text(grading_yaml)
    error = _breaks(root, match)
    assert error.path.endswith("grading.yaml")


def test_subtasks_need_a_scoring_problem(copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "grading.yaml").write_text("score_type: Sum\n")
    _breaks(root, "subtasks need 'type: scoring'")


def test_custom_score_needs_a_range(copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    (root / "problem.yaml").write_text("type: scoring\nvalidation: custom score\n")
    _breaks(root, "range: 'custom score' validation needs")
