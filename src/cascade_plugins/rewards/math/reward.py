"""The ``math`` reward: final-answer verification with killable, deadline-bound symbolic checks."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

from cascade_plugins.interfaces import RewardResult, Sample, Verdict
from cascade_plugins.rewards.math.judge import JudgeCallable, JudgeQuery, ModelJudge
from cascade_plugins.rewards.math.options import MathOptions, OptionsError, merge_sample_options, validate_options
from cascade_plugins.rewards.math.verifier import Decision, SymbolicTask, decide_symbolic, gold_text, prepare
from cascade_plugins.rewards.workerpool import TaskOutcome, WorkerPool

__all__ = ["MathReward"]


def warm_up_worker() -> None:
    """Worker initializer: import sympy and the LaTeX parser before the first deadline starts."""
    from cascade_plugins.rewards.math.symbolic import warm_up

    warm_up()


#: ``metadata`` key holding per-sample option overrides.
SAMPLE_OPTIONS_KEY = "math"


class MathReward:
    """Scores math answers against ``sample.ground_truth``.

    Cheap decisions (extraction, plain numbers, strings, multiple choice) are made in the calling
    thread; anything that needs sympy runs in a pool of worker processes, each sample under a
    wall-clock deadline of ``timeout`` seconds (verdict ``timeout`` when it is exceeded).
    """

    name = "math"

    def __init__(self, **options: Any) -> None:
        judge_function: JudgeCallable | None = None
        if callable(options.get("judge")):
            judge_function = options.pop("judge")
        self.options: MathOptions = validate_options(options)
        self.reward_range: tuple[float, float] = self.options.reward_range
        self._pool: WorkerPool | None = None
        self._pool_lock = threading.Lock()
        self._judge: ModelJudge | None = None
        if judge_function is not None:
            self._judge = ModelJudge(self.options.judge, function=judge_function)
        elif self.options.judge is not None:
            self._judge = ModelJudge(self.options.judge)
        #: judge counters: queries asked (cache hits included), verdicts flipped, failed replies, cache hits
        self.judge_metrics: dict[str, int] = {"asked": 0, "flipped": 0, "failed": 0, "cached": 0}

    # -- pickling: options (and a callable judge); the pool is re-created lazily where it lands ------

    def __getstate__(self) -> dict[str, Any]:
        state: dict[str, Any] = {"options": self.options.model_dump(exclude_none=True)}
        if self._judge is not None and self._judge.function is not None:
            state["judge_function"] = self._judge.function
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        options = dict(state["options"])
        if "judge_function" in state:
            options["judge"] = state["judge_function"]
        self.__init__(**options)  # type: ignore[misc]

    def __repr__(self) -> str:
        changed = self.options.model_dump(exclude_defaults=True)
        return f"MathReward({', '.join(f'{k}={v!r}' for k, v in changed.items())})"

    # -- the Reward protocol ----------------------------------------------------------------------

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        results: list[RewardResult | None] = [None] * len(samples)
        pending: list[tuple[int, list[SymbolicTask]]] = []
        for index, sample in enumerate(samples):
            outcome = self._prepare_sample(sample)
            if isinstance(outcome, RewardResult):
                results[index] = outcome
            else:
                pending.append((index, outcome))
        if pending:
            self._run_symbolic(pending, results)
        final = [r if r is not None else self._result(Decision(Verdict.ERROR, "internal")) for r in results]
        if self._judge is not None:
            self._ask_judge(samples, final)
        return final

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- internals ---------------------------------------------------------------------------------

    def _result(self, decision: Decision) -> RewardResult:
        reward = self.options.correct_reward if decision.verdict == Verdict.CORRECT else self.options.incorrect_reward
        details = dict(decision.details)
        details["method"] = decision.method
        return RewardResult(reward=reward, verdict=decision.verdict, details=details)

    def _error(self, message: str) -> RewardResult:
        return RewardResult(self.options.incorrect_reward, Verdict.ERROR, {"error": message, "method": "error"})

    def _prepare_sample(self, sample: Any) -> RewardResult | list[SymbolicTask]:
        """A final result, or the symbolic tasks (one per accepted gold answer) still to run."""
        try:
            if not isinstance(sample, Sample):
                raise TypeError(f"expected a Sample, got {type(sample).__name__}")
            if not isinstance(sample.response, str):
                raise TypeError(f"sample 'response' must be a string, got {type(sample.response).__name__}")
            options = self.options
            metadata = sample.metadata if isinstance(sample.metadata, dict) else {}
            if SAMPLE_OPTIONS_KEY in metadata:
                options = merge_sample_options(self.options, metadata[SAMPLE_OPTIONS_KEY])
            golds = gold_text(sample.ground_truth)
        except (TypeError, ValueError, OptionsError) as exc:
            return self._error(str(exc))
        tasks: list[SymbolicTask] = []
        last: Decision | None = None
        try:
            for gold in golds:
                prepared = prepare(sample.response, gold, options)
                if isinstance(prepared, SymbolicTask):
                    tasks.append(prepared)
                    continue
                if prepared.verdict == Verdict.CORRECT:
                    return self._result(prepared)
                last = prepared
        except RecursionError:
            return self._error("answer nested too deeply to analyse")
        except Exception as exc:  # a verifier bug must cost one sample, not the batch
            return self._error(f"internal error while checking this sample: {type(exc).__name__}: {exc}")
        if tasks:
            return tasks
        assert last is not None
        return self._result(last)

    def _ask_judge(self, samples: Sequence[Sample], results: list[RewardResult]) -> None:
        """Ask the judge model about every answer the rules rejected; a "yes" makes it correct, with
        ``method`` ``"judge"`` and the rules' own method kept in ``details["judge"]["rules_method"]``."""
        assert self._judge is not None
        asked: list[int] = []
        queries: list[JudgeQuery] = []
        for index, result in enumerate(results):
            extracted = result.details.get("extracted")
            if result.verdict != Verdict.INCORRECT or result.details.get("method") == "choice" or not extracted:
                continue
            sample = samples[index]
            queries.append(JudgeQuery(sample.prompt, str(result.details.get("gold", "")), str(extracted)))
            asked.append(index)
        if not queries:
            return
        replies = self._judge.ask(queries)
        self.judge_metrics["asked"] += len(queries)
        for index, reply in zip(asked, replies, strict=True):
            result = results[index]
            record: dict[str, Any] = {"rules_method": result.details.get("method"), "cached": reply.cached}
            if reply.equal is None:
                self.judge_metrics["failed"] += 1
                record["error"] = reply.error
            else:
                record["reply"] = "yes" if reply.equal else "no"
            self.judge_metrics["cached"] += int(reply.cached)
            result.details["judge"] = record
            if reply.equal:
                self.judge_metrics["flipped"] += 1
                result.reward = self.options.correct_reward
                result.verdict = Verdict.CORRECT
                result.details["method"] = "judge"

    def _get_pool(self) -> WorkerPool:
        with self._pool_lock:
            if self._pool is None:
                workers = self.options.workers or max(1, min(4, os.cpu_count() or 1))
                memory = self.options.worker_memory_mb
                self._pool = WorkerPool(
                    size=workers,
                    initializer=warm_up_worker,
                    memory_limit_bytes=memory * 1024 * 1024 if memory else None,
                )
            return self._pool

    def _run_symbolic(self, pending: list[tuple[int, list[SymbolicTask]]], results: list[RewardResult | None]) -> None:
        calls = [(decide_symbolic, (task,)) for _, tasks in pending for task in tasks]
        outcomes = iter(self._get_pool().run_many(calls, timeout=self.options.timeout))
        for index, tasks in pending:
            sample_outcomes = [(task, next(outcomes)) for task in tasks]
            results[index] = self._combine(sample_outcomes)

    def _combine(self, outcomes: list[tuple[SymbolicTask, TaskOutcome]]) -> RewardResult:
        """One result from the checks of every accepted gold answer: any match is correct."""
        worst: RewardResult | None = None
        for task, outcome in outcomes:
            if outcome.ok:
                equal, method = outcome.value
                decision = Decision(Verdict.CORRECT if equal else Verdict.INCORRECT, method, task.details)
                result = self._result(decision)
                if equal:
                    return result
            elif outcome.status == "timeout":
                result = self._result(Decision(Verdict.TIMEOUT, "timeout", task.details))
                result.details["error"] = f"symbolic check exceeded {self.options.timeout:g} s"
            else:
                result = self._result(Decision(Verdict.ERROR, "worker_" + outcome.status, task.details))
                result.details["error"] = outcome.error
            if worst is None or worst.verdict == Verdict.INCORRECT:
                worst = result
        assert worst is not None
        return worst
