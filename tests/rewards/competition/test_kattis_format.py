"""The problem package format as today's tooling writes it (legacy, 2023-07, 2025-09): program
folders, symlinks, multi-pass, generated data, languages, the format's verdicts.

Every package here is written into ``tmp_path`` by the test itself, one per feature.
"""

from __future__ import annotations

import os
import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade_plugins.cli import cli
from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.judge import Judge
from cascade_plugins.rewards.competition.languages import cxx_standard, language_code, submission_files
from cascade_plugins.rewards.competition.package import fingerprint, load_problem

SUM_TESTS = {
    "data/sample/1.in": "1 2\n",
    "data/sample/1.ans": "3\n",
    "data/secret/1.in": "10 20\n",
    "data/secret/1.ans": "30\n",
    "data/secret/2.in": "-5 5\n",
    "data/secret/2.ans": "0\n",
}
SUM_PY = "a, b = map(int, input().split())\nprint(a + b)\n"
WRONG_PY = "a, b = map(int, input().split())\nprint(a - b)\n"
SUM_CPP = "#include <iostream>\nint main() { long long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
SUM_C = '#include <stdio.h>\nint main(void) { long long a, b; scanf("%lld %lld", &a, &b); printf("%lld\\n", a + b); }\n'
# A C++ Kattis validator split over a source and a header, as BAPCtools' validate.h packages are.
VALIDATE_H = """
#include <cstdlib>
#include <fstream>
inline long long read_answer(const char* path) { std::ifstream f(path); long long x; f >> x; return x; }
[[noreturn]] inline void accept() { std::exit(42); }
[[noreturn]] inline void reject() { std::exit(43); }
"""
VALIDATE_CC = """
#include <iostream>
#include "validate.h"
int main(int argc, char** argv) {
    long long expected = read_answer(argv[2]), got;
    if (!(std::cin >> got) || got != expected) reject();
    accept();
}
"""
CURRENT = "problem_format_version: 2025-09\nname: Sum\nuuid: 5a1c3b0e-0000-4000-8000-000000000001\n"


