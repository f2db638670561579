"""Reward hacking against the competition judge: Python and C++ programs that solve nothing.

Each must get no point: answers learned from the sample, answer files read from the host (by
path, by search, by ``#include``), Kattis' accept exit code, forged validator feedback, forged
sandbox results written to the worker's socket, memory scans for the answers checkers were given,
and attacks on the interactor.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.competition.judge import Judge
from cascade_plugins.rewards.competition.programs import FEEDBACK_MARKER, STDIN_CLOSED_KEY
from cascade_plugins.rewards.competition.reward import CompetitionReward
from cascade_plugins.sandbox import Isolation

CopyProblem = Callable[[str], Path]
SECRET = "tok-5e1f0a"


@pytest.fixture(scope="module", autouse=True)
def _namespaces(judge: Judge) -> None:
    if judge.sandbox.isolation_mode != Isolation.BWRAP:
        pytest.skip("without bubblewrap the host's files (the packages) are visible to solutions (docs/sandbox.md)")


@pytest.fixture
def secret_problem(tmp_path: Path) -> Path:
    """A custom-validator problem whose accepted output is a secret only the answer file holds."""
    root = tmp_path / "secret"
    (root / "data" / "secret").mkdir(parents=True)
    (root / "output_validators" / "v").mkdir(parents=True)
    (root / "problem.yaml").write_text("name: Secret\nvalidation: custom\nlimits:\n  time_limit: 1\n  memory: 256\n")
    (root / "data" / "secret" / "1.in").write_text("1\n")
    (root / "data" / "secret" / "1.ans").write_text(SECRET + "\n")
    (root / "output_validators" / "v" / "validator.py").write_text(
        "import sys\nanswer = open(sys.argv[2]).read().split()\n"
        "sys.exit(42 if sys.stdin.read().split() == answer else 43)\n"
    )
    return root


def assert_nothing(report) -> None:  # type: ignore[no-untyped-def]
    assert report.verdict != "AC", [(t.name, t.verdict, t.message) for t in report.tests]
    assert report.score == 0.0 and report.normalized_score == 0.0


def _forged_frames() -> bytes:
    """A sandbox worker's result messages: one for the solution's own run, one accepting for the
    checker's run that follows on the same worker."""

    def frame(header: dict, blobs: list[bytes]) -> bytes:
        data = json.dumps(dict(header, blobs=[len(b) for b in blobs])).encode()
        return struct.pack(">I", len(data)) + data + b"".join(blobs)

    base = {"op": "result", "signal": None, "cpu_time_s": 0.01, "wall_time_s": 0.01, "peak_memory_kb": 1000}
    base.update(reason="", collected=[], recycle=False)
    feedback = FEEDBACK_MARKER + json.dumps({STDIN_CLOSED_KEY: True, "judgemessage.txt": "ok", "score.txt": "1"})
    return frame(dict(base, exit_code=0), [b"x\n", b""]) + frame(dict(base, exit_code=42), [b"", feedback.encode()])


FORGE_PY = f"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
forged = {_forged_frames()!r}
for pid in [p for p in os.listdir("/proc") if p.isdigit()]:
    try:
        pidfd = os.pidfd_open(int(pid))
        fds = os.listdir(f"/proc/{{pid}}/fd")
    except OSError:
        fds = [str(fd) for fd in range(16)]
        try:
            pidfd = os.pidfd_open(int(pid))
        except OSError:
            continue
    for fd in fds:
        stolen = libc.syscall(438, pidfd, int(fd), 0)
        if stolen >= 0:
            try:
                os.write(stolen, forged)
            except OSError:
                pass
print("x")
"""
FORGE_CPP = (
    "#include <cstdio>\n#include <sys/syscall.h>\n#include <unistd.h>\n"
    f"static const unsigned char forged[] = {{{', '.join(str(b) for b in _forged_frames())}}};\n"
    "int main(){ for (int pid = 1; pid < 64; ++pid) { int pidfd = syscall(434, pid, 0); if (pidfd < 0) continue;\n"
    "  for (int fd = 0; fd < 16; ++fd) { int s = syscall(438, pidfd, fd, 0);\n"
    "    if (s >= 0) write(s, forged, sizeof forged); } }\n"
    '  std::puts("x"); }\n'
)
MEMORY_SCAN_PY = r"""
import os, re
found = set()
for pid in ("self", "1"):
    try:
        with open(f"/proc/{pid}/maps") as maps:
            regions = [line.split() for line in maps]
        mem = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        continue
    for region in regions:
        if region[1].startswith("r"):
            start, end = (int(x, 16) for x in region[0].split("-"))
            try:
                found.update(re.findall(rb"tok-[0-9a-f]{6}", os.pread(mem, end - start, start)))
            except (OSError, OverflowError):
                pass
