"""Judge a solution against a problem package, in the sandbox, as the contest would.

Checker programs are built once per package version (keyed by the package's fingerprint) and
reused for every submission; built-in checkers run in-process. Tests run in parallel (up to the
sandbox's worker count) but are *graded* in test order, so early stops (``on_reject: break``, a
subtask already lost) give the same result however the runs were scheduled.

Verdicts are the package format's: a run stopped by the memory or output limit is ``RE`` (the
limit is the test's ``cause``). The output limit is checked the way the format's judges check it,
after the run: a run the sandbox stops for too much output runs again with its output read and
thrown away, so that one which would not have ended in time is ``TLE``, and one that ends is
``RE`` (cause ``OLE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import queue
import signal
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cascade_plugins.rewards.competition import grading, verdicts
from cascade_plugins.rewards.competition.checkers import (
    CheckOutcome,
    default_check,
    parse_validator_flags,
    standard_check,
)
from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.grading import GroupResult, TestResult
from cascade_plugins.rewards.competition.languages import (
    RUNNABLE,
    SubmissionFiles,
    check_allowed,
    cxx_standard,
    language_code,
    language_of_file,
    submission_files,
)
from cascade_plugins.rewards.competition.package import (
    ProblemPackage,
    TestCase,
    fingerprint,
    load_problem,
    program_files,
)
from cascade_plugins.rewards.competition.programs import (
    FEEDBACK_DIR,
    NEXT_PASS,
    PreparedChecker,
    build_failure,
    build_folder,
    build_limits,
    feedback_of,
    input_was_closed,
    kattis_outcome,
    prepare_checker,
    testlib_outcome,
)
from cascade_plugins.sandbox import ExecResult, Limits, Program, Sandbox, SandboxProcess

_MIB = 1024 * 1024
#: how often the wall-clock watch of an interactive test looks at its two programs
_WATCH_INTERVAL_S = 0.05


@dataclass
class JudgeReport:
    """Everything a judging produced. ``verdict`` is the result in the format's verdicts (``CE``,
    or the first non-``AC`` test verdict in test order, or ``AC``; on scoring problems see
    :meth:`Judge.judge`); ``score``/``max_score`` the points."""

    problem: str
    kind: str
    scoring: str
    verdict: str
    score: float
    max_score: float
    tests: list[TestResult] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)
    compile_message: str = ""

    @property
    def normalized_score(self) -> float:
        if self.max_score <= 0:
            return 0.0
        return min(1.0, max(0.0, self.score / self.max_score))

    def subtask_scores(self) -> dict[str, float]:
        """Points per group or subtask, for :func:`scoretypes.best_per_subtask` over submissions."""
        return {group.name: group.score for group in self.groups}

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["normalized_score"] = self.normalized_score
        return data


@dataclass(frozen=True)
class PreparedProblem:
    package: ProblemPackage
    checker: PreparedChecker | None


def solution_limits(package: ProblemPackage) -> Limits:
    limits = package.limits
    return Limits(
        cpu_time_s=limits.time_limit_s,
        memory_mb=limits.memory_mb,
        output_bytes=limits.output_mb * _MIB,
        file_size_mb=max(1, limits.output_mb),
    )


def checker_limits(package: ProblemPackage) -> Limits:
    limits = package.limits
    # Room for the feedback directory the launcher dumps on stderr (nextpass.in in full).
    return Limits(
        cpu_time_s=limits.validation_time_s,
        memory_mb=limits.validation_memory_mb,
        max_processes=16,
        output_bytes=64 * _MIB,
        file_size_mb=64,
    )


def compile_limits(package: ProblemPackage) -> Limits:
    return build_limits(package.limits.compilation_time_s)


#: the largest compiled submission kept (its file lives in the sandbox's work area, in memory)
MAX_PROGRAM_MB = 256
#: what compilers and linkers say when their output hits the file size cap or the work area fills
_TOO_LARGE = (b"File size limit exceeded", b"No space left on device", b"File truncated", b"file truncated")


def submission_compile_limits(package: ProblemPackage) -> Limits:
    """Compiling a submission: the package's compilation time; the program file may be as large
    as its memory limit (its image must fit in it to run), up to :data:`MAX_PROGRAM_MB`."""
    cap = min(MAX_PROGRAM_MB, max(64, package.limits.memory_mb))
    return dataclasses.replace(compile_limits(package), file_size_mb=cap)


def program_too_large(result: ExecResult) -> bool:
    """Did a compilation fail because its output outgrew the file size cap or the work area?"""
    return result.signal == signal.SIGXFSZ or any(marker in result.stderr[-4000:] for marker in _TOO_LARGE)


class Judge:
    """Grades solutions; thread-safe, picklable (the sandbox and caches restart lazily)."""

    def __init__(
        self,
        sandbox: Sandbox | None = None,
        *,
        isolation: str = "auto",
        max_workers: int | None = None,
        cache_size: int = 256,
    ):
        self._own_sandbox = sandbox is None
        self._isolation = isolation
        self._max_workers = max_workers
        self._sandbox = sandbox
        self._lock = threading.Lock()
        # Least recently used first; bounded because every entry may hold a compiled checker.
        self._cache_size = cache_size
        self._problems: OrderedDict[tuple[str, str], PreparedProblem] = OrderedDict()
        self._pair_slots: threading.BoundedSemaphore | None = None
        self._packages: OrderedDict[str, tuple[str, ProblemPackage]] = OrderedDict()
        self._built: OrderedDict[str, Program] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {
            "sandbox": None if self._own_sandbox else self._sandbox,
            "isolation": self._isolation,
            "max_workers": self._max_workers,
            "cache_size": self._cache_size,
        }

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["sandbox"],
            isolation=state["isolation"],
            max_workers=state["max_workers"],
            cache_size=state["cache_size"],
        )

    @property
    def sandbox(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                # Interactive tests hold two workers at once (solution + interactor).
                workers = max(2, self._max_workers or os.cpu_count() or 1)
                self._sandbox = Sandbox(isolation=self._isolation, max_workers=workers)  # type: ignore[arg-type]
            return self._sandbox

    @property
    def pair_slots(self) -> threading.BoundedSemaphore:
        """Interactive tests in flight hold two sandbox workers each; bounding them to half the
        workers keeps concurrent judgings from each holding one worker and waiting for another."""
        sandbox = self.sandbox
        with self._lock:
            if self._pair_slots is None:
                self._pair_slots = threading.BoundedSemaphore(max(1, sandbox.max_workers // 2))
            return self._pair_slots

    def close(self) -> None:
        """Stop the sandbox workers (if this judge started them); compiled checkers stay cached."""
        with self._lock:
            sandbox = self._sandbox
            if self._own_sandbox:
                self._sandbox = None
        if sandbox is not None and self._own_sandbox:
            sandbox.close()

    # -- problems -------------------------------------------------------------------------

    def load(self, path: str | os.PathLike[str]) -> ProblemPackage:
        """Load (or reuse) the package at ``path``; reloaded when any file grading reads changes."""
        root = Path(path).expanduser().resolve()
        key = str(root)
        current = fingerprint(root) if root.is_dir() else ""
        with self._lock:
            cached = self._packages.get(key)
            if cached is not None and cached[0] == current:
                self._packages.move_to_end(key)
                return cached[1]
        package = load_problem(root)
        with self._lock:
            self._packages[key] = (package.fingerprint, package)
            _trim(self._packages, 16 * self._cache_size)
        return package

    def prepare(self, package: ProblemPackage) -> PreparedProblem:
        """Build the package's checker or interactor once (per package version)."""
        key = (str(package.root), package.fingerprint)
        with self._lock:
            cached = self._problems.get(key)
            if cached is not None:
                self._problems.move_to_end(key)
                return cached
        checker = None
        if package.checker.program is not None:
            protocol = "testlib" if package.checker.kind == "testlib" else "kattis"
            checker = prepare_checker(self.sandbox, package.checker.program, protocol, compile_limits(package))
        prepared = PreparedProblem(package, checker)
        with self._lock:
            self._problems[key] = prepared
            _trim(self._problems, self._cache_size)
        return prepared

    # -- submissions ----------------------------------------------------------------------

    def _package(self, problem: ProblemPackage | str | os.PathLike[str]) -> ProblemPackage:
        return problem if isinstance(problem, ProblemPackage) else self.load(problem)

    def _program(self, package: ProblemPackage, submission: SubmissionFiles) -> Program:
        """The sandbox program of a submission, with the package's ``include/`` files added.

        Python and single-source C++ use the sandbox's own preparation; C and several C++
        sources are compiled together in a build (cached by content)."""
        files = {**submission.files, **package.included_files(submission.language)}
        main = submission.main
        if submission.language == "python3":
            others = {name: data for name, data in files.items() if name != main}
            return self.sandbox.prepare(files[main].decode("utf-8", "replace"), "python", extra_files=others)
        # Included files in the submission's language are compiled with it (a driver, say).
        included = package.included_files(submission.language)
        extra = (n for n in included if language_of_file(Path(n), included[n][:200]) == submission.language)
        sources = tuple(sorted({*submission.sources, *extra}))
        if submission.language == "cpp" and len(sources) == 1:
            others = {name: data for name, data in files.items() if name != main}
            return self.sandbox.prepare(
                files[main].decode("utf-8", "replace"), submission.standard or "cpp", extra_files=others,
                compile_limits=submission_compile_limits(package),
            )  # fmt: skip
        described = (submission.language, submission.standard, sources, sorted(files.items()))
        key = hashlib.sha256(repr(described).encode()).hexdigest()
        with self._lock:
            cached = self._built.get(key)
            if cached is not None:
                self._built.move_to_end(key)
                return cached
        built, _, result = build_folder(
            self.sandbox, submission.language, files, frozenset(), sources, submission_compile_limits(package),
            submission.standard,
        )  # fmt: skip
        if result.verdict != "OK" or "run" not in built:
            failed = ExecResult("CE", result.exit_code, result.signal, b"", result.stderr, result.cpu_time_s,
                                result.wall_time_s, result.peak_memory_kb, build_failure(result))  # fmt: skip
            program = Program("cpp", "", {}, None, failed)
        else:
            program = Program("cpp", "", {n: d for n, d in files.items() if n not in sources}, built["run"], result)
        if result.verdict == "OK" or result.exit_code not in (None, 0):  # what the compiler decided
            with self._lock:
                self._built[key] = program
                _trim(self._built, self._cache_size)
        return program

    def judge(self, problem: ProblemPackage | str | os.PathLike[str], source: str, language: str) -> JudgeReport:
        """Judge ``source`` in ``language`` (``python``, ``cpp``, ``c``, a C++ dialect such as
        ``c++20``, or a code of the format's table) on ``problem`` (a package or its path).

        The result is ``CE``, or else the first non-``AC`` test verdict in test order, or ``AC``.
        On scoring problems without IOI subtasks it is the top test group's aggregated verdict
        (problemtools' default grader) in legacy packages; from 2023-07 on, a scoring submission
        is ``AC`` with its score as soon as it scores at all.

        Raises :class:`ProblemPackageError` for a bad package and :class:`UnsupportedFeature` for
        a language the judge cannot run or the package does not allow (before running anything).
        """
        package = self._package(problem)
        code = language_code(language)
        check_allowed(code, package.languages, f"{language} solution")
        name = {"python3": "main.py", "cpp": "main.cpp", "c": "main.c"}[code]
        submission = SubmissionFiles(code, name, (name,), {name: source.encode()}, cxx_standard(language))
        return self._judge(package, submission)

    def judge_files(
        self,
        problem: ProblemPackage | str | os.PathLike[str],
        path: str | os.PathLike[str],
        *,
        language: str | None = None,
        entrypoint: str | None = None,
    ) -> JudgeReport:
        """Judge a submission given as a file or a folder of files, as the format does: its
        language from ``language`` or the files' extensions (honouring the package's
        ``languages``), ``include/`` files added, constants substituted in the package's own
        example submissions (``submissions/``). A language the judge
        cannot run raises :class:`UnsupportedFeature` (never a run-time error)."""
        package = self._package(problem)
        where = Path(path)
        # The format substitutes constants in its example submissions, not in other programs.
        example = where.resolve().is_relative_to(package.root / "submissions")
        files, _ = program_files(where, package.constants if example else None)
        submission = submission_files(where, files, language=language, entrypoint=entrypoint, allowed=package.languages)
        return self._judge(package, submission)

    def _judge(self, package: ProblemPackage, submission: SubmissionFiles) -> JudgeReport:
        if submission.language not in RUNNABLE:
            raise UnsupportedFeature(submission.main, f"unsupported language {submission.language!r}")
        prepared = self.prepare(package)
        sandbox = self.sandbox
        if package.interactive and sandbox.max_workers < 2:
            raise ValueError("interactive problems need a sandbox with at least 2 workers (solution + interactor)")
        scoring = (
            package.subtasks.score_type
            if package.subtasks
            else ("kattis-groups" if package.kind == "scoring" else "pass-fail")
        )
        program = self._program(package, submission)
        if program.compile_failed:
            assert program.compile_result is not None
            max_score = self._max_score(package)
            result = program.compile_result
            message = result.stderr.decode("utf-8", "replace")[-2000:] or result.message
            if program_too_large(result):
                return self._too_large(package, scoring, max_score)
            return JudgeReport(
                package.name, package.kind, scoring, verdicts.CE, 0.0, max_score, compile_message=message
            )
        runner = _TestRunner(self, prepared, program)
        try:
            return self._grade(package, scoring, runner)
        finally:
            runner.close()

    def _too_large(self, package: ProblemPackage, scoring: str, max_score: float) -> JudgeReport:
        """A program whose compiled image (static data in the binary) outgrows what a program may
        take: the source compiled, the program cannot be loaded. As a run would end, its first
        test is ``RE`` with cause ``MLE``, the others are not run."""
        cap = submission_compile_limits(package).file_size_mb
        message = (f"the compiled program is larger than the {cap} MiB a program file may take "
                   f"(memory limit {package.limits.memory_mb} MiB)")  # fmt: skip
        tests = package.tests()
        rows = [TestResult(t.name, t.group, verdicts.SKIPPED) for t in tests]
        if rows:
            rows[0] = TestResult(tests[0].name, tests[0].group, verdicts.RE, message=message, cause=verdicts.MLE)
        return JudgeReport(package.name, package.kind, scoring, verdicts.RE, 0.0, max_score, rows)

    def _max_score(self, package: ProblemPackage) -> float:
        if package.kind == "pass-fail":
            return 1.0
        if package.subtasks is not None:
            return sum(g.max_score for g in grading.grade_subtasks(package.subtasks, package.tests(), {}))
        return grading.max_score(package.data)

    def _grade(self, package: ProblemPackage, scoring: str, runner: _TestRunner) -> JudgeReport:
        tests = package.tests()
        root_verdict = None
        if package.subtasks is not None:
            subtasks = package.subtasks
            in_subtask = {name for s in subtasks.subtasks for name in s.tests}
            selected = tests if subtasks.score_type == "Sum" else [t for t in tests if t.name in in_subtask]

            def needed(test: TestCase) -> bool:
                owners = [i for i, s in enumerate(subtasks.subtasks) if test.name in s.tests]
                if subtasks.score_type == "Sum":
                    return True
                return any(not grading.subtask_is_decided(subtasks, i, runner.graded()) for i in owners)

            runner.plan(selected, needed)
            for test in selected:
                if needed(test):
                    runner.evaluate(test)
            groups = grading.grade_subtasks(subtasks, tests, runner.graded())
            score = sum(g.score for g in groups)
            max_score = sum(g.max_score for g in groups)
        else:
            runner.plan(tests, lambda _t: True)
            groups = []
            root_verdict, root_score = grading.grade_tree(package.data, runner.evaluate, groups)
            if package.kind == "scoring":
                score, max_score = root_score, grading.max_score(package.data)
            else:
                score, max_score = 0.0, 1.0
        graded = runner.graded()
        ordered = [graded.get(t.name) or TestResult(t.name, t.group, verdicts.SKIPPED) for t in tests]
        verdict = verdicts.first_error(r.verdict for r in ordered)
        if package.kind == "pass-fail":
            score = 1.0 if verdict == verdicts.AC else 0.0
        elif root_verdict is not None and verdicts.JE not in {r.verdict for r in ordered}:
            if package.format_version == "legacy":
                verdict = root_verdict
            elif score > 0:
                verdict = verdicts.AC
        return JudgeReport(package.name, package.kind, scoring, verdict, score, max_score, ordered, groups)