def write(root: Path, files: Mapping[str, str | bytes], *, executable: tuple[str, ...] = ()) -> Path:
    """Write ``files`` (path -> text, dedented) under ``root``; those in ``executable`` get mode 755."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"))
        if name in executable:
            os.chmod(path, 0o755)
    return root


def package(tmp_path: Path, problem_yaml: str = CURRENT, files: Mapping[str, str] | None = None, **kw: object) -> Path:
    return write(tmp_path / "problem", {"problem.yaml": problem_yaml, **SUM_TESTS, **(files or {})}, **kw)  # type: ignore[arg-type]


def judge_source(judge: Judge, root: Path, source: str, language: str = "python") -> tuple[str, list[str]]:
    report = judge.judge(root, source, language)
    return report.verdict, [t.verdict for t in report.tests]


def cascade_judge(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["judge", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


# -- program folders -------------------------------------------------------------------------------


def test_the_2023_07_output_validator_folder_is_one_program(tmp_path: Path, judge: Judge) -> None:
    files = {"output_validator/validate.cc": VALIDATE_CC, "output_validator/validate.h": VALIDATE_H}
    root = package(tmp_path, files=files)
    program = load_problem(root).checker.program
    assert program is not None and program.language == "cpp"
    assert program.sources == ("validate.cc",) and set(program.files) == {"validate.cc", "validate.h"}
    assert judge_source(judge, root, SUM_PY) == ("AC", ["AC", "AC", "AC"])
    assert judge_source(judge, root, WRONG_PY)[0] == "WA"


def test_an_output_validator_folder_may_hold_one_named_program(tmp_path: Path, judge: Judge) -> None:
    # problemtools' 2023-07 draft examples: output_validator/<name>/ with the sources inside
    files = {
        "output_validator/sum_validator/validate.cc": VALIDATE_CC,
        "output_validator/sum_validator/validate.h": VALIDATE_H,
    }
    root = package(tmp_path, files=files)
    program = load_problem(root).checker.program
    assert program is not None and program.path.name == "sum_validator"
    assert judge_source(judge, root, SUM_PY)[0] == "AC"


BUILD = """
#!/bin/sh
# the format: cc, c++ and python3 are on the path; build runs in (a copy of) the program folder
cc -O2 -o checker checker.c
"""
RUN = """
#!/bin/sh
HERE=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
exec "$HERE/checker" "$@"
"""
CHECKER_C = """
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    FILE *answer = fopen(argv[2], "r");
    long long expected, got;
    if (fscanf(answer, "%lld", &expected) != 1) return 1;
    if (scanf("%lld", &got) != 1 || got != expected) {
        char path[4096];
        snprintf(path, sizeof path, "%sjudgemessage.txt", argv[3]);
        FILE *message = fopen(path, "w");
        fprintf(message, "expected %lld", expected);
        fclose(message);
        return 43;
    }
    return 42;
}
"""


def test_a_validator_with_build_and_run_scripts(tmp_path: Path, judge: Judge) -> None:
    files = {"output_validator/build": BUILD, "output_validator/run": RUN, "output_validator/checker.c": CHECKER_C}
    root = package(tmp_path, files=files, executable=("output_validator/build", "output_validator/run"))
    program = load_problem(root).checker.program
    assert program is not None and program.language == "script"
    assert judge_source(judge, root, SUM_PY)[0] == "AC"
    report = judge.judge(root, WRONG_PY, "python")
    assert report.verdict == "WA" and report.tests[0].message == "expected 3"  # the feedback dir ends in '/'


def test_a_run_script_alone_is_a_program(tmp_path: Path, judge: Judge) -> None:
    run = """
    #!/bin/sh
    read got
    [ "$got" = "$(cat "$2")" ] && exit 42
    exit 43
    """
    root = package(tmp_path, files={"output_validator/run": run}, executable=("output_validator/run",))
    assert judge_source(judge, root, SUM_PY)[0] == "AC"
    assert judge_source(judge, root, WRONG_PY)[0] == "WA"


def test_a_build_script_that_fails_is_a_package_error(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path, files={"output_validator/build": "#!/bin/sh\necho broken >&2\nexit 3\n"})
    with pytest.raises(ProblemPackageError, match=r"output_validator: does not build:\n.*broken"):
        judge.judge(root, SUM_PY, "python")


def test_several_sources_are_compiled_together(tmp_path: Path, judge: Judge) -> None:
    files = {
        "output_validators/sum/main.cpp": (
            '#include "compare.h"\nint main(int, char** argv) { return compare(argv[2]); }\n'
        ),
        "output_validators/sum/compare.h": "int compare(const char* answer_path);\n",
        "output_validators/sum/compare.cpp": (
            '#include "compare.h"\n#include <fstream>\n#include <iostream>\n'
            "int compare(const char* p) { std::ifstream f(p); long long a, b; f >> a;"
            " return (std::cin >> b) && a == b ? 42 : 43; }\n"
        ),
    }
    root = package(tmp_path, "name: Sum\nvalidation: custom\n", files)
    program = load_problem(root).checker.program
    assert program is not None and program.sources == ("compare.cpp", "main.cpp")
    assert judge_source(judge, root, SUM_PY)[0] == "AC"
    assert judge_source(judge, root, WRONG_PY)[0] == "WA"


def test_a_python_validator_folder_imports_its_own_modules(tmp_path: Path, judge: Judge) -> None:
    files = {
        "output_validator/__main__.py": "import sys\nfrom compare import same\nsys.exit(42 if same() else 43)\n",
        "output_validator/__init__.py": "",
        "output_validator/compare.py": (
            "import sys\n\ndef same():\n    return sys.stdin.read().split() == open(sys.argv[2]).read().split()\n"
        ),
    }
    root = package(tmp_path, files=files)
    assert load_problem(root).checker.program.main == "__main__.py"  # type: ignore[union-attr]
    assert judge_source(judge, root, SUM_PY)[0] == "AC"
    assert judge_source(judge, root, WRONG_PY)[0] == "WA"


def test_python_sources_without_an_entry_point(tmp_path: Path) -> None:
    root = package(tmp_path, files={"output_validator/a.py": "", "output_validator/b.py": ""})
    with pytest.raises(ProblemPackageError, match=r"several Python files \(a.py, b.py\) but no __main__.py"):
        load_problem(root)


# -- symbolic links --------------------------------------------------------------------------------


def test_dangling_symlinks_where_grading_does_not_look_never_stop_it(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path, files={"input_validators/validate/validate.cc": "int main() { return 42; }\n"})
    for link in ("input_validators/validate/validation.h", "answer_validators/check/validation.h",
                 "generators/lib.h", "statement/picture.png"):  # fmt: skip
        (root / link).parent.mkdir(parents=True, exist_ok=True)
        os.symlink("../../../../../bapctools/resources/headers/validation.h", root / link)
    assert len(fingerprint(root)) == 16
    assert load_problem(root).checker.kind == "default"
    assert judge_source(judge, root, SUM_PY)[0] == "AC"


def test_a_dangling_symlink_the_validator_needs_is_named(tmp_path: Path) -> None:
    root = package(tmp_path, files={"output_validator/validate.cc": VALIDATE_CC})
    os.symlink("../../headers/validate.h", root / "output_validator" / "validate.h")
    with pytest.raises(ProblemPackageError, match=r"validate.h: symbolic link to '../../headers/validate.h', "
                                                  r"which does not exist"):  # fmt: skip
        load_problem(root)
    # and fingerprinting (the judge's cache check) does not trip over it either
    assert len(fingerprint(root)) == 16


def test_a_symlink_to_a_shared_header_is_followed(tmp_path: Path, judge: Judge) -> None:
    write(tmp_path, {"headers/validate.h": VALIDATE_H})
    root = package(tmp_path, files={"output_validator/validate.cc": VALIDATE_CC})
    os.symlink(tmp_path / "headers" / "validate.h", root / "output_validator" / "validate.h")
    assert judge_source(judge, root, SUM_PY)[0] == "AC"


# -- multi-pass ------------------------------------------------------------------------------------

# Pass 1: the solution is given n and must print 2n; the validator then asks for a second pass on
# 2n (and remembers the first answer in its feedback directory, which persists across passes).
DOUBLING_VALIDATOR = """
import pathlib, sys

