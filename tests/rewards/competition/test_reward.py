"""The ``competition`` reward: contract, extraction, reward values, and ``cascade score``."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade_plugins.cli import cli
from cascade_plugins.interfaces import Reward, Sample
from cascade_plugins.plugins import load_plugins
from cascade_plugins.rewards.competition.extract import extract_code
from cascade_plugins.rewards.competition.reward import CompetitionReward
from cascade_plugins.testing import check_reward

PROBLEMS = Path(__file__).parent / "problems"


def _response(path: Path, fence: str | None = None, thinking: str = "<think>\nplan: read, add\n</think>\n") -> str:
    language = fence if fence is not None else {".py": "python", ".cpp": "cpp"}[path.suffix]
    return f"{thinking}Here is my solution.\n```{language}\n{path.read_text()}```\n"


SUM_AC = PROBLEMS / "sum/submissions/accepted/sum.py"
SUM_WA = PROBLEMS / "sum/submissions/wrong_answer/difference.py"
NAIVE = PROBLEMS / "divisors/submissions/partial/naive.cpp"
DIVISORS_AC = PROBLEMS / "divisors/submissions/accepted/divisors.cpp"


@pytest.fixture(scope="module")
def reward() -> CompetitionReward:
    instance = CompetitionReward()
    yield instance  # type: ignore[misc]
    instance.close()


def test_registered_as_a_builtin_plugin() -> None:
    registry = load_plugins(["competition"])
    made = registry.make_reward("competition", language="cpp")
    assert isinstance(made, Reward) and made.name == "competition" and made.reward_range == (0.0, 1.0)


def test_reward_contract() -> None:
    samples = [
        Sample(response=_response(SUM_AC), problem=str(PROBLEMS / "sum")),
        Sample(response=_response(SUM_WA), problem={"path": str(PROBLEMS / "sum")}),
        Sample(response="no code at all", problem=str(PROBLEMS / "sum")),
    ]
    malformed = [
        Sample(response=_response(SUM_AC), problem=None),
        Sample(response=_response(SUM_AC), problem=42),
        Sample(response=_response(SUM_AC), problem={"name": "sum"}),
        Sample(response=_response(SUM_AC), problem=str(PROBLEMS / "does-not-exist")),
        Sample(response=_response(SUM_AC), problem=str(PROBLEMS / "sum" / "data")),  # no problem.yaml
    ]
    report = check_reward(CompetitionReward, samples, malformed=malformed)
    assert [(r.reward, r.verdict) for r in report.results] == [(1.0, "correct"), (0.0, "incorrect"), (0.0, "no_answer")]


def test_scoring_problem_reward_is_the_normalized_score(reward: CompetitionReward) -> None:
    sample = Sample(response=_response(NAIVE), problem=str(PROBLEMS / "divisors"))
    (result,) = reward.score([sample])
    assert (result.reward, result.verdict) == (pytest.approx(0.3), "partial")
    assert result.details["judge_verdict"] == "TLE"
    assert [(g["name"], g["score"], g["max_score"]) for g in result.details["groups"]] == [
        ("small", 30, 30),
        ("large", 0, 70),
    ]
    assert result.details["language"] == "cpp"
    json.dumps(result.details)  # details must be JSON-serialisable


def test_pass_fail_option_makes_scoring_all_or_nothing() -> None:
    strict = CompetitionReward(pass_fail=True)
    try:
        partial, full = strict.score(
            [
                Sample(response=_response(NAIVE), problem=str(PROBLEMS / "divisors")),
                Sample(response=_response(DIVISORS_AC), problem=str(PROBLEMS / "divisors")),
            ]
        )
    finally:
        strict.close()
    assert (partial.reward, full.reward) == (0.0, 1.0)


def test_relative_problem_paths_and_language_option(tmp_path: Path) -> None:
    instance = CompetitionReward(problems_dir=PROBLEMS, language="python")
    try:
        (result,) = instance.score([Sample(response=_response(SUM_AC, fence=""), problem="sum")])
    finally:
        instance.close()
    assert (result.reward, result.verdict) == (1.0, "correct")


def test_unsupported_fence_language_is_no_answer(reward: CompetitionReward) -> None:
    (result,) = reward.score([Sample(response="```java\nclass A {}\n```", problem=str(PROBLEMS / "sum"))])
    assert (result.reward, result.verdict) == (0.0, "no_answer")
    assert "java" in result.details["reason"]


def test_a_language_the_problem_does_not_take_is_no_answer(reward: CompetitionReward, tmp_path: Path) -> None:
    root = tmp_path / "sum"
    shutil.copytree(PROBLEMS / "sum", root)
    (root / "problem.yaml").write_text("name: Sum\nlanguages: [cpp]\nlimits: {time_limit: 1}\n")
    (result,) = reward.score([Sample(response=_response(SUM_AC), problem=str(root))])
    assert (result.reward, result.verdict) == (0.0, "no_answer")
    assert "not allowed by problem.yaml languages (cpp)" in result.details["reason"]


def test_a_memory_limit_kill_is_a_run_time_error_with_its_cause(reward: CompetitionReward) -> None:
    hog = PROBLEMS / "sum/submissions/memory_limit_exceeded/hog.py"
    (result,) = reward.score([Sample(response=_response(hog), problem=str(PROBLEMS / "sum"))])
    assert (result.reward, result.verdict, result.details["judge_verdict"]) == (0.0, "runtime_error", "RE")
    assert result.details["tests"][0]["cause"] == "MLE"


def test_compile_error_is_a_verdict(reward: CompetitionReward) -> None:
    typo = PROBLEMS / "sum/submissions/compile_error/typo.cpp"
    (result,) = reward.score([Sample(response=_response(typo), problem=str(PROBLEMS / "sum"))])
    assert (result.reward, result.verdict, result.details["judge_verdict"]) == (0.0, "compile_error", "CE")
    assert "error" in result.details["compile_message"]


def test_judge_failure_is_an_error_not_a_zero_for_the_policy(reward: CompetitionReward, tmp_path: Path) -> None:
    root = tmp_path / "split"
    shutil.copytree(PROBLEMS / "split", root)
    source = root / "output_validators" / "split_validator" / "validate.cpp"
    source.write_text("int main() { return 7; }\n")
    (result,) = reward.score([Sample(response="```python\nprint(1, 2)\n```", problem=str(root))])
    assert (result.reward, result.verdict) == (0.0, "error")
    assert result.details["verdict"] == "JE"


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="unsupported language 'java'"):
        CompetitionReward(language="java")
    with pytest.raises(ValueError, match="isolation"):
        CompetitionReward(isolation="strict")


def test_pickles_without_its_workers(reward: CompetitionReward) -> None:
    reward.score([Sample(response=_response(SUM_AC), problem=str(PROBLEMS / "sum"))])
    clone = pickle.loads(pickle.dumps(reward))
    assert clone._judge is None and clone.language == reward.language


# -- extraction ------------------------------------------------------------------------------------


def test_extracts_the_last_block_after_thinking() -> None:
    response = (
        "<think>\n```python\nprint('draft')\n```\n</think>\n```cpp\nint main(){}\n```\ntext\n```py\nprint(2)\n```"
    )
    extracted = extract_code(response)
    assert extracted is not None
    assert (extracted.code, extracted.language) == ("print(2)\n", "python")


def test_unfinished_thinking_has_no_answer() -> None:
    assert extract_code("<think>\n```python\nprint(1)\n```\n") is None
    assert extract_code("no fences here") is None


@pytest.mark.parametrize(
    ("fence", "default", "language"),
    [("C++", None, "cpp"), ("c++17", None, "cpp"), ("python3", None, "python"), ("rust", "cpp", None)],
)
def test_fence_languages(fence: str, default: str | None, language: str | None) -> None:
    extracted = extract_code(f"```{fence}\ncode\n```", default)
    assert extracted is not None and extracted.language == language


@pytest.mark.parametrize(
    ("fence", "default", "standard", "judged_as"),
    [("c++20", None, "gnu++20", "gnu++20"), ("cpp17", None, "gnu++17", "gnu++17"),
     ("gnu++23", None, "gnu++23", "gnu++23"), ("cpp", None, None, "cpp"), ("", "c++20", "gnu++20", "gnu++20"),
     ("", "cpp", None, "cpp"), ("python", "c++20", None, "python")],
)  # fmt: skip
def test_fences_naming_a_cxx_dialect_keep_its_standard(
    fence: str, default: str | None, standard: str | None, judged_as: str
) -> None:
    extracted = extract_code(f"```{fence}\n#include <cstdio>\n```", default)
    assert extracted is not None and extracted.standard == standard
    assert extracted.judge_language == judged_as


def test_a_cxx20_fence_is_judged_as_cxx20(reward: CompetitionReward) -> None:
    source = (
        "#include <iostream>\nconsteval long long twice(long long x) { return 2 * x; }\n"
        "int main() { long long a, b; std::cin >> a >> b; std::cout << a + b + twice(0) << '\\n'; }\n"
    )
    problem = str(PROBLEMS / "sum")
    cxx20, default = reward.score([Sample(response=f"```c++20\n{source}```", problem=problem),
                                   Sample(response=f"```cpp\n{source}```", problem=problem)])  # fmt: skip
    assert (cxx20.reward, cxx20.verdict, cxx20.details["standard"]) == (1.0, "correct", "gnu++20")
    assert (default.reward, default.verdict, default.details["judge_verdict"]) == (0.0, "compile_error", "CE")
    assert "standard" not in default.details


def test_unlabelled_fence_uses_the_option_or_a_guess() -> None:
    assert extract_code("```\nprint(1)\n```", "cpp").language == "cpp"  # type: ignore[union-attr]
    assert extract_code("```\n#include <cstdio>\nint main(){}\n```").language == "cpp"  # type: ignore[union-attr]
    assert extract_code("```\nprint(1)\n```").language == "python"  # type: ignore[union-attr]


# -- cascade score ---------------------------------------------------------------------------------


def test_cascade_score_with_problem_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASCADE_PLUGINS", "competition")
    rows = [
        {"response": _response(SUM_AC), "problem": str(PROBLEMS / "sum")},
        {"response": _response(SUM_WA), "problem": str(PROBLEMS / "sum")},
        {"response": _response(SUM_AC), "problem": str(tmp_path / "missing")},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    target = tmp_path / "out.jsonl"
    result = CliRunner().invoke(
        cli, ["score", "--reward", "competition", "--input", str(source), "--output", str(target), "--keep-going"]
    )
    assert result.exit_code == 0, result.output  # the missing problem is an error row, kept
    scored = [json.loads(line) for line in target.read_text().splitlines()]
    assert [(r["reward"], r["verdict"]) for r in scored] == [(1.0, "correct"), (0.0, "incorrect"), (0.0, "error")]
