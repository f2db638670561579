"""Judge a solution against a problem package, in the sandbox, as the contest would.

Checker programs are compiled once per package version (keyed by the package's fingerprint) and
reused for every submission; built-in checkers run in-process. Tests run in parallel (up to the
sandbox's worker count) but are *graded* in test order, so early stops (``on_reject: break``, a
subtask already lost) give the same result however the runs were scheduled.
"""

from __future__ import annotations

import os
import queue
import threading
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
from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.grading import GroupResult, TestResult
from cascade_plugins.rewards.competition.package import ProblemPackage, TestCase, fingerprint, load_problem
from cascade_plugins.rewards.competition.programs import (
    FEEDBACK_DIR,
    PreparedChecker,
    input_was_closed,
    kattis_outcome,
    prepare_checker,
    testlib_outcome,
)
from cascade_plugins.sandbox import COMPILE_LIMITS, ExecResult, Limits, Program, Sandbox

_MIB = 1024 * 1024


@dataclass
class JudgeReport:
    """Everything a judging produced. ``verdict`` is the ICPC result (``CE``, or the first
    non-``AC`` test verdict in test order, or ``AC``); ``score``/``max_score`` the points."""

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
    return Limits(cpu_time_s=limits.validation_time_s, memory_mb=limits.validation_memory_mb, max_processes=16)


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
        """Load (or reuse) the package at ``path``; reloaded when any of its files changes."""
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
        """Compile the package's checker or interactor once (per package version)."""
        key = (str(package.root), package.fingerprint)
        with self._lock:
            cached = self._problems.get(key)
            if cached is not None:
                self._problems.move_to_end(key)
                return cached
        checker = None
        if package.checker.program is not None:
            protocol = "testlib" if package.checker.kind == "testlib" else "kattis"
            compile_limits = Limits(
                cpu_time_s=package.limits.compilation_time_s,
                wall_time_s=2 * package.limits.compilation_time_s,
                memory_mb=COMPILE_LIMITS.memory_mb,
                max_processes=COMPILE_LIMITS.max_processes,
                file_size_mb=COMPILE_LIMITS.file_size_mb,
            )
            checker = prepare_checker(self.sandbox, package.checker.program, protocol, compile_limits)
        prepared = PreparedProblem(package, checker)
        with self._lock:
            self._problems[key] = prepared
            _trim(self._problems, self._cache_size)
        return prepared

    # -- judging --------------------------------------------------------------------------

    def judge(self, problem: ProblemPackage | str | os.PathLike[str], source: str, language: str) -> JudgeReport:
        """Judge ``source`` (``python`` or ``cpp``) on ``problem`` (a package or its path).

        Raises :class:`ProblemPackageError` for a bad package (before running anything).
        """
        package = problem if isinstance(problem, ProblemPackage) else self.load(problem)
        prepared = self.prepare(package)
        sandbox = self.sandbox
        if package.interactive and sandbox.max_workers < 2:
            raise ValueError("interactive problems need a sandbox with at least 2 workers (solution + interactor)")
        scoring = (
            package.subtasks.score_type
            if package.subtasks
            else ("kattis-groups" if package.kind == "scoring" else "pass-fail")
        )
        program = sandbox.prepare(source, language)
        if program.compile_failed:
            assert program.compile_result is not None
            max_score = self._max_score(package)
            message = program.compile_result.stderr.decode("utf-8", "replace")[-2000:] or program.compile_result.message
            return JudgeReport(
                package.name, package.kind, scoring, verdicts.CE, 0.0, max_score, compile_message=message
            )
        runner = _TestRunner(self, prepared, program)
        try:
            return self._grade(package, scoring, runner)
        finally:
            runner.close()

    def _max_score(self, package: ProblemPackage) -> float:
        if package.kind == "pass-fail":
            return 1.0
        if package.subtasks is not None:
            return sum(g.max_score for g in grading.grade_subtasks(package.subtasks, package.tests(), {}))
        return grading.max_score(package.data)

    def _grade(self, package: ProblemPackage, scoring: str, runner: _TestRunner) -> JudgeReport:
        tests = package.tests()
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
            _, root_score = grading.grade_tree(package.data, runner.evaluate, groups)
            if package.kind == "scoring":
                score, max_score = root_score, grading.max_score(package.data)
            else:
                score, max_score = 0.0, 1.0
        graded = runner.graded()
        ordered = [graded.get(t.name) or TestResult(t.name, t.group, verdicts.SKIPPED) for t in tests]
        verdict = verdicts.first_error(r.verdict for r in ordered)
        if package.kind == "pass-fail":
            score = 1.0 if verdict == verdicts.AC else 0.0
        return JudgeReport(package.name, package.kind, scoring, verdict, score, max_score, ordered, groups)