given = int(open(sys.argv[1]).read())
feedback = pathlib.Path(sys.argv[3])
try:
    got = int(sys.stdin.read())
except ValueError:
    sys.exit(43)
if got != 2 * given:
    (feedback / "judgemessage.txt").write_text(f"pass for {given}: got {got}")
    sys.exit(43)
memory = feedback / "first.txt"
if not memory.exists():
    memory.write_text(str(given))
    (feedback / "nextpass.in").write_text(str(got))
    sys.exit(42)
if int(memory.read_text()) * 2 != given:
    sys.exit(1)  # the feedback directory was lost between passes
sys.exit(42)
"""
MULTI_PASS_TESTS = {
    "data/sample/1.in": "3\n", "data/sample/1.ans": "\n", "data/secret/1.in": "5\n", "data/secret/1.ans": "\n",
}  # fmt: skip


def multi_pass(tmp_path: Path, problem_type: str = "multi-pass", validator: str = DOUBLING_VALIDATOR,
               limits: str = "") -> Path:  # fmt: skip
    files = {"output_validator/validate.py": validator, **MULTI_PASS_TESTS}
    return write(tmp_path / "problem", {"problem.yaml": CURRENT + f"type: {problem_type}\n" + limits, **files})


def test_multi_pass_runs_the_solution_again_on_nextpass_in(tmp_path: Path, judge: Judge) -> None:
    root = multi_pass(tmp_path)
    assert load_problem(root).multi_pass
    report = judge.judge(root, "print(2 * int(input()))\n", "python")
    assert report.verdict == "AC" and [t.passes for t in report.tests] == [2, 2]
    # right on the first pass only: rejected on the second
    second = judge.judge(root, "n = int(input())\nprint(2 * n if n in (3, 5) else 0)\n", "python")
    assert second.verdict == "WA" and second.tests[0].passes == 2 and second.tests[0].message == "pass for 6: got 0"


def test_a_solution_failure_in_a_later_pass_is_its_verdict(tmp_path: Path, judge: Judge) -> None:
    report = judge.judge(multi_pass(tmp_path), "n = int(input())\nassert n < 6\nprint(2 * n)\n", "python")
    assert (report.verdict, report.tests[0].passes) == ("RE", 2)


def test_more_passes_than_allowed_is_a_judge_error(tmp_path: Path, judge: Judge) -> None:
    forever = "import sys\nopen(sys.argv[3] + 'nextpass.in', 'w').write('1')\nsys.exit(42)\n"
    report = judge.judge(multi_pass(tmp_path, validator=forever), "print(1)\n", "python")
    assert report.verdict == "JE" and "more than 2 passes" in report.tests[0].message
    allowed = multi_pass(tmp_path / "more", validator=forever, limits="limits: {validation_passes: 4}\n")
    assert load_problem(allowed).limits.validation_passes == 4
    assert judge.judge(allowed, "print(1)\n", "python").tests[0].passes == 4


def test_nextpass_in_with_a_rejection_is_a_judge_error(tmp_path: Path, judge: Judge) -> None:
    both = "import sys\nopen(sys.argv[3] + 'nextpass.in', 'w').write('1')\nsys.exit(43)\n"
    report = judge.judge(multi_pass(tmp_path, validator=both), "print(1)\n", "python")
    assert report.verdict == "JE" and "nextpass.in" in report.tests[0].message


INTERACTIVE_DOUBLING = """
import pathlib, sys

given = int(open(sys.argv[1]).read())
print(given, flush=True)
got = int(sys.stdin.readline())
if got != 2 * given:
    sys.exit(43)
