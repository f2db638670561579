"""Package programs (validators, interactors, checkers) and compiled submissions: building them
once in the sandbox, running them, and reading their verdicts.

A program is a folder, as the format defines it: a ``build`` script (run in a copy of the folder)
that leaves a ``run`` file, or a ``run`` file alone, or Python sources, or C/C++ sources compiled
together with their headers. :data:`BUILDER` does the building inside the sandbox and returns the
built folder as a tar archive on its stdout, modes included; the host keeps it as files.

Kattis validators report through a *feedback directory* (``judgemessage.txt``, ``score.txt``,
``nextpass.in``). The sandbox returns only stdout and stderr, so a validator runs under a small
Python launcher (:data:`LAUNCHER`, itself sandboxed) that creates the directory (with the files a
previous pass left there), runs the validator with the inherited stdin/stdout, and appends the
directory's files, whole (a multi-pass validator may keep its state there), to stderr after a
marker line.
"""

from __future__ import annotations

import base64
import io
import json
import re
import tarfile
from dataclasses import dataclass, field

from cascade_plugins.rewards.competition import verdicts
from cascade_plugins.rewards.competition.checkers import CheckOutcome
from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.package import ProgramSource, ScoreFile
from cascade_plugins.sandbox import ExecResult, Limits, Program, Sandbox

FEEDBACK_MARKER = "\n=== cascade feedback directory ===\n"
#: the feedback directory as validators receive it: the format wants a trailing separator
FEEDBACK_DIR = "feedback/"
STDIN_CLOSED_KEY = "cascade:stdin_closed"
NEXT_PASS = "nextpass.in"
KATTIS_ACCEPT = 42
KATTIS_REJECT = 43
PROGRAM_DIR = "prog"
#: the compiler flags of the sandbox's own C++ build, and the C equivalent
CXX_COMMAND = ("g++", "-O2", "-std=gnu++17", "-pipe")
C_COMMAND = ("gcc", "-O2", "-std=gnu11", "-pipe")

#: testlib exit codes (OK 0, WA 1, PE 2, FAIL 3, DIRT 4, POINTS 7, UNEXPECTED_EOF 8)
TESTLIB_EXIT_CODES = {0: verdicts.AC, 1: verdicts.WA, 2: verdicts.PE, 3: verdicts.JE, 4: verdicts.PE, 8: verdicts.PE}
TESTLIB_POINTS = 7

BUILDER = f"""
import io, json, os, subprocess, sys, tarfile

mode, executables, sources = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
standard = sys.argv[4] if len(sys.argv) > 4 else ""
os.chdir("src")
for name in [*executables, "build", "run"]:
    if os.path.isfile(name):
        os.chmod(name, 0o755)
if mode == "script":
    if os.path.isfile("build"):
        code = subprocess.call(["./build"], stdout=sys.stderr)
        if code != 0:
            sys.stderr.write(f"build script exited with code {{code}}\\n")
            sys.exit(1)
    if not os.path.isfile("run"):
        sys.stderr.write("no run file: the folder needs a run script, or a build script that writes one\\n")
        sys.exit(1)
    os.chmod("run", 0o755)
else:
    command = {list(CXX_COMMAND)!r} if mode == "cpp" else {list(C_COMMAND)!r}
    if standard:
        command = [f"-std={{standard}}" if part.startswith("-std=") else part for part in command]
    code = subprocess.call([*command, "-o", "run", *sources, *(["-lm"] if mode == "c" else [])])
    if code != 0:
        sys.exit(1)
archive = io.BytesIO()
with tarfile.open(fileobj=archive, mode="w", dereference=True) as tar:
    tar.add(".", arcname=".")
sys.stdout.flush()
sys.stdout.buffer.write(archive.getvalue())
sys.stdout.buffer.flush()
"""