def _trim(cache: OrderedDict[Any, Any], size: int) -> None:
    while len(cache) > max(1, size):
        cache.popitem(last=False)


@dataclass(frozen=True)
class _Pass:
    """One run of the solution and its check (a multi-pass test has several)."""

    verdict: str
    execution: ExecResult
    message: str = ""
    score: float | None = None
    multiplier: float | None = None
    cause: str = ""
    feedback: dict[str, bytes] = field(default_factory=dict)


def _feed(fd: int, data: bytes) -> None:
    """Write ``data`` to ``fd`` and close it (a program that stops reading early is fine)."""
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view[: 1 << 16])
            view = view[written:]
    except OSError:
        pass
    finally:
        os.close(fd)


def _drain(fd: int) -> None:
    """Read ``fd`` to its end, dropping the data, then close it."""
    try:
        # The other reader (a launcher checking for end of input) may have left the shared open
        # file non-blocking; it has exited by now.
        os.set_blocking(fd, True)
        while os.read(fd, 1 << 16):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)


class _WallClockWatch:
    """The wall-clock limit of an interactive solution, counted so that waiting for its
    interactor does not count against it.

    The format limits a submission's CPU time; a wall-clock limit is only there to stop programs
    that use little CPU (sleeping, blocked). In an interactive run the solution also waits while
    the interactor works, and on a busy machine while either waits for a CPU: time in which the
    interactor is on a CPU or waiting for one, or the solution waits for one, is not counted.
    What is left (the solution running, or both blocked: a deadlock, a sleep) is, and past the
    limit the solution is killed; its verdict is then ``TLE``. Where the host cannot say how the
    programs are scheduled, every second counts, as a plain wall-clock limit."""

    def __init__(self, solution: SandboxProcess, interactor: SandboxProcess, limit_s: float):
        self.solution = solution
        self.interactor = interactor
        self.limit_s = limit_s
        self.counted_s = 0.0
        self.fired = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _WallClockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._thread.join()

    def stop(self) -> None:
        self._stop.set()

    def _watch(self) -> None:
        last = time.monotonic()
        interactor, solution = self.interactor.activity(), self.solution.activity()
        while not self._stop.wait(_WATCH_INTERVAL_S):
            now = time.monotonic()
            elapsed, last = now - last, now
            interactor_now, solution_now = self.interactor.activity(), self.solution.activity()
            excused = 0.0
            if interactor is not None and interactor_now is not None:
                excused += max(0.0, interactor_now.busy_s - interactor.busy_s)
            if solution is not None and solution_now is not None:
                excused += max(0.0, solution_now.waiting_s - solution.waiting_s)
            interactor, solution = interactor_now, solution_now
            self.counted_s += elapsed - min(elapsed, excused)
            if self.counted_s > self.limit_s and not self._stop.is_set():
                self.fired = True
                self.solution.kill()
                return

    def verdict_of(self, result: ExecResult) -> ExecResult:
        """The solution's result, ``TLE`` if this watch stopped it."""
        if not self.fired or result.verdict not in ("OK", "RE"):
            return result
        message = (f"wall time exceeded {self.limit_s:g}s (not counting the time its interactor worked "
                   f"or the machine was busy)")  # fmt: skip
        return dataclasses.replace(result, verdict="TLE", message=message)