if given < 100:
    (pathlib.Path(sys.argv[3]) / "nextpass.in").write_text(str(100 + got))
sys.exit(42)
"""


def test_interactive_multi_pass(tmp_path: Path, judge: Judge) -> None:
    root = multi_pass(tmp_path, "[interactive, multi-pass]", INTERACTIVE_DOUBLING)
    package_ = load_problem(root)
    assert package_.interactive and package_.multi_pass
    report = judge.judge(root, "print(2 * int(input()), flush=True)\n", "python")
    assert report.verdict == "AC" and [t.passes for t in report.tests] == [2, 2]
    assert judge.judge(root, "n = int(input())\nprint(2 * n if n < 100 else 0, flush=True)\n", "python").verdict == "WA"


def test_an_interactor_may_write_after_the_solution_has_gone(tmp_path: Path, judge: Judge) -> None:
    # The judges relay the interaction: what the interactor writes to a solution that has already
    # exited is dropped, never a broken pipe (which would be a judge error).
    chatty = """
    import sys
    answer = open(sys.argv[2]).read().strip()
    got = sys.stdin.readline().strip()
    sys.stdout.write("x" * 1_000_000)
    sys.stdout.flush()
    sys.exit(42 if got == answer else 43)
    """
    files = {"output_validator/interactor.py": chatty}
    root = package(tmp_path, CURRENT + "type: interactive\n", files)
    assert judge_source(judge, root, "print(3)\n")[1][0] == "AC"


def test_a_solution_may_write_after_the_interactor_has_accepted(tmp_path: Path, judge: Judge) -> None:
    # An interactor that accepts without waiting for the end of the solution's output: what the
    # solution writes afterwards is dropped too (no broken pipe, so no run-time error).
    hasty = "import sys\nanswer = open(sys.argv[2]).read().strip()\n"
    hasty += "sys.exit(42 if sys.stdin.readline().strip() == answer else 43)\n"
    root = package(tmp_path, CURRENT + "type: interactive\n", {"output_validator/interactor.py": hasty})
    late = "import sys, time\nprint(3, flush=True)\ntime.sleep(0.3)\nsys.stdout.write('0' * 1_000_000)\n"
    assert judge_source(judge, root, late)[1][0] == "AC"


# An interactor that works 3.5 s of CPU before it asks anything: past the solution's wall-clock
# limit (2 x 1 s + 1 s), though the solution itself uses next to no time.
SLOW_INTERACTOR = """
import sys, time
answer = open(sys.argv[2]).read().strip()
end = time.process_time() + 3.5
while time.process_time() < end:
    pass
print(answer, flush=True)
sys.exit(42 if sys.stdin.readline().strip() == answer else 43)
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/schedstat"), reason="no scheduler statistics on this host")
def test_a_solution_waiting_for_a_slow_interactor_is_not_out_of_time(tmp_path: Path, judge: Judge) -> None:
    yaml = CURRENT + "type: interactive\nlimits: {time_limit: 1}\n"
    root = package(tmp_path, yaml, {"output_validator/interactor.py": SLOW_INTERACTOR})
    report = judge.judge(root, "print(input(), flush=True)\n", "python")
    assert report.verdict == "AC", [(t.verdict, t.message) for t in report.tests]
    assert max(t.time_s for t in report.tests) < 1  # its CPU time: it only waited


def test_a_sleeping_interactive_solution_is_out_of_time_at_its_wall_clock_limit(
    tmp_path: Path, judge: Judge
) -> None:
    # The interactor waits for the solution, which sleeps: nobody works, the wall clock counts.
    yaml = CURRENT + "type: interactive\nlimits: {time_limit: 1}\n"
    waiting = "import sys\nanswer = open(sys.argv[2]).read().strip()\n"
    waiting += "sys.exit(42 if sys.stdin.readline().strip() == answer else 43)\n"
    root = package(tmp_path, yaml, {"output_validator/interactor.py": waiting})
    report = judge.judge(root, "import time\ntime.sleep(60)\nprint(3)\n", "python")
    first = report.tests[0]
    assert (report.verdict, first.verdict) == ("TLE", "TLE")
    assert first.message.startswith("wall time exceeded 3s (not counting"), first.message


# -- the format's verdicts -------------------------------------------------------------------------


def test_a_memory_limit_kill_is_a_run_time_error(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path, CURRENT + "limits: {memory: 256}\n")
    report = judge.judge(root, "x = bytearray(2**30)\nprint(3)\n", "python")
    assert report.verdict == "RE" and (report.tests[0].verdict, report.tests[0].cause) == ("RE", "MLE")
    assert report.to_dict()["tests"][0]["cause"] == "MLE"  # kept in the reward's details