LAUNCHER = f"""
import base64, json, os, runpy, subprocess, sys, traceback

MARKER = {FEEDBACK_MARKER!r}
FEEDBACK = {FEEDBACK_DIR!r}
with open("launch.json") as handle:
    launch = json.load(handle)
os.makedirs(FEEDBACK, exist_ok=True)
for name in launch["chmod"]:
    os.chmod(name, 0o755)
args = sys.argv[1:]
if launch["mode"] == "exec":
    code = subprocess.call([os.path.abspath(launch["main"]), *args])
    code = code if code >= 0 else 128 - code
else:
    sys.argv = [launch["main"], *args]
    sys.path.insert(0, os.path.dirname(os.path.abspath(launch["main"])))
    try:
        runpy.run_path(launch["main"], run_name="__main__")
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
for name in sorted(os.listdir(FEEDBACK)):
    path = os.path.join(FEEDBACK, name)
    if os.path.isfile(path):
        with open(path, "rb") as handle:
            data = handle.read()
        feedback[name] = base64.b64encode(data).decode()
sys.stderr.write(MARKER + json.dumps(feedback))
sys.stderr.flush()
sys.exit(code)
"""


@dataclass(frozen=True)
class PreparedChecker:
    """A package program ready to run under the launcher: ``protocol`` is ``kattis`` or ``testlib``."""

    protocol: str
    program: Program

    def argv(self, *args: str) -> list[str]:
        return list(args)


@dataclass(frozen=True)
class Feedback:
    """What a validator left in its feedback directory, and its own stderr."""

    files: dict[str, bytes] = field(default_factory=dict)
    stderr: str = ""
    stdin_closed: bool = True

    def text(self, name: str) -> str:
        return self.files.get(name, b"").decode("utf-8", "replace")


def build_limits(compilation_time_s: float) -> Limits:
    """Building runs compilers and build scripts: room for their processes, memory and output."""
    return Limits(
        cpu_time_s=compilation_time_s,
        wall_time_s=2 * compilation_time_s,
        memory_mb=2048,
        max_processes=64,
        file_size_mb=256,
        output_bytes=256 * 1024 * 1024,
    )


def build_folder(
    sandbox: Sandbox, mode: str, files: dict[str, bytes], executables: frozenset[str], sources: tuple[str, ...],
    limits: Limits, standard: str | None = None,
) -> tuple[dict[str, bytes], frozenset[str], ExecResult]:  # fmt: skip
    """Build a program folder in the sandbox (``mode``: ``script``, ``cpp`` or ``c``; ``standard``:
    the language standard to compile with, else the default of :data:`CXX_COMMAND` /
    :data:`C_COMMAND`); returns the built folder's files, its executable files, and the builder's
    result (not OK: it failed)."""
    builder = sandbox.prepare(BUILDER, "python", extra_files={f"src/{name}": data for name, data in files.items()})
    argv = [mode, json.dumps(sorted(executables)), json.dumps(list(sources)), standard or ""]
    result = sandbox.run(builder, argv=argv, limits=limits)
    if result.verdict != "OK":
        return {}, frozenset(), result
    built: dict[str, bytes] = {}
    executable: set[str] = set()
    with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r") as tar:
        for member in tar.getmembers():
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            handle = tar.extractfile(member)
            if handle is None:
                continue
            built[name] = handle.read()
            if member.mode & 0o100:
                executable.add(name)
    return built, frozenset(executable), result


def build_failure(result: ExecResult) -> str:
    """The builder's own words on why a build failed (the compiler's errors, say)."""
    return (result.stderr.decode("utf-8", "replace")[-2000:] or result.message).strip()


def prepare_checker(sandbox: Sandbox, source: ProgramSource, protocol: str, compile_limits: Limits) -> PreparedChecker:
    """Build the package's program and wrap it in the launcher; a failed build is a package error."""
    if source.language == "python":
        try:
            compile(source.source, str(source.main_path), "exec")
        except SyntaxError as exc:
            raise ProblemPackageError(source.main_path, f"line {exc.lineno}: {exc.msg}") from None
        files = {f"{PROGRAM_DIR}/{name}": data for name, data in source.files.items()}
        launch = {"mode": "python", "main": f"{PROGRAM_DIR}/{source.main}", "chmod": []}
    else:
        built, executable, result = build_folder(
            sandbox, source.language, dict(source.files), source.executables, source.sources, compile_limits
        )
        if result.verdict != "OK":
            what = "does not compile" if source.language != "script" else "does not build"
            where = source.main_path if source.language != "script" else source.path
            raise ProblemPackageError(where, f"{what}:\n{build_failure(result)}")
        files = {f"{PROGRAM_DIR}/{name}": data for name, data in built.items()}
        launch = {
            "mode": "exec",
            "main": f"{PROGRAM_DIR}/run",
            "chmod": sorted(f"{PROGRAM_DIR}/{name}" for name in executable | {"run"}),
        }
    files["launch.json"] = json.dumps(launch).encode()
    return PreparedChecker(protocol, sandbox.prepare(LAUNCHER, "python", extra_files=files))


