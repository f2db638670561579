"""Checker, validator and interactor programs: preparing them once and reading their verdicts.

Kattis validators report through a *feedback directory* (``judgemessage.txt``, ``score.txt``).
The sandbox returns only stdout and stderr, so a validator runs under a small Python launcher
(:data:`LAUNCHER`, itself sandboxed) that creates the directory, runs the validator with the
inherited stdin/stdout, and appends the directory's text files to stderr after a marker line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from cascade_plugins.rewards.competition import verdicts
from cascade_plugins.rewards.competition.checkers import CheckOutcome
from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.package import ProgramSource
from cascade_plugins.sandbox import ExecResult, Limits, Program, Sandbox

FEEDBACK_MARKER = "\n=== cascade feedback directory ===\n"
FEEDBACK_DIR = "feedback"
STDIN_CLOSED_KEY = "cascade:stdin_closed"
KATTIS_ACCEPT = 42
KATTIS_REJECT = 43

#: testlib exit codes (OK 0, WA 1, PE 2, FAIL 3, DIRT 4, POINTS 7, UNEXPECTED_EOF 8)
TESTLIB_EXIT_CODES = {0: verdicts.AC, 1: verdicts.WA, 2: verdicts.PE, 3: verdicts.JE, 4: verdicts.PE, 8: verdicts.PE}
TESTLIB_POINTS = 7

LAUNCHER = f"""
import json, os, runpy, subprocess, sys, traceback

MARKER = {FEEDBACK_MARKER!r}
os.makedirs({FEEDBACK_DIR!r}, exist_ok=True)
kind, args = sys.argv[1], sys.argv[2:]
if kind == "exec":
    os.chmod("validator", 0o755)
    code = subprocess.call(["./validator", *args])
    code = code if code >= 0 else 128 - code
else:
    sys.argv = ["validator.py", *args]
    try:
        runpy.run_path("validator.py", run_name="__main__")
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()


def stdin_closed():
    # Did the other side (an interactive solution) close its output before the validator ended?
    # While the launcher lives it holds the solution's input open, so the answer cannot change
    # because of the validator's own exit.
    try:
        os.set_blocking(0, False)
        for _ in range(1024):
            if not os.read(0, 65536):
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True
    return False


feedback = {{"{STDIN_CLOSED_KEY}": stdin_closed()}}
for name in sorted(os.listdir({FEEDBACK_DIR!r})):
    path = os.path.join({FEEDBACK_DIR!r}, name)
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            feedback[name] = handle.read(65536).decode("utf-8", "replace")
sys.stderr.write(MARKER + json.dumps(feedback))
sys.stderr.flush()
sys.exit(code)
"""


@dataclass(frozen=True)
class PreparedChecker:
    """A checker program ready to run: ``protocol`` is ``kattis`` (through the launcher) or ``testlib``."""

    protocol: str
    program: Program
    #: Kattis protocol: how the launcher starts the validator (``exec`` a binary or ``python``)
    launch: str = ""

    def argv(self, *args: str) -> list[str]:
        return [self.launch, *args] if self.protocol == "kattis" else list(args)


def prepare_checker(sandbox: Sandbox, source: ProgramSource, protocol: str, compile_limits: Limits) -> PreparedChecker:
    """Compile (C++) and wrap the package's checker; a compile failure is a package error."""
    if source.language == "cpp":
        compiled = sandbox.prepare(
            source.source, "cpp", extra_files=dict(source.extra_files), compile_limits=compile_limits
        )
        result = compiled.compile_result
        if compiled.binary is None:
            detail = ""
            if result is not None:
                detail = (result.stderr.decode("utf-8", "replace")[-2000:] or result.message).strip()
            raise ProblemPackageError(source.path, f"does not compile:\n{detail}")
        if protocol == "testlib":
            return PreparedChecker(protocol, compiled)
        launcher_files = {"validator": compiled.binary}
        kind = "exec"
    else:
        try:
            compile(source.source, str(source.path), "exec")
        except SyntaxError as exc:
            raise ProblemPackageError(source.path, f"line {exc.lineno}: {exc.msg}") from None
        if protocol == "testlib":
            return PreparedChecker(
                protocol, sandbox.prepare(source.source, "python", extra_files=dict(source.extra_files))
            )
        launcher_files = {**source.extra_files, "validator.py": source.source.encode()}
        kind = "python"
    launcher = sandbox.prepare(LAUNCHER, "python", extra_files=launcher_files)
    return PreparedChecker(protocol, launcher, kind)


def split_feedback(stderr: bytes) -> tuple[str, dict[str, Any]]:
    """The validator's own stderr and its feedback files, as dumped by the launcher (plus
    :data:`STDIN_CLOSED_KEY`: whether its input had been closed when it ended)."""
    text = stderr.decode("utf-8", "replace")
    own, marker, rest = text.rpartition(FEEDBACK_MARKER)
    if not marker:
        return text, {}
    try:
        files = json.loads(rest)
    except json.JSONDecodeError:
        return own, {}
    return own, files if isinstance(files, dict) else {}


def input_was_closed(result: ExecResult) -> bool:
    """For an interactor: had the solution closed its output (exited) before the interactor ended?"""
    return bool(split_feedback(result.stderr)[1].get(STDIN_CLOSED_KEY, True))


def kattis_outcome(result: ExecResult, *, want_score: bool) -> CheckOutcome:
    """A Kattis validator's verdict: exit 42 accepts, 43 rejects, anything else is a judge error."""
    own_stderr, feedback = split_feedback(result.stderr)
    message = (feedback.get("judgemessage.txt") or feedback.get("teammessage.txt") or "").strip()
    if result.verdict not in ("OK", "RE"):  # the validator itself hit a limit
        return CheckOutcome(verdicts.JE, f"validator {result.verdict}: {result.message}".strip())
    if result.exit_code == KATTIS_REJECT:
        return CheckOutcome(verdicts.WA, message)
    if result.exit_code != KATTIS_ACCEPT:
        detail = own_stderr.strip()[-500:] or message
        return CheckOutcome(verdicts.JE, f"validator exited with code {result.exit_code}: {detail}".strip())
    if not want_score:
        return CheckOutcome(verdicts.AC, message)
    raw_score = feedback.get("score.txt", "").strip()
    try:
        score = float(raw_score)
    except ValueError:
        return CheckOutcome(verdicts.JE, f"validator accepted but wrote no number to score.txt ({raw_score!r})")
    return CheckOutcome(verdicts.AC, message, score)


_POINTS = re.compile(r"^points\s+([-+0-9.eE]+)", re.M)


def testlib_outcome(result: ExecResult) -> CheckOutcome:
    """A testlib checker's verdict from its exit code (``points`` read from its stderr)."""
    message = result.stderr.decode("utf-8", "replace").strip()[-500:]
    if result.verdict not in ("OK", "RE"):
        return CheckOutcome(verdicts.JE, f"checker {result.verdict}: {result.message}".strip())
    if result.exit_code == TESTLIB_POINTS:
        found = _POINTS.search(message)
        if found is None:
            return CheckOutcome(verdicts.JE, f"checker returned points without a value: {message}")
        return CheckOutcome(verdicts.AC, message, float(found.group(1)))
    verdict = TESTLIB_EXIT_CODES.get(result.exit_code if result.exit_code is not None else -1)
    if verdict is None:
        return CheckOutcome(verdicts.JE, f"checker exited with code {result.exit_code}: {message}")
    return CheckOutcome(verdict, message)