def test_a_program_image_larger_than_its_memory_is_a_run_time_error(tmp_path: Path, judge: Judge) -> None:
    # 80 MiB of initialised static data: it compiles, but the binary outgrows the 64 MiB limit
    root = package(tmp_path, CURRENT + "limits: {memory: 64}\n")
    static = "#include <cstdio>\nchar a[80 << 20] = {1};\nint main() { a[5] = 2; std::puts(a + 5); }\n"
    report = judge.judge(root, static, "cpp")
    first = report.tests[0]
    assert (report.verdict, first.verdict, first.cause) == ("RE", "RE", "MLE"), report.compile_message
    assert "larger than the 64 MiB" in first.message and {t.verdict for t in report.tests[1:]} == {"SKIPPED"}
    assert judge.judge(root, "int main() { return x; }\n", "cpp").verdict == "CE"  # a real compile error


# -- generated test data ---------------------------------------------------------------------------

GENERATORS = """
solution: /submissions/accepted/sum.py
data:
  sample:
    data:
      - "": {in: "1 2"}
  secret:
    data:
      - small: gen.py 1 2
"""


def test_data_written_by_a_generator_must_be_generated_first(tmp_path: Path) -> None:
    root = write(tmp_path / "problem", {"problem.yaml": CURRENT, "generators/generators.yaml": GENERATORS})
    with pytest.raises(ProblemPackageError, match=r"data: missing .*generators/generators.yaml: run `bt generate`"):
        load_problem(root)
    write(root, {"data/sample/1.in": "1 2\n", "data/sample/1.ans": "3\n"})  # only the samples are on disk
    with pytest.raises(ProblemPackageError, match=r"data/secret: holds no test case; .*run `bt generate`"):
        load_problem(root)
    write(root, {"data/secret/small.in": "1 2\n", "data/secret/small.ans": "3\n"})
    assert [t.name for t in load_problem(root).tests()] == ["sample/1", "secret/small"]


def test_a_generator_config_without_secret_cases_is_not_missing_data(tmp_path: Path) -> None:
    config = "data:\n  sample:\n    data:\n      - '': {in: '1 2'}\n  secret:\n    data: []\n"
    root = write(tmp_path / "p", {"problem.yaml": CURRENT, "generators/generators.yaml": config,
                                  "data/sample/1.in": "1 2\n", "data/sample/1.ans": "3\n"})  # fmt: skip
    assert [t.name for t in load_problem(root).tests()] == ["sample/1"]


# -- problem.yaml, data/ ---------------------------------------------------------------------------


def test_problem_types_in_every_spelling(tmp_path: Path) -> None:
    interactor = {"output_validator/interactor.py": "import sys\nsys.exit(42)\n"}
    for spelling in ("pass-fail interactive", "[pass-fail, interactive]", "interactive"):
        root = package(tmp_path / spelling.replace(" ", "_"), CURRENT + f"type: {spelling}\n", interactor)
        assert load_problem(root).interactive, spelling
    root = package(tmp_path / "answers", CURRENT + "type: pass-fail submit-answer\n")
    with pytest.raises(UnsupportedFeature, match="type: submit-answer problems"):
        load_problem(root)
    code, output = cascade_judge(str(root), str(write(tmp_path, {"a.py": SUM_PY}) / "a.py"))
    assert code == 2 and "submit-answer" in output and "Traceback" not in output


def test_only_sample_and_secret_are_judged(tmp_path: Path) -> None:
    extra = {"data/invalid_input/1.in": "x\n", "data/valid_output/1.in": "1 1\n", "data/valid_output/1.ans": "2\n",
             "data/valid_output/1.out": "2\n"}  # fmt: skip
    assert [t.name for t in load_problem(package(tmp_path, files=extra)).tests()] == [
        "sample/1", "secret/1", "secret/2"
    ]  # fmt: skip


