"""The ``code`` reward: run the response's program against the sample's unit tests in the sandbox."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast

from cascade_plugins.interfaces import RewardResult, Sample, Verdict, judged_verdict
from cascade_plugins.rewards.code.compare import outputs_match, values_match
from cascade_plugins.rewards.code.extract import find_program
from cascade_plugins.rewards.code.formats import (
    AssertTests,
    CallTests,
    HumanEvalTests,
    StdioTests,
    TestFormatError,
    TestSuite,
    find_tests,
    is_python,
    parse_tests,
)
from cascade_plugins.rewards.code.harness import (
    HarnessReport,
    HarnessSpec,
    harness_limits,
    harness_spec,
    run_harness,
)
from cascade_plugins.rewards.code.options import CodeOptions, validate_options
from cascade_plugins.rewards.code.telemetry import batch_metrics, source_markers, suspicion
from cascade_plugins.sandbox import ExecResult, Limits, Sandbox
from cascade_plugins.sandbox import Verdict as SandboxVerdict

logger = logging.getLogger(__name__)

#: the verdict of a wrong answer (the sandbox's verdicts cover everything else)
WRONG_ANSWER = "WA"
#: referee statuses -> test verdicts (``done``: a call-based result the host compares)
_STATUS_VERDICTS = {
    "wrong": WRONG_ANSWER,
    "memory": "MLE",
    "timeout": "TLE",
    "error": "RE",
    "exited": "RE",
    "protocol": "RE",
    "unsupported": Verdict.ERROR,
    "not_run": "SKIPPED",
}
#: why the solution did not load -> verdict
_LOAD_VERDICTS = {"memory": "MLE", "timeout": "TLE", "tests": Verdict.ERROR}


#: most suites one sandbox job runs (more would leave workers idle at the end of a batch)
MAX_SUITES_PER_JOB = 16


def _batches(indices: list[int], workers: int, size: int | None = None) -> list[list[int]]:
    """``indices`` in consecutive chunks of ``size``; by default each takes a ``2 * workers``-th
    of what is left (1 to MAX_SUITES_PER_JOB), so the last jobs are short and no worker waits
    long for the others at the end of a batch."""
    chunks, start = [], 0
    while start < len(indices):
        step = size or max(1, min(MAX_SUITES_PER_JOB, -(-(len(indices) - start) // (2 * workers))))
        chunks.append(indices[start : start + step])
        start += step
    return chunks


@dataclass
class _Pending:
    """A sample whose tests still have to run."""

    code: str
    language: str
    suite: TestSuite
    seen: dict[str, Any]
    #: what the referee reads, for suites the harness runs (``None``: stdio tests)
    spec: HarnessSpec | None = None


@dataclass
class TestOutcome:
    verdict: str
    time_s: float = 0.0
    message: str = ""
    input: str = ""
    expected: str = ""
    got: str = ""

    __test__ = False


def _clip(text: Any, limit: int) -> str:
    text = text if isinstance(text, str) else json.dumps(text, default=repr)
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more]"


def run_in_order(
    count: int, run_one: Callable[[int], TestOutcome], stop_early: bool, parallel: int
) -> list[TestOutcome]:
    """Run tests ``0..count-1``; with ``stop_early`` everything after the first failure is skipped.

    The outcome never depends on scheduling: with ``parallel > 1`` tests after the first failure
    (in order) are reported ``SKIPPED`` even when they ran.
    """
    outcomes: list[TestOutcome | None] = [None] * count
    first_failure = [count]
    guard = threading.Lock()

    def task(index: int) -> None:
        with guard:
            if stop_early and index > first_failure[0]:
                return
        outcome = run_one(index)
        outcomes[index] = outcome
        if outcome.verdict != Verdict.CORRECT:
            with guard:
                first_failure[0] = min(first_failure[0], index)

    if parallel <= 1 or count <= 1:
        for index in range(count):
            if stop_early and first_failure[0] < count:
                break
            task(index)
    else:
        with ThreadPoolExecutor(min(parallel, count)) as pool:
            list(pool.map(task, range(count)))
    cut = first_failure[0] if stop_early else count
    return [
        o if (o is not None and i <= cut) else TestOutcome("SKIPPED", message="not run: an earlier test failed")
        for i, o in enumerate(outcomes)
    ]


class CodeReward:
    """Strict binary (or fraction-passed) reward from unit tests run in the sandbox."""

    name = "code"

    def __init__(self, **options: Any):
        self.options: CodeOptions = validate_options(options)
        low, high = sorted((self.options.incorrect_reward, self.options.correct_reward))
        self.reward_range = (low, high)
        self._sandbox: Sandbox | None = None
        self._lock = threading.Lock()
        #: reward-hacking counts of the latest batch (see :func:`telemetry.batch_metrics`)
        self.last_batch_metrics: dict[str, int] = {}
        if self.options.isolation == "required":
            self._box()  # refuse now, with the sandbox's message, rather than at the first batch

    # -- lifecycle ------------------------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        return {"options": self.options.model_dump()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state["options"])  # type: ignore[misc]

    def _box(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                self._sandbox = Sandbox(isolation=self.options.isolation, max_workers=self.options.max_workers)
            return self._sandbox

    def close(self) -> None:
        with self._lock:
            box, self._sandbox = self._sandbox, None
        if box is not None:
            box.close()

    # -- scoring --------------------------------------------------------------------------

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        samples = list(samples)
        if not samples:
            return []
        box = self._box()
        parallel_tests = box.max_workers if len(samples) < box.max_workers else 1
        plans = [self._plan_safely(sample) for sample in samples]
        results: list[RewardResult | None] = [plan if isinstance(plan, RewardResult) else None for plan in plans]
        pending = {i: plan for i, plan in enumerate(plans) if isinstance(plan, _Pending)}
        harness = [i for i, plan in pending.items() if plan.spec is not None]
        tasks: list[Callable[[], None]] = [
            lambda chunk=chunk: self._score_batch(box, [pending[i] for i in chunk], chunk, results)
            for chunk in _batches(harness, box.max_workers, self.options.suites_per_job)
        ]
        tasks += [
            lambda i=i: self._score_stdio(box, pending[i], i, results, parallel_tests)
            for i, plan in pending.items()
            if plan.spec is None
        ]
        if len(tasks) == 1:
            tasks[0]()
        elif tasks:
            with ThreadPoolExecutor(min(len(tasks), box.max_workers + 1)) as pool:
                list(pool.map(lambda task: task(), tasks))
        final = [result or self._error("not scored") for result in results]
        self._report(final)
        return final

    def _report(self, results: list[RewardResult]) -> None:
        """Count the batch's suspicious behaviour and log it (a warning once tampering shows)."""
        metrics = batch_metrics(results)
        self.last_batch_metrics = metrics
        flagged = metrics["tamper_attempts"] + metrics["early_exits"]
        if flagged or metrics["timeouts"] or metrics["suspicious_source"]:
            level = logging.WARNING if flagged else logging.INFO
            counts = ", ".join(f"{k}={v}" for k, v in metrics.items() if v and k != "samples")
            logger.log(level, "code reward: %d samples; reward-hacking telemetry: %s", metrics["samples"], counts)

    def _error(self, message: str) -> RewardResult:
        return RewardResult(self.options.incorrect_reward, Verdict.ERROR, {"error": message})

    def score_one(self, sample: Sample, box: Sandbox | None = None, parallel_tests: int = 1) -> RewardResult:
        """One sample on its own (``score`` runs many suites per sandbox job)."""
        box = box or self._box()
        results: list[RewardResult | None] = [None]
        plan = self._plan_safely(sample)
        if isinstance(plan, RewardResult):
            return plan
        if plan.spec is not None:
            self._score_batch(box, [plan], [0], results)
        else:
            self._score_stdio(box, plan, 0, results, parallel_tests)
        return results[0] or self._error("not scored")

    # -- one sample's plan: what to run, or its result at once ----------------------------

    def _plan_safely(self, sample: Sample) -> RewardResult | _Pending:
        try:
            return self._plan(sample)
        except Exception as exc:  # a reward never raises on a sample
            return self._error(f"{type(exc).__name__}: {exc}")

    def _plan(self, sample: Sample) -> RewardResult | _Pending:
        options = self.options
        if not isinstance(sample, Sample) or not isinstance(sample.response, str):
            return self._error("sample response must be a string")
        try:
            raw_tests, where = find_tests(sample.tests, sample.metadata or {})
            suite = parse_tests(raw_tests, where)
        except TestFormatError as exc:
            return self._error(str(exc))
        language = options.language
        if language != "python" and not isinstance(suite, StdioTests):
            return self._error(f"{type(suite).__name__} need a Python solution, but language is {language!r}")
        found = find_program(
            sample.response,
            language,
            strip_think=options.strip_think,
            block=options.code_block,
            require_fence=options.require_fence,
        )
        if found is None:
            return RewardResult(options.incorrect_reward, Verdict.NO_ANSWER, {"error": "no program in the response"})
        code, sandbox_language = found
        if (
            isinstance(suite, HumanEvalTests)
            and not suite.prompt
            and f"def {suite.entry_point}(" in sample.prompt
            and is_python(sample.prompt)
        ):
            # A HumanEval row's own prompt (its code): the tests' helpers come from it, not the solution.
            suite = HumanEvalTests(suite.test, suite.entry_point, sample.prompt)
        seen: dict[str, Any] = {"source": source_markers(code, language)}
        if isinstance(suite, StdioTests):
            return _Pending(code, sandbox_language, suite, seen)
        spec = harness_spec(
            code,
            suite,
            cpu_per_test=options.time_limit_s,
            stop_on_failure=options.stop_early,
            reply_bytes=options.output_bytes,
        )
        return _Pending(code, sandbox_language, suite, seen, spec)

    # -- running ----------------------------------------------------------------------------

    def _score_stdio(
        self, box: Sandbox, plan: _Pending, index: int, results: list[RewardResult | None], parallel_tests: int
    ) -> None:
        try:
            assert isinstance(plan.suite, StdioTests)
            outcomes = self._run_stdio(box, plan.code, plan.language, plan.suite, parallel_tests)
            results[index] = self._result(outcomes, box, suspicion(**plan.seen))
        except Exception as exc:  # a reward never raises on a sample
            results[index] = self._error(f"{type(exc).__name__}: {exc}")

    def _score_batch(
        self, box: Sandbox, plans: list[_Pending], indices: list[int], results: list[RewardResult | None]
    ) -> None:
        """Run the harness suites ``plans`` in one sandbox job; a suite that job did not finish
        (the job hit a limit, or a contestant left something behind) runs again in a job of its own."""
        options = self.options
        try:
            specs = [cast(HarnessSpec, plan.spec) for plan in plans]
            counts = [plan.suite.count for plan in plans]

            def limits(counts: list[int]) -> Limits:
                return harness_limits(options.time_limit_s, counts, options.memory_mb, options.output_bytes)

            walls = [limits([count]).wall_s for count in counts]
            reports = run_harness(box, specs, limits(counts), walls)
            if len(plans) > 1:
                for k, report in enumerate(reports):
                    if report.done is None:
                        reports[k] = run_harness(box, [specs[k]], limits([counts[k]]), walls[k : k + 1])[0]
        except Exception as exc:  # a reward never raises on a sample
            for index in indices:
                results[index] = self._error(f"{type(exc).__name__}: {exc}")
            return
        for plan, index, report in zip(plans, indices, reports, strict=True):
            try:
                if report.done is not None:
                    plan.seen["noticed"] = [str(n) for n in report.done.get("noticed", [])]
                    plan.seen["events"] = report.done.get("events") or {}
                assert not isinstance(plan.suite, StdioTests)
                outcomes = self._harness_outcomes(plan.suite, report)
                results[index] = self._result(outcomes, box, suspicion(**plan.seen))
            except Exception as exc:  # a reward never raises on a sample
                results[index] = self._error(f"{type(exc).__name__}: {exc}")

    def _limits(self, cpu_time_s: float | None = None) -> Limits:
        return Limits(
            cpu_time_s=cpu_time_s or self.options.time_limit_s,
            memory_mb=self.options.memory_mb,
            output_bytes=self.options.output_bytes,
        )

    def _run_stdio(
        self, box: Sandbox, code: str, language: str, suite: StdioTests, parallel: int
    ) -> list[TestOutcome]:
        options = self.options
        program = box.prepare(code, language)
        if program.compile_failed:
            assert program.compile_result is not None
            return [self._failed_run(program.compile_result, "")] + [
                TestOutcome("SKIPPED", message="not run: compilation failed")
            ] * (suite.count - 1)
        limits = self._limits()

        def one(index: int) -> TestOutcome:
            stdin, expected = suite.inputs[index], suite.outputs[index]
            result = box.run(program, stdin, limits=limits)
            if not result.ok:
                return self._failed_run(result, stdin)
            got = result.stdout.decode("utf-8", "replace")
            if outputs_match(got, expected, options.compare, options.float_tolerance):
                return TestOutcome(Verdict.CORRECT, result.cpu_time_s)
            clip = options.detail_chars
            return TestOutcome(
                WRONG_ANSWER,
                result.cpu_time_s,
                "output differs",
                _clip(stdin, clip),
                _clip(expected, clip),
                _clip(got, clip),
            )

        return run_in_order(suite.count, one, options.stop_early, parallel)

    def _failed_run(self, result: ExecResult, stdin: str) -> TestOutcome:
        clip = self.options.detail_chars
        message = result.message
        stderr = result.stderr.decode("utf-8", "replace").strip()
        if stderr:
            message = f"{message}: {stderr[-clip:]}" if message else stderr[-clip:]
        return TestOutcome(str(result.verdict), result.cpu_time_s, message, _clip(stdin, clip))

    def _harness_outcomes(
        self, suite: CallTests | AssertTests | HumanEvalTests, report: HarnessReport
    ) -> list[TestOutcome]:
        options = self.options
        clip = options.detail_chars
        result = report.result
        if report.harness_error is not None:
            message = f"harness failure: {report.harness_error}"
            return [TestOutcome(SandboxVerdict.SANDBOX_ERROR, message=_clip(message, clip))] * suite.count
        if report.load_error is not None:
            why = str(report.load_error.get("why", "error"))
            verdict = _LOAD_VERDICTS.get(why, "RE")
            message = f"the solution failed to load: {report.load_error.get('load_error', '')}"
            skipped = TestOutcome("SKIPPED", message="not run: the solution failed to load")
            return [TestOutcome(verdict, message=_clip(message, clip))] + [skipped] * (suite.count - 1)
        outcomes: list[TestOutcome] = []
        for index in range(suite.count):
            record = report.tests.get(index)
            if record is None:
                break
            outcomes.append(self._test_outcome(suite, index, record))
        if len(outcomes) < suite.count:
            stopped_early = outcomes and outcomes[-1].verdict != Verdict.CORRECT and options.stop_early
            if not stopped_early:
                # The referee ended during test len(outcomes) (a limit of the whole job): it takes
                # the sandbox's verdict.
                verdict = str(result.verdict) if not result.ok else SandboxVerdict.SANDBOX_ERROR
                message = result.message if not result.ok else "the harness ended before the test finished"
                crashed = self._failed_run(result, "")
                shown = self._shown_input(suite, len(outcomes))
                outcomes.append(TestOutcome(verdict, result.cpu_time_s, crashed.message or message, shown))
            while len(outcomes) < suite.count:
                outcomes.append(TestOutcome("SKIPPED", message="not run: an earlier test failed"))
        return outcomes

    def _test_outcome(
        self, suite: CallTests | AssertTests | HumanEvalTests, index: int, record: dict[str, Any]
    ) -> TestOutcome:
        options = self.options
        clip = options.detail_chars
        shown_input = self._shown_input(suite, index)
        status, error = str(record.get("status")), str(record.get("error", ""))
        try:
            cpu = float(record.get("cpu", 0.0))
        except (TypeError, ValueError):
            cpu = 0.0
        if status == "pass" and not isinstance(suite, CallTests):
            return TestOutcome(Verdict.CORRECT, cpu)
        if status == "done" and isinstance(suite, CallTests):
            expected = suite.outputs[index]
            try:
                got = json.loads(record["got"])
            except (KeyError, TypeError, ValueError):
                return TestOutcome(WRONG_ANSWER, cpu, "the result cannot be compared", shown_input)
            if values_match(got, expected, options.float_tolerance):
                return TestOutcome(Verdict.CORRECT, cpu)
            return TestOutcome(
                WRONG_ANSWER,
                cpu,
                "wrong return value",
                shown_input,
                _clip(expected, clip),
                _clip(record.get("got", ""), clip),
            )
        verdict = _STATUS_VERDICTS.get(status, "RE")
        message = error or (f"CPU time {cpu:.2f}s exceeded {options.time_limit_s}s" if verdict == "TLE" else "")
        return TestOutcome(verdict, cpu, _clip(message, clip), shown_input)

    def _shown_input(self, suite: TestSuite, index: int) -> str:
        clip = self.options.detail_chars
        if isinstance(suite, CallTests):
            return _clip(list(suite.args[index]), clip)
        if isinstance(suite, AssertTests):
            return _clip(suite.asserts[index], clip)
        if isinstance(suite, HumanEvalTests):
            return f"check({suite.entry_point})"
        return ""

    def _result(self, outcomes: list[TestOutcome], box: Sandbox, suspicious: dict[str, Any]) -> RewardResult:
        options = self.options
        passed = sum(o.verdict == Verdict.CORRECT for o in outcomes)
        total = len(outcomes)
        failure = next((i for i, o in enumerate(outcomes) if o.verdict != Verdict.CORRECT), None)
        if options.mode == "fraction":
            share = passed / total if total else 0.0
            reward = options.incorrect_reward + share * (options.correct_reward - options.incorrect_reward)
        else:
            reward = options.correct_reward if failure is None else options.incorrect_reward
        details: dict[str, Any] = {
            "passed": passed,
            "total": total,
            "tests": [{"verdict": o.verdict, "time_s": round(o.time_s, 4)} for o in outcomes],
            "isolation": str(box.isolation_mode),
        }
        if suspicious:
            details["suspicious"] = suspicious
        if failure is not None:
            first = outcomes[failure]
            details["first_failure"] = {
                "index": failure,
                "verdict": first.verdict,
                "message": first.message,
                "input": first.input,
                "expected": first.expected,
                "got": first.got,
            }
        verdict = Verdict.CORRECT if failure is None else outcomes[failure].verdict
        if verdict == SandboxVerdict.SANDBOX_ERROR:
            # The sandbox failed even after its retries: not the policy's doing. ``error`` lets a
            # trainer drop the sample instead of learning from a zero it did not earn.
            details["sandbox_error"] = True
            verdict = Verdict.ERROR
        # the shared vocabulary; the test's own verdict (WA, TLE, ...) stays in the details
        details["judge_verdict"] = "AC" if failure is None else str(outcomes[failure].verdict)
        shared = judged_verdict(str(verdict))
        if shared != Verdict.CORRECT and options.mode == "fraction" and 0 < passed < total:
            shared = Verdict.PARTIAL
        return RewardResult(float(reward), shared, details)