def feedback_of(stderr: bytes) -> Feedback:
    """The validator's own stderr and its feedback files, as dumped by the launcher."""
    text = stderr.decode("utf-8", "replace")
    own, marker, rest = text.rpartition(FEEDBACK_MARKER)
    if not marker:
        return Feedback(stderr=text)
    try:
        raw = json.loads(rest)
    except json.JSONDecodeError:
        return Feedback(stderr=own)
    if not isinstance(raw, dict):
        return Feedback(stderr=own)
    closed = bool(raw.pop(STDIN_CLOSED_KEY, True))
    files = {}
    for name, encoded in raw.items():
        try:
            files[str(name)] = base64.b64decode(str(encoded))
        except ValueError:
            continue
    return Feedback(files, own, closed)


def input_was_closed(result: ExecResult) -> bool:
    """For an interactor: had the solution closed its output (exited) before the interactor ended?"""
    return feedback_of(result.stderr).stdin_closed


_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")


def kattis_outcome(result: ExecResult, *, want_score: bool | ScoreFile, multi_pass: bool = False) -> CheckOutcome:
    """A Kattis validator's verdict: exit 42 accepts, 43 rejects, anything else is a judge error.

    ``want_score``: ``required`` (legacy ``custom score``: ``score.txt`` must hold a number),
    ``optional`` (2023-07 and later: ``score.txt`` or ``score_multiplier.txt`` if written) or
    ``ignored``. A multi-pass validator may write ``nextpass.in`` only when it accepts."""
    score_file: ScoreFile = (
        want_score if isinstance(want_score, str) else ("required" if want_score else "ignored")
    )
    feedback = feedback_of(result.stderr)
    message = (feedback.text("judgemessage.txt") or feedback.text("teammessage.txt")).strip()
    if result.verdict not in ("OK", "RE"):  # the validator itself hit a limit
        return CheckOutcome(verdicts.JE, f"validator {result.verdict}: {result.message}".strip())
    if result.exit_code == KATTIS_REJECT:
        if multi_pass and NEXT_PASS in feedback.files:
            return CheckOutcome(verdicts.JE, f"validator wrote {NEXT_PASS} but did not accept")
        return CheckOutcome(verdicts.WA, message)
    if result.exit_code != KATTIS_ACCEPT:
        detail = feedback.stderr.strip()[-500:] or message
        return CheckOutcome(verdicts.JE, f"validator exited with code {result.exit_code}: {detail}".strip())
    if score_file == "ignored":
        return CheckOutcome(verdicts.AC, message)
    raw_score = feedback.text("score.txt").strip()
    raw_multiplier = feedback.text("score_multiplier.txt").strip()
    if raw_score and raw_multiplier:
        return CheckOutcome(verdicts.JE, "validator wrote both score.txt and score_multiplier.txt")
    if raw_multiplier and score_file == "optional":
        if not _NUMBER.match(raw_multiplier) or not 0 <= float(raw_multiplier) <= 1:
            why = f"score_multiplier.txt must hold a number in [0, 1], not {raw_multiplier!r}"
            return CheckOutcome(verdicts.JE, why)
        return CheckOutcome(verdicts.AC, message, multiplier=float(raw_multiplier))
    if not raw_score and score_file == "optional":
        return CheckOutcome(verdicts.AC, message)
    if not _NUMBER.match(raw_score):
        return CheckOutcome(verdicts.JE, f"validator accepted but wrote no number to score.txt ({raw_score!r})")
    return CheckOutcome(verdicts.AC, message, float(raw_score))


_POINTS = re.compile(r"^points\s+([-+0-9.eE]+)", re.M)


def testlib_outcome(result: ExecResult) -> CheckOutcome:
    """A testlib checker's verdict from its exit code (``points`` read from its stderr)."""
    message = feedback_of(result.stderr).stderr.strip()[-500:]
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