def test_2025_09_test_group_and_test_case_settings(tmp_path: Path, judge: Judge) -> None:
    files = {
        "data/secret/test_group.yaml": "output_validator_args: [float_tolerance, '0.5']\n",
        "data/secret/2.yaml": "output_validator_args: [case_sensitive]\ndescription: zero\nhint: signs\n",
        "data/secret/3.in": "",
        "data/secret/3.ans": "7\n",
        "data/secret/3.yaml": "args: [--first, '4']\n",
        "data/secret/3.files/three.txt": "3\n",
    }
    root = package(tmp_path, files=files)
    tests = {t.name: t for t in load_problem(root).tests()}
    assert tests["secret/1"].output_validator_flags == ("float_tolerance", "0.5")
    assert tests["secret/2"].output_validator_flags == ("case_sensitive",)
    assert tests["secret/3"].args == ("--first", "4") and tests["secret/3"].input_files() == {"three.txt": b"3\n"}
    solution = (
        "import sys\nif len(sys.argv) > 1:\n    print(int(sys.argv[2]) + int(open('three.txt').read()))\n"
        "else:\n    a, b = map(int, input().split())\n    print(a + b + 0.25)\n"
    )
    report = judge.judge(root, solution, "python")
    # within the group's tolerance; the test's own args replace them (no tolerance: 0.25 is off)
    assert [t.verdict for t in report.tests] == ["WA", "SKIPPED", "SKIPPED", "SKIPPED"]
    assert judge.judge(root, solution.replace("+ 0.25", ""), "python").verdict == "AC"
    write(root, {"data/secret/2.yaml": "time_limit: 3\n"})
    with pytest.raises(ProblemPackageError, match=r"2.yaml: time_limit: unknown key"):
        load_problem(root)


def test_include_files_and_constants(tmp_path: Path, judge: Judge) -> None:
    files = {
        "include/python3/offset.py": "OFFSET = {{offset}}\n",
        "include/default/offset.h": "#define OFFSET {{offset.value}}\n",
        "output_validator/validate.py": (
            "import sys\ngot = int(sys.stdin.read())\nexpected = int(open(sys.argv[2]).read()) + {{offset}}\n"
            "sys.exit(42 if got == expected else 43)  # {{unknown}} stays as it is\n"
        ),
        "submissions/accepted/sum.py": "print(sum(map(int, input().split())) + {{offset}})\n",
    }
    root = package(tmp_path, CURRENT + "constants:\n  offset: {value: 100, tex: '10^2'}\n", files)
    loaded = load_problem(root)
    assert loaded.constants["offset"] == "100" and loaded.constants["offset.tex"] == "10^2"
    assert b"{{unknown}}" in loaded.checker.program.files["validate.py"]  # type: ignore[union-attr]
    python = "from offset import OFFSET\na, b = map(int, input().split())\nprint(a + b + OFFSET)\n"
    assert judge_source(judge, root, python)[0] == "AC"
    cpp = (
        '#include <iostream>\n#include "offset.h"\n'
        "int main() { long long a, b; std::cin >> a >> b; std::cout << a + b + OFFSET; }\n"
    )
    assert judge_source(judge, root, cpp, "cpp")[0] == "AC"
    # the package's example submissions get constants too
    assert judge.judge_files(root, root / "submissions/accepted/sum.py").verdict == "AC"


def test_constants_in_test_group_yaml(tmp_path: Path) -> None:
    files = {"data/secret/test_group.yaml": "output_validator_args: [float_tolerance, '{{eps}}']\nargs: [{{n}}]\n"}
    yaml = CURRENT + "constants:\n  eps: 0.5\n  n: {value: 7}\n"
    tests = {t.name: t for t in load_problem(package(tmp_path, yaml, files)).tests()}
    assert tests["secret/1"].output_validator_flags == ("float_tolerance", "0.5") and tests["secret/1"].args == ("7",)
    # legacy testdata.yaml is not a place the format substitutes constants in
    legacy = package(tmp_path / "legacy", "name: Sum\nconstants: {eps: 0.5}\n",
                     {"data/secret/testdata.yaml": "output_validator_flags: float_tolerance {{eps}}\n"})  # fmt: skip
    with pytest.raises(ProblemPackageError, match=r"float_tolerance' needs a number, got '\{\{eps\}\}'"):
        load_problem(legacy)


# -- scoring in the 2023-07 drafts and 2025-09 -----------------------------------------------------


def scoring(tmp_path: Path, groups: Mapping[str, str]) -> Path:
    files = {
        "data/secret/a/1.in": "1 1\n", "data/secret/a/1.ans": "2\n",
        "data/secret/b/1.in": "50 50\n", "data/secret/b/1.ans": "100\n",
        "data/secret/b/2.in": "70 70\n", "data/secret/b/2.ans": "140\n",
    }  # fmt: skip
    root = write(tmp_path / "problem", {"problem.yaml": CURRENT + "type: scoring\n", **files, **groups})
    return root


SMALL_ONLY = "a, b = map(int, input().split())\nprint(a + b if a < 60 else 0)\n"


