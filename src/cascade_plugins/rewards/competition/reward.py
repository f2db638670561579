"""The ``competition`` reward: judge the response's code on a problem package.

A sample's ``problem`` is the path of a problem package directory (or ``{"path": ...}``); relative
paths resolve against the ``problems_dir`` option. The solution is the last fenced code block
after ``</think>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cascade_plugins.interfaces import RewardResult, Sample, Verdict, judged_verdict
from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.extract import extract_code, normalize_language
from cascade_plugins.rewards.competition.judge import Judge, JudgeReport
from cascade_plugins.rewards.competition.languages import check_allowed, language_code
from cascade_plugins.sandbox import SandboxUnavailable


class CompetitionReward:
    """Grades like the contest: IOI-style normalized score for scoring problems, 1/0 for
    pass-fail problems (``pass_fail=True`` forces 1/0 everywhere: 1 only for a full score).

    Options: ``language`` (``cpp``/``python`` or a C++ dialect such as ``c++20``: for unlabelled
    code fences; a fence naming a dialect compiles with that standard), ``pass_fail``,
    ``problems_dir`` (base of relative problem paths), ``isolation`` and ``max_workers`` (sandbox),
    ``max_tests_in_details`` (test rows kept in ``details``).
    """

    name = "competition"
    reward_range = (0.0, 1.0)

    def __init__(
        self,
        *,
        language: str | None = None,
        pass_fail: bool | None = None,
        problems_dir: str | os.PathLike[str] | None = None,
        isolation: str = "auto",
        max_workers: int | None = None,
        max_tests_in_details: int = 50,
    ) -> None:
        if language is not None and normalize_language(language) is None:
            raise ValueError(f"competition reward: unsupported language {language!r} (use 'cpp' or 'python')")
        if isolation not in ("auto", "required", "none"):
            raise ValueError(f"competition reward: isolation must be auto, required or none, not {isolation!r}")
        # a C++ dialect (``c++20``) is kept as given: unlabelled fences compile with that standard
        self.language = language.strip().lower() if language else None
        self.pass_fail = pass_fail
        self.problems_dir = Path(problems_dir) if problems_dir is not None else None
        self.isolation = isolation
        self.max_workers = max_workers
        self.max_tests_in_details = max_tests_in_details
        self._judge: Judge | None = None

    # -- lifecycle ------------------------------------------------------------------------

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            self._judge = Judge(isolation=self.isolation, max_workers=self.max_workers)
        return self._judge

    def close(self) -> None:
        if self._judge is not None:
            self._judge.close()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_judge"] = None  # workers and caches restart lazily in the new process
        return state

    # -- scoring --------------------------------------------------------------------------

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        return [self._score_one(sample) for sample in samples]

    def _problem_path(self, problem: Any) -> Path:
        if isinstance(problem, Mapping):
            problem = problem.get("path")
        if not isinstance(problem, str | os.PathLike) or not str(problem):
            raise ValueError(
                f"sample 'problem' must be a problem package path or {{'path': ...}}, got {type(problem).__name__}"
            )
        path = Path(problem).expanduser()
        if not path.is_absolute() and self.problems_dir is not None:
            path = self.problems_dir / path
        return path

    def _score_one(self, sample: Sample) -> RewardResult:
        if not isinstance(sample.response, str):
            return RewardResult(0.0, Verdict.ERROR, {"error": "sample 'response' must be a string"})
        try:
            path = self._problem_path(sample.problem)
            package = self.judge.load(path)
        except (ValueError, OSError) as exc:  # ProblemPackageError is a ValueError
            return RewardResult(0.0, Verdict.ERROR, {"error": str(exc)})
        extracted = extract_code(sample.response, self.language)
        if extracted is None:
            return RewardResult(0.0, Verdict.NO_ANSWER, {"problem": package.name, "reason": "no code block"})
        if extracted.language is None:
            reason = f"unsupported language {extracted.fence_language!r} (supported: cpp, python)"
            return RewardResult(0.0, Verdict.NO_ANSWER, {"problem": package.name, "reason": reason})
        try:
            check_allowed(language_code(extracted.language), package.languages, "solution")
        except UnsupportedFeature as exc:  # the problem does not take this language: the policy's choice
            return RewardResult(0.0, Verdict.NO_ANSWER, {"problem": package.name, "reason": str(exc)})
        try:
            report = self.judge.judge(package, extracted.code, extracted.judge_language)
        except (ProblemPackageError, SandboxUnavailable, ValueError) as exc:
            return RewardResult(0.0, Verdict.ERROR, {"problem": package.name, "error": str(exc)})
        details = self._details(report, extracted.language)
        if extracted.standard is not None:
            details["standard"] = extracted.standard
        if report.verdict == "JE":
            # The judge failed (a checker crashed, the sandbox broke): not the policy's fault.
            return RewardResult(0.0, Verdict.ERROR, details)
        # the shared vocabulary; the format's verdict (AC, WA, ...) stays in the details
        reward, details["judge_verdict"] = self._reward(report), report.verdict
        verdict = judged_verdict(report.verdict)
        if verdict != Verdict.CORRECT and 0.0 < reward < 1.0:
            verdict = Verdict.PARTIAL
        return RewardResult(reward, verdict, details)

    def _reward(self, report: JudgeReport) -> float:
        pass_fail = self.pass_fail if self.pass_fail is not None else report.kind == "pass-fail"
        if pass_fail:
            full = report.verdict == "AC" if report.kind == "pass-fail" else report.normalized_score >= 1.0
            return 1.0 if full else 0.0
        return report.normalized_score

    def _details(self, report: JudgeReport, language: str) -> dict[str, Any]:
        details = report.to_dict()
        details["language"] = language
        details["tests"] = details["tests"][: self.max_tests_in_details]
        return details
