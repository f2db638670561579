"""Real judgings in the sandbox: every submission of every package gets its expected verdict."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.judge import Judge
from cascade_plugins.rewards.competition.scoretypes import best_per_subtask
from cascade_plugins.sandbox import Sandbox

PROBLEMS = Path(__file__).parent / "problems"
CopyProblem = Callable[[str], Path]

#: Kattis' submission folders (plus three of ours) -> the verdict every file in them must get
EXPECTED = {
    "accepted": "AC",
    "wrong_answer": "WA",
    "time_limit_exceeded": "TLE",
    "run_time_error": "RE",
    "memory_limit_exceeded": "RE",  # the format's verdict; the limit is the test's cause
    "compile_error": "CE",
    "partial": "TLE",  # divisors: the naive solution runs out of time on the large subtask
}
CAUSES = {"memory_limit_exceeded": "MLE"}
LANGUAGES = {".cpp": "cpp", ".py": "python"}
SUBMISSIONS = sorted(PROBLEMS.glob("*/submissions/*/*.*"))


def _id(path: Path) -> str:
    return f"{path.parts[-4]}/{path.parts[-2]}/{path.name}"


def test_the_suite_covers_every_verdict_in_both_languages() -> None:
    covered = {(CAUSES.get(p.parent.name, EXPECTED[p.parent.name]), LANGUAGES[p.suffix]) for p in SUBMISSIONS}
    for verdict in ("AC", "WA", "TLE", "RE", "MLE"):
        assert {(verdict, "cpp"), (verdict, "python")} <= covered, verdict
    kinds = {p.parts[-4] for p in SUBMISSIONS}
    assert kinds == {"sum", "hypot", "split", "divisors", "guess"}


@pytest.mark.parametrize("submission", SUBMISSIONS, ids=_id)
def test_submission_gets_its_expected_verdict(judge: Judge, submission: Path) -> None:
    problem = submission.parents[2]
    report = judge.judge(problem, submission.read_text(), LANGUAGES[submission.suffix])
    expected = EXPECTED[submission.parent.name]
    failing = [(t.name, t.verdict, t.message) for t in report.tests if t.verdict not in ("AC", "SKIPPED")]
    assert report.verdict == expected, failing
    first = next(t for t in report.tests if t.verdict == report.verdict) if report.tests else None
    if first is not None:
        assert first.cause == CAUSES.get(submission.parent.name, ""), first
    if expected == "AC":
        assert report.score == report.max_score and report.normalized_score == 1.0
        # tests outside every subtask (the sample of divisors) do not run
        assert {t.verdict for t in report.tests} <= {"AC", "SKIPPED"}
        assert sum(t.verdict == "AC" for t in report.tests) >= len(report.tests) - 1
    elif submission.parent.name == "partial":
        assert (report.score, report.max_score) == (30, 100)
        assert [(g.name, g.verdict) for g in report.groups] == [("small", "AC"), ("large", "TLE")]
    else:
        assert report.normalized_score == 0.0
    if expected == "CE":
        assert "error" in report.compile_message and report.tests == []


def test_ioi_task_score_over_two_submissions(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("divisors")
    (root / "grading.yaml").write_text(
        "score_type: GroupMin\nsubtasks:\n"
        "  - {name: small, points: 30, tests: 'secret/1-small/.*'}\n"
        "  - {name: large-non-square, points: 70, tests: [secret/2-large/1, secret/2-large/2]}\n"
    )
    naive = judge.judge(root, (PROBLEMS / "divisors/submissions/partial/naive.py").read_text(), "python")
    twice = judge.judge(root, (PROBLEMS / "divisors/submissions/wrong_answer/square_twice.py").read_text(), "python")
    assert naive.subtask_scores() == {"small": 30, "large-non-square": 0}  # too slow on large tests
    assert twice.subtask_scores() == {"small": 0, "large-non-square": 70}  # wrong on n = 1
    best = best_per_subtask([naive.subtask_scores(), twice.subtask_scores()])
    assert sum(best.values()) == 100  # IOI 2024: the best of each subtask over the submissions


def test_first_error_in_test_order_and_skipped_rest(judge: Judge) -> None:
    source = (PROBLEMS / "sum/submissions/wrong_answer/overflow.cpp").read_text()
    report = judge.judge(PROBLEMS / "sum", source, "cpp")
    assert [(t.name, t.verdict) for t in report.tests] == [
        ("sample/1", "AC"),
        ("secret/large/1", "WA"),
        ("secret/small/1", "SKIPPED"),
        ("secret/small/2", "SKIPPED"),
    ]


@pytest.mark.parametrize(
    "submission", ["sum/submissions/wrong_answer/overflow.cpp", "divisors/submissions/wrong_answer/square_twice.cpp"]
)
def test_report_does_not_depend_on_the_number_of_workers(submission: str) -> None:
    path = PROBLEMS / submission
    reports = []
    for workers in (1, 4):
        with Sandbox(max_workers=workers) as sandbox:
            reports.append(Judge(sandbox).judge(path.parents[2], path.read_text(), "cpp"))
    one, many = reports
    assert [(t.name, t.verdict) for t in one.tests] == [(t.name, t.verdict) for t in many.tests]
    assert (one.verdict, one.score, one.groups) == (many.verdict, many.score, many.groups)
    assert "SKIPPED" in {t.verdict for t in one.tests}


def test_interactive_messages_come_from_the_feedback_directory(judge: Judge) -> None:
    source = (PROBLEMS / "guess/submissions/wrong_answer/linear.py").read_text()
    report = judge.judge(PROBLEMS / "guess", source, "python")
    assert report.tests[0].verdict == "WA" and report.tests[0].message == "too many queries"


def test_a_validator_that_does_not_compile_is_a_package_error(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    source = root / "output_validators" / "split_validator" / "validate.cpp"
    source.write_text(source.read_text().replace("int main(", "int main(oops "))
    solution = (PROBLEMS / "split/submissions/accepted/split.py").read_text()
    with pytest.raises(ProblemPackageError, match=r"validate\.cpp: does not compile"):
        judge.judge(root, solution, "python")


def test_a_python_validator_with_a_syntax_error_is_a_package_error(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("guess")
    (root / "output_validators" / "interactor" / "interactor.py").write_text("def broken(:\n")
    with pytest.raises(ProblemPackageError, match=r"interactor\.py: line 1"):
        judge.judge(root, "print(1)", "python")


def test_checker_is_compiled_once_per_package_version(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    first = judge.prepare(judge.load(root))
    assert judge.prepare(judge.load(root)) is first
    (root / "data" / "secret" / "4.in").write_text("7\n")
    (root / "data" / "secret" / "4.ans").write_text("1 6\n")
    second = judge.prepare(judge.load(root))
    assert second is not first and len(second.package.tests()) == 5


def test_compiled_checkers_are_bounded_least_recently_used(copy_problem: CopyProblem) -> None:
    small = Judge(cache_size=1)
    try:
        split = small.prepare(small.load(copy_problem("split")))
        small.prepare(small.load(PROBLEMS / "sum"))
        assert small.prepare(split.package) is not split  # evicted, prepared again
    finally:
        small.close()


def test_a_crashing_validator_is_a_judge_error(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("split")
    source = root / "output_validators" / "split_validator" / "validate.cpp"
    source.write_text("#include <cstdlib>\nint main() { std::abort(); }\n")
    report = judge.judge(root, "print(1, 2)", "python")
    assert report.verdict == "JE" and report.tests[0].verdict == "JE"
    assert "validator exited with code" in report.tests[0].message


TESTLIB_CHECKER = """
import sys