def test_2025_09_score_aggregation_and_max_score(tmp_path: Path, judge: Judge) -> None:
    root = scoring(tmp_path, {
        "data/secret/a/test_group.yaml": "max_score: 30\n",  # pass-fail aggregation by default
        "data/secret/b/test_group.yaml": "max_score: 70\nscore_aggregation: sum\n",
    })  # fmt: skip
    full = judge.judge(root, SUM_PY, "python")
    assert (full.verdict, full.score, full.max_score) == ("AC", 100, 100)
    partial = judge.judge(root, SMALL_ONLY, "python")
    # sum: each of b's two tests is worth 35; a scoring submission that scores is accepted
    assert (partial.verdict, partial.score) == ("AC", 65)
    nothing = judge.judge(root, "print(0)\n", "python")
    assert (nothing.verdict, nothing.score) == ("WA", 0)


def test_the_2023_07_draft_scoring_section(tmp_path: Path, judge: Judge) -> None:
    root = scoring(tmp_path, {
        "data/secret/testdata.yaml": "scoring:\n  aggregation: sum\n",
        "data/secret/a/testdata.yaml": "scoring:\n  score: 30\n  aggregation: min\n",
        "data/secret/b/testdata.yaml": "scoring:\n  score: 70\n  aggregation: min\n",
    })  # fmt: skip
    partial = judge.judge(root, SMALL_ONLY, "python")
    assert (partial.verdict, partial.score, partial.max_score) == ("AC", 30, 100)


def test_unsupported_scoring_features_are_named(tmp_path: Path) -> None:
    for config, feature in (
        ("max_score: unbounded\n", "max_score: an unbounded max_score"),
        ("max_score: 10\nrequire_pass: sample\n", "require_pass: group dependencies are not supported"),
    ):
        root = scoring(tmp_path / feature[:8], {"data/secret/a/test_group.yaml": config})
        with pytest.raises(UnsupportedFeature, match=feature):
            load_problem(root)


# -- languages -------------------------------------------------------------------------------------


def files_of(**files: str) -> dict[str, bytes]:
    return {name.replace("__", "."): text.encode() for name, text in files.items()}


def test_language_detection_follows_the_format() -> None:
    where = Path("submission")
    assert submission_files(where, files_of(a__py=SUM_PY)).language == "python3"
    assert submission_files(where, files_of(a__cc=SUM_CPP)).language == "cpp"
    assert submission_files(where, files_of(a__c=SUM_C)).language == "c"
    folder = submission_files(where, files_of(main__py="import helper\n", helper__py="", notes__txt="x"))
    assert (folder.language, folder.main) == ("python3", "main.py")
    with pytest.raises(UnsupportedFeature, match="unsupported language 'python2'"):
        submission_files(where, files_of(a__py="#!/usr/bin/env python2\nprint 3\n"))
    with pytest.raises(UnsupportedFeature, match="unsupported language 'python2'"):
        submission_files(where, files_of(a__py2="print 3\n"))
    with pytest.raises(UnsupportedFeature, match="unsupported language 'java'"):
        submission_files(where, files_of(Main__java="class Main {}"))
    with pytest.raises(UnsupportedFeature, match=r"language 'python3' is not allowed by problem.yaml languages"):
        submission_files(where, files_of(a__py=SUM_PY), allowed=("cpp",))


def test_the_packages_languages_are_honoured(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path, CURRENT + "languages: [cpp, c]\n")
    assert load_problem(root).languages == ("cpp", "c")
    with pytest.raises(UnsupportedFeature, match=r"not allowed by problem\.yaml languages \(cpp, c\)"):
        judge.judge(root, SUM_PY, "python")
    assert judge_source(judge, root, SUM_C, "c") == ("AC", ["AC", "AC", "AC"])
    legacy = package(tmp_path / "legacy", "name: Sum\nlanguages: python3 cpp\n")
    assert load_problem(legacy).languages == ("python3", "cpp")
    with pytest.raises(ProblemPackageError, match=r"languages: unknown language codes \['cobra'\]"):
        load_problem(package(tmp_path / "bad", CURRENT + "languages: [cobra]\n"))


def test_folder_submissions_in_python_and_cpp(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path)
    python = write(tmp_path / "py", {"main.py": "from helper import add\nprint(add(*map(int, input().split())))\n",
                                     "helper.py": "def add(a, b):\n    return a + b\n"})  # fmt: skip
    assert judge.judge_files(root, python).verdict == "AC"
    cpp = write(tmp_path / "cpp", {
        "main.cpp": (
            '#include <iostream>\n#include "add.h"\n'
            "int main() { long long a, b; std::cin >> a >> b; std::cout << add(a, b); }\n"
        ),
        "add.h": "long long add(long long a, long long b);\n",
        "add.cpp": '#include "add.h"\nlong long add(long long a, long long b) { return a + b; }\n',
    })  # fmt: skip
    assert judge.judge_files(root, cpp).verdict == "AC"
    broken = write(tmp_path / "broken", {"a.cpp": "int main() { return x; }\n", "b.cpp": "int y;\n"})
    report = judge.judge_files(root, broken)
    assert report.verdict == "CE" and "was not declared" in report.compile_message