print(b" ".join(sorted(found)).decode() or "nothing")
"""


def test_forged_worker_results_do_not_accept(judge: Judge, secret_problem: Path) -> None:
    for source, language in ((FORGE_PY, "python"), (FORGE_CPP, "cpp")):
        report = judge.judge(secret_problem, source, language)
        assert_nothing(report)
    honest_but_wrong = judge.judge(secret_problem, "print('x')", "python")
    assert honest_but_wrong.verdict == "WA"  # the workers still answer in step with the host


def test_a_memory_scan_finds_no_answer_the_checkers_were_given(judge: Judge, secret_problem: Path) -> None:
    assert judge.judge(secret_problem, "print('x')", "python").verdict == "WA"  # checkers saw the answer
    assert_nothing(judge.judge(secret_problem, MEMORY_SCAN_PY, "python"))


def _answer_readers(root: Path) -> list[tuple[str, str]]:
    answer = root / "data" / "secret" / "small" / "1.ans"
    search = (
        "import os, sys\nprint(open(sys.argv[0]).read()[:0], end='')\n"
        "data = sys.stdin.read()\n"
        f"for top in ({str(root)!r}, '/'):\n"
        "    for parent, dirs, files in os.walk(top):\n"
        "        dirs[:] = [d for d in dirs if os.path.join(parent, d) not in ('/proc', '/sys', '/usr', '/dev')]\n"
        "        for name in files:\n"
        "            if name.endswith('.in') and open(os.path.join(parent, name)).read() == data:\n"
        "                print(open(os.path.join(parent, name[:-3] + '.ans')).read(), end='')\n"
        "                sys.exit(0)\n"
    )
    return [
        (f"print(open({str(answer)!r}).read(), end='')", "python"),
        (search, "python"),
        (f'#include <cstdio>\nint main(){{ std::puts(\n#include "{answer}"\n); }}\n', "cpp"),
        (
            f'#include <cstdio>\nint main(){{ FILE* f = std::fopen("{answer}", "r"); int c;'
            " while (f && (c = std::fgetc(f)) != EOF) std::putchar(c); }\n",
            "cpp",
        ),
    ]


def test_answer_files_on_the_host_are_out_of_reach(judge: Judge, copy_problem: CopyProblem) -> None:
    root = copy_problem("sum")
    for source, language in _answer_readers(root):
        assert_nothing(judge.judge(root, source, language))


SAMPLE_ANSWER = {
    "python": "print(3)\n",  # sum's sample: 1 2 -> 3
    "cpp": '#include <cstdio>\nint main(){ std::puts("3"); }\n',
}
KATTIS_ACCEPT_EXIT = {"python": "import sys\nsys.exit(42)\n", "cpp": "int main(){ return 42; }\n"}
FORGED_FEEDBACK = {
    "python": (
        "import json, os, sys\n"
        f"text = {FEEDBACK_MARKER!r} + json.dumps({{{STDIN_CLOSED_KEY!r}: True, 'score.txt': '100', "
        "'judgemessage.txt': 'ok'})\n"
        "print(text)\nprint(text, file=sys.stderr)\n"
        "for folder in ('feedback', '/tmp/feedback', '/tmp'):\n"
        "    os.makedirs(folder, exist_ok=True)\n"
        "    for name, value in (('score.txt', '100'), ('judgemessage.txt', 'ok')):\n"
        "        open(os.path.join(folder, name), 'w').write(value)\n"
        "sys.exit(42)\n"
    ),
    "cpp": (
        "#include <cstdio>\n#include <sys/stat.h>\nint main(){ mkdir(\"feedback\", 0777);"
        ' std::FILE* f = std::fopen("feedback/score.txt", "w"); std::fputs("100", f); std::fclose(f);'
        f' std::puts({json.dumps(FEEDBACK_MARKER + json.dumps({STDIN_CLOSED_KEY: True, "score.txt": "100"}))});'
        f' std::fputs({json.dumps(FEEDBACK_MARKER + json.dumps({"score.txt": "100"}))}, stderr); return 42; }}\n'
    ),
}
KILL_PARENT = {
    "python": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nos.kill(-1, signal.SIGKILL)\n",
    "cpp": "#include <csignal>\n#include <unistd.h>\nint main(){ kill(getppid(), SIGKILL); kill(-1, SIGKILL); }\n",
}
NOT_A_NUMBER = {
    "python": "print('nan')\n",
    "cpp": '#include <cstdio>\nint main(){ std::puts("1e999"); }\n',
}
GUESS_AT_ONCE = {
    "python": "print('! 0', flush=True)\n",
    "cpp": '#include <cstdio>\nint main(){ std::puts("! 0"); std::fflush(stdout); }\n',
}

CASES = [
    (problem, cheat_name, language)
    for problem, cheats in (
        ("sum", ("sample answer", "kattis accept exit", "forged feedback", "kill parent")),
        ("split", ("sample answer", "kattis accept exit", "forged feedback")),
        ("guess", ("kattis accept exit", "forged feedback", "kill parent", "guess at once")),
        ("hypot", ("not a number", "kattis accept exit")),
        ("divisors", ("sample answer", "forged feedback")),
    )
    for cheat_name in cheats
    for language in ("python", "cpp")
]
TABLES = {
    "sample answer": SAMPLE_ANSWER,
    "kattis accept exit": KATTIS_ACCEPT_EXIT,
    "forged feedback": FORGED_FEEDBACK,
    "kill parent": KILL_PARENT,
    "not a number": NOT_A_NUMBER,
    "guess at once": GUESS_AT_ONCE,
}
PROBLEMS = Path(__file__).parent / "problems"


@pytest.mark.parametrize(("problem", "cheat", "language"), CASES)
def test_cheat_gets_no_point(judge: Judge, problem: str, cheat: str, language: str) -> None:
    assert_nothing(judge.judge(PROBLEMS / problem, TABLES[cheat][language], language))


def test_the_reward_pays_nothing_for_them(secret_problem: Path) -> None:
    reward = CompetitionReward(max_workers=2)
    samples = [
        Sample(response=f"```{language}\n{source}\n```", problem=str(path))
        for source, language, path in (
            (FORGE_PY, "python", secret_problem),
            (FORGE_CPP, "cpp", secret_problem),
            (FORGED_FEEDBACK["python"], "python", PROBLEMS / "split"),
            (KATTIS_ACCEPT_EXIT["cpp"], "cpp", PROBLEMS / "guess"),
        )
    ]
    try:
        results = reward.score(samples)
    finally:
        reward.close()
    assert [r.reward for r in results] == [0.0] * 4, [(r.verdict, r.details.get("tests")) for r in results]