class _TestRunner:
    """Runs tests on demand, prefetching the next ones in parallel, and remembers the results."""

    def __init__(self, judge: Judge, prepared: PreparedProblem, program: Program):
        self.judge = judge
        self.prepared = prepared
        self.package = prepared.package
        self.program = program
        self.sandbox = judge.sandbox
        self.limits = solution_limits(self.package)
        self.checker_limits = checker_limits(self.package)
        # Interactive: the sandbox's own wall-clock limit is only a backstop; the solution's wall
        # limit proper is kept by a _WallClockWatch, which does not count time spent waiting for
        # the interactor (that one may take as long as the interactor may).
        self.interactive_limits = dataclasses.replace(
            self.limits, wall_time_s=self.limits.wall_s + self.checker_limits.wall_s
        )
        self.results: dict[str, TestResult] = {}
        #: the tests the grading asked for (the others ran ahead speculatively)
        self.consumed: dict[str, None] = {}
        self._order: list[TestCase] = []
        self._needed: Callable[[TestCase], bool] = lambda _t: True
        width = self.sandbox.max_workers // 2 if self.package.interactive else self.sandbox.max_workers
        self._width = max(1, width)
        self._pool = ThreadPoolExecutor(self._width) if self._width > 1 else None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def plan(self, order: list[TestCase], needed: Callable[[TestCase], bool]) -> None:
        self._order = order
        self._needed = needed

    def graded(self) -> dict[str, TestResult]:
        """Results of the tests the grading asked for, in that order. Tests run ahead in parallel
        past an early stop are left out, so nothing depends on the number of workers."""
        return {name: self.results[name] for name in self.consumed}

    def evaluate(self, test: TestCase) -> TestResult:
        if test.name not in self.results:
            batch = [test]
            if self._pool is not None and test in self._order:
                start = self._order.index(test) + 1
                for candidate in self._order[start:]:
                    if len(batch) >= self._width:
                        break
                    if candidate.name not in self.results and self._needed(candidate):
                        batch.append(candidate)
            if self._pool is None or len(batch) == 1:
                outcomes = [self.run_test(t) for t in batch]
            else:
                outcomes = list(self._pool.map(self.run_test, batch))
            for t, result in zip(batch, outcomes, strict=True):
                self.results[t.name] = result
        self.consumed[test.name] = None
        return self.results[test.name]

    # -- one test -------------------------------------------------------------------------

    def run_test(self, test: TestCase) -> TestResult:
        if self.package.interactive:
            with self.judge.pair_slots:
                return self._run_passes(test, self._interactive_pass)
        return self._run_passes(test, self._batch_pass)

    def _run_passes(self, test: TestCase, one_pass: Callable[[TestCase, bytes, dict[str, bytes]], _Pass]) -> TestResult:
        """Run ``one_pass`` once, or (multi-pass) again on each ``nextpass.in`` the validator
        writes, up to ``limits.validation_passes``; the feedback directory persists across passes."""
        stdin = test.input_path.read_bytes()
        feedback: dict[str, bytes] = {}
        slowest = 0.0
        peak = 0
        passes = self.package.limits.validation_passes if self.package.multi_pass else 1
        for index in range(passes):
            result = one_pass(test, stdin, feedback)
            slowest = max(slowest, result.execution.cpu_time_s)
            peak = max(peak, result.execution.peak_memory_kb)
            next_input = result.feedback.pop(NEXT_PASS, None)
            if not self.package.multi_pass or result.verdict != verdicts.AC or next_input is None:
                return self._result(test, result, slowest, peak, index + 1)
            feedback, stdin = result.feedback, next_input
        last = _Pass(verdicts.JE, result.execution, f"the validator asked for more than {passes} passes")
        return self._result(test, last, slowest, peak, passes)

    def _result(self, test: TestCase, result: _Pass, time_s: float, memory_kb: int, passes: int) -> TestResult:
        return TestResult(
            name=test.name,
            group=test.group,
            verdict=result.verdict,
            score=result.score,
            time_s=round(time_s, 4),
            memory_kb=memory_kb,
            message=result.message[:500],
            cause=result.cause,
            multiplier=result.multiplier,
            passes=passes,
        )

    def _batch_pass(self, test: TestCase, stdin: bytes, feedback: dict[str, bytes]) -> _Pass:
        execution = self.sandbox.run(
            self.program, stdin, argv=test.args, files=test.input_files(), limits=self.limits
        )
        if execution.verdict == "OLE":
            return self._output_flood(test, stdin, execution)
        failure = verdicts.from_execution(execution.verdict)
        if failure is not None:
            return _Pass(failure, execution, execution.message, cause=verdicts.cause_of(execution.verdict))
        outcome, files = self._check(test, stdin, execution.stdout, feedback)
        return _Pass(outcome.verdict, execution, outcome.message, outcome.score, outcome.multiplier, feedback=files)

    def _output_flood(self, test: TestCase, stdin: bytes, first: ExecResult) -> _Pass:
        """Output beyond the limit: run again with the output read and dropped, to tell a run that
        would have gone past the time limit (``TLE``) from one that ends (``RE``, cause ``OLE``)."""
        out_read, out_write = os.pipe()
        in_read, in_write = os.pipe()
        try:
            process = self.sandbox.spawn(
                self.program, stdin=in_read, stdout=out_write, argv=test.args, files=test.input_files(),
                limits=self.limits,
            )  # fmt: skip
        finally:
            os.close(in_read)
            os.close(out_write)
        threading.Thread(target=_feed, args=(in_write, stdin), daemon=True).start()
        try:
            with process:
                while os.read(out_read, 1 << 20):
                    pass
                again = process.wait()
        finally:
            os.close(out_read)
        if again.verdict == "TLE":
            return _Pass(verdicts.TLE, again, again.message)
        if again.verdict in ("OK", "RE", "OLE", "MLE"):
            cause = verdicts.MLE if again.verdict == "MLE" else verdicts.OLE
            message = first.message if cause == verdicts.OLE else again.message
            return _Pass(verdicts.RE, again, message, cause=cause)
        return _Pass(verdicts.JE, again, again.message)

    def _check(
        self, test: TestCase, stdin: bytes, output: bytes, feedback: dict[str, bytes]
    ) -> tuple[CheckOutcome, dict[str, bytes]]:
        spec = self.package.checker
        answer = test.answer_path.read_bytes()
        if spec.kind == "default":
            return default_check(answer, output, parse_validator_flags(test.output_validator_flags)), {}
        if spec.kind == "standard":
            assert spec.name is not None
            return standard_check(spec.name, output, answer), {}
        checker = self.prepared.checker
        assert checker is not None
        files = {"input": stdin, "answer": answer}
        if checker.protocol == "testlib":
            files["output"] = output
            result = self.sandbox.run(
                checker.program, argv=["input", "output", "answer"], files=files, limits=self.checker_limits
            )
            return testlib_outcome(result), {}
        files.update({f"{FEEDBACK_DIR}{name}": data for name, data in feedback.items()})
        argv = checker.argv("input", "answer", FEEDBACK_DIR, *test.output_validator_flags)
        result = self.sandbox.run(checker.program, output, argv=argv, files=files, limits=self.checker_limits)
        outcome = kattis_outcome(result, want_score=test.score_file, multi_pass=self.package.multi_pass)
        return outcome, feedback_of(result.stderr).files

    def _interactive_pass(self, test: TestCase, stdin: bytes, feedback: dict[str, bytes]) -> _Pass:
        checker = self.prepared.checker
        assert checker is not None
        to_solution_r, to_solution_w = os.pipe()
        from_solution_r, from_solution_w = os.pipe()
        files = {"input": stdin, "answer": test.answer_path.read_bytes()}
        files.update({f"{FEEDBACK_DIR}{name}": data for name, data in feedback.items()})
        argv = checker.argv("input", "answer", FEEDBACK_DIR, *test.output_validator_flags)
        finished: queue.Queue[tuple[str, ExecResult]] = queue.Queue()
        try:
            interactor = self.sandbox.spawn(
                checker.program,
                stdin=from_solution_r,
                stdout=to_solution_w,
                argv=argv,
                files=files,
                limits=self.checker_limits,
            )
            solution = self.sandbox.spawn(
                self.program,
                stdin=to_solution_r,
                stdout=from_solution_w,
                argv=test.args,
                files=test.input_files(),
                limits=self.interactive_limits,
            )
        except BaseException:
            os.close(to_solution_r)
            os.close(from_solution_r)
            raise
        finally:
            # The workers hold their own copies; ours would keep the pipes open forever. All but
            # the two read ends: as the judges' relays do, what one side still writes once the
            # other has gone is taken and dropped, never a broken pipe.
            for fd in (to_solution_w, from_solution_w):
                with contextlib.suppress(OSError):
                    os.close(fd)

        watch = _WallClockWatch(solution, interactor, self.limits.wall_s)

        def wait(name: str, process: SandboxProcess, its_input: int) -> None:
            result = process.wait()
            if name == "solution":
                watch.stop()
            threading.Thread(target=_drain, args=(its_input,), daemon=True).start()
            finished.put((name, result))

        with interactor, solution, watch:
            for name, process, its_input in (
                ("interactor", interactor, from_solution_r),
                ("solution", solution, to_solution_r),
            ):
                threading.Thread(target=wait, args=(name, process, its_input), daemon=True).start()
            first_name, first_result = finished.get()
            # Stop a solution the interactor has given up on; but when the interactor only stopped
            # because the solution's output closed, the solution is ending on its own, and killing
            # it would replace its real verdict (a crash, the memory limit) with "killed".
            if (
                first_name == "interactor"
                and kattis_outcome(first_result, want_score=False).verdict != verdicts.AC
                and not input_was_closed(first_result)
            ):
                solution.kill()
            second_name, second_result = finished.get()
        results = {first_name: first_result, second_name: second_result}
        solution_result, interactor_result = watch.verdict_of(results["solution"]), results["interactor"]
        # Who ended first is read from the interactor's side (was its input already closed?),
        # not from the order the results arrive in, which races.
        interactor_first = not input_was_closed(interactor_result)
        outcome = kattis_outcome(interactor_result, want_score=test.score_file, multi_pass=self.package.multi_pass)
        solution_failure = verdicts.from_execution(solution_result.verdict)
        verdict = verdicts.interactive_verdict(
            solution_failure, outcome.verdict, interactor_exited_first=interactor_first
        )
        if verdict == outcome.verdict:
            return _Pass(verdict, solution_result, outcome.message, outcome.score if verdict == verdicts.AC else None,
                         outcome.multiplier, feedback=feedback_of(interactor_result.stderr).files)  # fmt: skip
        cause = verdicts.cause_of(solution_result.verdict)
        return _Pass(verdict, solution_result, solution_result.message, cause=cause)


__all__ = [
    "Judge",
    "JudgeReport",
    "PreparedProblem",
    "ProblemPackageError",
    "UnsupportedFeature",
    "checker_limits",
    "solution_limits",
]