def _trim(cache: OrderedDict[Any, Any], size: int) -> None:
    while len(cache) > max(1, size):
        cache.popitem(last=False)


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
            return self._run_interactive(test)
        execution = self.sandbox.run(self.program, test.input_path.read_bytes(), limits=self.limits)
        failure = verdicts.from_execution(execution.verdict)
        if failure is not None:
            return self._result(test, failure, execution, execution.message)
        outcome = self._check(test, execution.stdout)
        return self._result(test, outcome.verdict, execution, outcome.message, outcome.score)

    def _result(
        self, test: TestCase, verdict: str, execution: ExecResult, message: str, score: float | None = None
    ) -> TestResult:
        return TestResult(
            name=test.name,
            group=test.group,
            verdict=verdict,
            score=score,
            time_s=round(execution.cpu_time_s, 4),
            memory_kb=execution.peak_memory_kb,
            message=message[:500],
        )

    def _check(self, test: TestCase, output: bytes) -> CheckOutcome:
        spec = self.package.checker
        answer = test.answer_path.read_bytes()
        if spec.kind == "default":
            return default_check(answer, output, parse_validator_flags(test.output_validator_flags))
        if spec.kind == "standard":
            assert spec.name is not None
            return standard_check(spec.name, output, answer)
        checker = self.prepared.checker
        assert checker is not None
        files = {"input": test.input_path.read_bytes(), "answer": answer}
        if checker.protocol == "testlib":
            files["output"] = output
            result = self.sandbox.run(
                checker.program, argv=["input", "output", "answer"], files=files, limits=self.checker_limits
            )
            return testlib_outcome(result)
        argv = checker.argv("input", "answer", FEEDBACK_DIR, *test.output_validator_flags)
        result = self.sandbox.run(checker.program, output, argv=argv, files=files, limits=self.checker_limits)
        return kattis_outcome(result, want_score=self.package.custom_score)

    def _run_interactive(self, test: TestCase) -> TestResult:
        with self.judge.pair_slots:
            return self._run_interactive_pair(test)

    def _run_interactive_pair(self, test: TestCase) -> TestResult:
        checker = self.prepared.checker
        assert checker is not None
        to_solution_r, to_solution_w = os.pipe()
        from_solution_r, from_solution_w = os.pipe()
        files = {"input": test.input_path.read_bytes(), "answer": test.answer_path.read_bytes()}
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
            solution = self.sandbox.spawn(self.program, stdin=to_solution_r, stdout=from_solution_w, limits=self.limits)
        finally:
            # The workers hold their own copies; ours would keep the pipes open forever.
            for fd in (to_solution_r, to_solution_w, from_solution_r, from_solution_w):
                os.close(fd)
        with interactor, solution:
            for name, process in (("interactor", interactor), ("solution", solution)):
                threading.Thread(target=lambda n=name, p=process: finished.put((n, p.wait())), daemon=True).start()
            first_name, first_result = finished.get()
            # Stop a solution the interactor has given up on; but when the interactor only stopped
            # because the solution's output closed, the solution is ending on its own, and killing
            # it would replace its real verdict (MLE, RE) with "killed".
            if (
                first_name == "interactor"
                and kattis_outcome(first_result, want_score=False).verdict != verdicts.AC
                and not input_was_closed(first_result)
            ):
                solution.kill()
            second_name, second_result = finished.get()
        results = {first_name: first_result, second_name: second_result}
        solution_result, interactor_result = results["solution"], results["interactor"]
        # Who ended first is read from the interactor's side (was its input already closed?),
        # not from the order the results arrive in, which races.
        interactor_first = not input_was_closed(interactor_result)
        outcome = kattis_outcome(interactor_result, want_score=self.package.custom_score)
        solution_failure = verdicts.from_execution(solution_result.verdict)
        verdict = verdicts.interactive_verdict(
            solution_failure, outcome.verdict, interactor_exited_first=interactor_first
        )
        message = outcome.message if verdict == outcome.verdict else solution_result.message
        score = outcome.score if verdict == verdicts.AC else None
        return self._result(test, verdict, solution_result, message, score)


__all__ = ["Judge", "JudgeReport", "PreparedProblem", "ProblemPackageError", "checker_limits", "solution_limits"]