# testlib protocol: checker input output answer; exit 0 OK, 1 WA, 2 PE, 3 FAIL, 7 points
with open(sys.argv[2]) as f:
    out = f.read().split()
with open(sys.argv[3]) as f:
    ans = int(f.read())
if len(out) != 1 or not out[0].lstrip("-").isdigit():
    print("wrong output format: expected one integer", file=sys.stderr)
    sys.exit(2)
value = int(out[0])
if value == ans:
    sys.exit(0)
if abs(value - ans) == 1:
    print("points 0.5 off by one", file=sys.stderr)
    sys.exit(7)
sys.exit(1)
"""


def _solution(expression: str) -> str:
    return f"a, b = map(int, input().split())\nprint({expression})\n"


def test_custom_testlib_checker(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("divisors")
    (root / "output_validators" / "checker").mkdir(parents=True)
    (root / "output_validators" / "checker" / "check.py").write_text(TESTLIB_CHECKER)
    (root / "problem.yaml").write_text("type: scoring\nvalidation: custom\nlimits: {time_limit: 1}\n")
    (root / "grading.yaml").write_text(
        "checker: testlib\nscore_type: GroupMul\nsubtasks:\n  - {points: 10, tests: 'secret/.*'}\n"
    )
    off_by_one = "n = int(input())\nc = sum(2 for i in range(1, int(n**0.5) + 1) if n % i == 0)\n"
    off_by_one += "print(c - (1 if int(n**0.5) ** 2 == n else 0) + 1)\n"
    report = judge.judge(root, off_by_one, "python")
    # every test is off by one: points 0.5 each -> 10 x 0.5^6
    assert report.verdict == "AC"
    assert report.score == pytest.approx(10 * 0.5**6)
    assert all(t.score == 0.5 for t in report.tests if t.name.startswith("secret"))
    garbage = judge.judge(root, "print('many divisors')", "python")
    assert garbage.verdict == "PE" and garbage.score == 0


KATTIS_SCORE_VALIDATOR = """
import sys