# consteval is C++20: not a keyword for the default standard (gnu++17), so that one fails to compile
SUM_CPP20 = (
    "#include <iostream>\nconsteval long long twice(long long x) { return 2 * x; }\n"
    "int main() { long long a, b; std::cin >> a >> b; std::cout << a + b + twice(0) << '\\n'; }\n"
)


def test_cxx_dialect_names() -> None:
    assert [language_code(n) for n in ("c++20", "cpp17", "GNU++23", "c++2a", "cpp", "c")] == ["cpp"] * 5 + ["c"]
    assert [cxx_standard(n) for n in ("c++20", "cpp17", "gnu++23", "c++2a")] == ["gnu++20", "gnu++17", "gnu++23",
                                                                                 "gnu++20"]  # fmt: skip
    assert [cxx_standard(n) for n in ("cpp", "c++", "c", "python", "java", "c++99")] == [None] * 6


def test_a_cxx_dialect_compiles_with_its_standard(tmp_path: Path, judge: Judge) -> None:
    root = package(tmp_path)
    assert judge_source(judge, root, SUM_CPP20, "c++20") == ("AC", ["AC", "AC", "AC"])
    default = judge.judge(root, SUM_CPP20, "cpp")
    assert default.verdict == "CE" and "consteval" in default.compile_message
    # several sources are compiled together with the standard asked for too
    folder = write(tmp_path / "folder", {"main.cpp": SUM_CPP20, "unused.cpp": "int unused() { return 0; }\n"})
    assert judge.judge_files(root, folder, language="c++20").verdict == "AC"
    assert judge.judge_files(root, folder).verdict == "CE"


def test_cascade_judge_says_unsupported_language_with_exit_code_2(tmp_path: Path) -> None:
    root = package(tmp_path)
    python2 = write(tmp_path, {"old.py": "#!/usr/bin/env python2\nprint sum(map(int, raw_input().split()))\n"})
    code, output = cascade_judge(str(root), str(python2 / "old.py"))
    assert code == 2 and "unsupported language 'python2'" in output
    assert len(output.strip().splitlines()) == 1 and "Traceback" not in output
    code, output = cascade_judge(str(root), str(write(tmp_path, {"Main.java": "class Main {}\n"}) / "Main.java"))
    assert code == 2 and "unsupported language 'java'" in output


def test_cascade_judge_shows_the_cause_of_a_run_time_error(tmp_path: Path) -> None:
    root = package(tmp_path, CURRENT + "limits: {memory: 256}\n")
    hog = write(tmp_path, {"hog.py": "x = bytearray(2**30)\n"}) / "hog.py"
    code, output = cascade_judge(str(root), str(hog))
    assert code == 0 and "first failure: sample/1: RE (MLE)" in output


# -- public example packages (not part of this repository) -----------------------------------------

#: checkouts of public problem packages, e.g. Kattis/problem-package-format's examples/,
#: Kattis/problemtools' examples/ or BAPCtools' test/problems, separated by ':'
EXAMPLES = [Path(p) for p in os.environ.get("CASCADE_PACKAGE_EXAMPLES", "").split(os.pathsep) if p]
EXAMPLE_PACKAGES = sorted(
    {y.parent for base in EXAMPLES for y in base.rglob("problem.yaml") if "submissions" not in y.parts}
)


@pytest.mark.skipif(not EXAMPLES, reason="set CASCADE_PACKAGE_EXAMPLES to checkouts of public problem packages")
@pytest.mark.parametrize("root", EXAMPLE_PACKAGES, ids=lambda p: p.name)
def test_a_public_package_loads_or_says_what_is_missing(root: Path, judge: Judge) -> None:
    try:
        package_ = load_problem(root)
    except ProblemPackageError as exc:  # a clear, one-line reason; never another exception
        assert str(exc).startswith(str(root)) and "\n" not in str(exc)
        return
    listing = root / "submissions" / "submissions.yaml"
    if package_.interactive or (listing.is_file() and "accepted:" in listing.read_text()):
        return  # interactions are timing-bound on a loaded machine; relabelled folders are not "accepted"
    accepted = sorted((root / "submissions" / "accepted").glob("*.py"))
    for submission in accepted[:1]:
        try:
            report = judge.judge_files(package_, submission)
        except UnsupportedFeature:
            continue
        assert report.verdict == "AC", [(t.name, t.verdict, t.message) for t in report.tests]