with open(sys.argv[2]) as f:
    answer = int(f.read())
output = sys.stdin.read().split()
if len(output) != 1:
    sys.exit(43)
with open(sys.argv[3] + "/score.txt", "w") as f:
    f.write(str(max(0, 10 - abs(int(output[0]) - answer))))
with open(sys.argv[3] + "/judgemessage.txt", "w") as f:
    f.write("scored")
sys.exit(42)
"""


def test_custom_score_validator(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("type: scoring\nvalidation: custom score\nlimits: {time_limit: 1}\n")
    (root / "data" / "testdata.yaml").write_text("on_reject: continue\nrange: 0 40\n")
    (root / "output_validators" / "score").mkdir(parents=True)
    (root / "output_validators" / "score" / "validate.py").write_text(KATTIS_SCORE_VALIDATOR)
    exact = judge.judge(root, _solution("a + b"), "python")
    assert (exact.verdict, exact.score, exact.max_score) == ("AC", 40, 40)
    assert exact.tests[0].message == "scored"
    off_by_two = judge.judge(root, _solution("a + b + 2"), "python")
    assert off_by_two.score == 32 and off_by_two.normalized_score == pytest.approx(0.8)


def test_named_standard_checker(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "grading.yaml").write_text("checker: ncmp\n")
    assert judge.judge(root, _solution("a + b"), "python").verdict == "AC"
    # ncmp reads int64s: a leading zero is a presentation error, not a wrong answer
    assert judge.judge(root, _solution("'0' + str(a + b)"), "python").verdict == "PE"


def test_kattis_scoring_groups_without_subtasks(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("divisors")
    (root / "grading.yaml").unlink()
    naive = (PROBLEMS / "divisors/submissions/partial/naive.cpp").read_text()
    report = judge.judge(root, naive, "cpp")
    assert (report.scoring, report.score, report.max_score) == ("kattis-groups", 30, 100)
    assert {g.name: g.verdict for g in report.groups}["secret/2-large"] == "TLE"


def test_output_limit_is_a_run_time_error(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("limits: {time_limit: 1, output: 1}\n")
    flood = "import sys\nsys.stdout.write('1' * (4 << 20))\n"
    report = judge.judge(root, flood, "python")
    assert report.verdict == "RE" and (report.tests[0].verdict, report.tests[0].cause) == ("RE", "OLE")
    assert "output exceeded" in report.tests[0].message


@pytest.mark.parametrize("language", ["python", "cpp"])
def test_an_endless_output_flood_is_a_time_limit_exceeded(
    judge: Judge, copy_problem: CopyProblem, language: str
) -> None:
    # As the format's judges see it: the output is only measured once the run is over, and this
    # run is never over before the time limit.
    root = copy_problem("sum")
    (root / "problem.yaml").write_text("limits: {time_limit: 1, output: 1}\n")
    flood = {
        "python": "import sys\nwhile True:\n    sys.stdout.write('fill stdout with nonsense\\n' * 100)\n",
        "cpp": "#include <cstdio>\nint main() { for (;;) std::fputs(\"fill stdout with nonsense\\n\", stdout); }\n",
    }[language]
    report = judge.judge(root, flood, language)
    assert report.verdict == "TLE" and (report.tests[0].verdict, report.tests[0].cause) == ("TLE", "")


def test_interactive_problems_need_two_workers() -> None:
    with Sandbox(max_workers=1) as sandbox:
        judge = Judge(sandbox)
        with pytest.raises(ValueError, match="at least 2 workers"):
            judge.judge(PROBLEMS / "guess", "print('! 1')", "python")
