"""The synthetic generators: deterministic, split-disjoint, and their answers are right."""

from __future__ import annotations

import pytest

from cascade_plugins.datasets import plugin as datasets_plugin
from cascade_plugins.datasets.synthetic import (
    SPLITS,
    arithmetic,
    column_steps,
    split_of,
    string_functions,
    string_transforms,
)


@pytest.mark.parametrize("factory", [arithmetic, string_functions])
def test_rows_are_deterministic_per_seed_and_split(factory) -> None:
    assert factory(50, seed=1, split="train") == factory(50, seed=1, split="train")
    assert factory(50, seed=1, split="train") != factory(50, seed=2, split="train")


@pytest.mark.parametrize("factory", [arithmetic, string_functions])
def test_splits_share_no_problem_and_rows_are_unique(factory) -> None:
    prompts = {split: [r["prompt"] for r in factory(150, seed=0, split=split)] for split in SPLITS}
    for split, rows in prompts.items():
        assert len(set(rows)) == len(rows) == 150
        assert all(split_of(p) == split for p in rows)
    assert not set(prompts["train"]) & set(prompts["test"])
    assert not set(prompts["validation"]) & set(prompts["test"])
    assert not set(prompts["train"]) & set(prompts["validation"])


def test_arithmetic_answers_are_correct() -> None:
    rows = arithmetic(300, seed=3, split="train", max_operand=50, operations="+-*")
    assert {r["domain"] for r in rows} == {"math"}
    for row in rows:
        expression = row["prompt"].removesuffix("=")
        value = eval(expression)  # our own generated "a+b" text
        assert value >= 0
        assert row["ground_truth"] == str(value)
        assert row["answer"] == f"\\boxed{{{value}}}"


def _passes(code: str, tests: list[str]) -> bool:
    namespace: dict[str, object] = {}
    try:
        exec(code, namespace)  # our own generated one-liners
        for test in tests:
            exec(test, namespace)
    except AssertionError:
        return False
    return True


def test_string_function_answers_pass_their_tests_and_wrong_ones_fail() -> None:
    rows = string_functions(300, seed=4, split="validation")
    assert {r["domain"] for r in rows} == {"code"}
    for row in rows:
        assert len(row["tests"]) == 7
        assert row["answer"].startswith("f=lambda s:")
        assert _passes(row["answer"], row["tests"])
        assert not _passes("f=lambda s:s", row["tests"]) or row["answer"] == "f=lambda s:s"


def test_string_function_prompts_show_examples_and_hide_the_rest() -> None:
    row = string_functions(1, seed=0, shown_examples=2, hidden_tests=3)[0]
    shown = row["prompt"].split()
    assert len(shown) == 2 and all(s.startswith("f(") for s in shown)
    assert len(row["tests"]) == 5


def test_every_transform_is_used_and_distinct() -> None:
    transforms = string_transforms("abc")
    assert len({t.body for t in transforms}) == len(transforms)
    bodies = {r["answer"].removeprefix("f=lambda s:") for r in string_functions(2000, seed=0, alphabet="abcdefgh")}
    assert bodies == {t.body for t in string_transforms("abcdefgh")}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n": -1}, "n must be"),
        ({"n": 1, "split": "dev"}, "split must be one of"),
        ({"n": 1, "max_operand": 0}, "max_operand"),
        ({"n": 1, "operations": "/"}, "operations"),
        ({"n": 100, "max_operand": 1}, "could not draw 100 distinct train problems"),
    ],
)
def test_arithmetic_rejects_bad_arguments(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        arithmetic(**kwargs)


def test_string_functions_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="alphabet"):
        string_functions(1, alphabet="A")
    with pytest.raises(ValueError, match="min_length"):
        string_functions(1, min_length=4, max_length=3)


def test_generators_are_registered_as_datasets() -> None:
    registered = []
    datasets_plugin.register_datasets(register=lambda factory, name=None: registered.append(name or factory.name))
    assert registered == ["arithmetic", "string_functions"]


def test_answers_score_full_marks_with_the_real_rewards_and_wrong_ones_do_not() -> None:
    from cascade_plugins.interfaces import Sample
    from cascade_plugins.plugins import get_registry

    registry = get_registry()
    cases = [
        ("math", {}, arithmetic(12, seed=5, split="test"), "\\boxed{-1}"),
        ("code", {"require_fence": False}, string_functions(12, seed=5, split="test"), "f=lambda s:s+'zz'"),
    ]
    for reward_name, options, rows, wrong in cases:
        reward = registry.make_reward(reward_name, **options)
        try:

            def samples(response_of, rows=rows):
                return [
                    Sample(
                        response=response_of(r),
                        prompt=r["prompt"],
                        ground_truth=r.get("ground_truth"),
                        tests=r.get("tests"),
                    )
                    for r in rows
                ]

            right = reward.score(samples(lambda r: r["answer"]))
            bad = reward.score(samples(lambda r, wrong=wrong: wrong))
        finally:
            reward.close()
        assert [r.reward for r in right] == [1.0] * len(rows), [r.details for r in right if r.reward != 1.0]
        assert [r.reward for r in bad] == [0.0] * len(rows)


def test_column_steps_are_true_equations_that_lead_to_the_result() -> None:
    from cascade_plugins.datasets.synthetic import column_steps

    for a in range(100):
        for b in range(100):
            for op in "+-":
                if op == "-" and a < b:
                    continue
                steps = column_steps(a, b, op).rstrip(",").split(",")
                assert len(steps) == 2
                for equation in steps:
                    left, right = equation.split("=")
                    assert eval(left) == int(right), (a, op, b, equation)
                ones = int(steps[0].split("=")[1]) % 10
                tens = int(steps[1].split("=")[1])
                assert tens * 10 + ones == (a + b if op == "+" else a - b)


def test_show_work_answers_end_in_the_boxed_result() -> None:
    for row in arithmetic(50, seed=1, max_operand=49, show_work=True):
        work, boxed = row["answer"].split("\\boxed")
        assert boxed == f"{{{row['ground_truth']}}}"
        assert work.count("=") == 2
    with pytest.raises(ValueError, match="show_work"):
        arithmetic(1, operations="*", show_work=True)


@pytest.mark.parametrize(
    ("factory", "kwargs"), [(arithmetic, {"max_operand": 49}), (string_functions, {})], ids=["math", "code"]
)
def test_thinking_mode_rows_share_the_answer_and_split_by_the_asked_share(factory, kwargs) -> None:
    plain = factory(2000, seed=3, **kwargs)
    rows = factory(2000, seed=3, thinking=0.3, **kwargs)
    assert [r["prompt"] for r in rows] == [r["prompt"] for r in plain]
    thinking = 0
    for row, bare in zip(rows, plain, strict=True):
        assert row["answer"].startswith("<think>") and row["answer"].count("</think>") == 1
        work, answer = row["answer"].removeprefix("<think>").split("</think>")
        assert answer == bare["answer"]
        thinking += bool(work)
    assert abs(thinking / len(rows) - 0.3) < 0.04
    assert [r["answer"] for r in factory(50, seed=3, thinking=0.3, **kwargs)] == [r["answer"] for r in rows[:50]]
    assert all("<think></think>" in r["answer"] for r in factory(50, seed=3, thinking=0.0, **kwargs))
    assert all("<think></think>" not in r["answer"] for r in factory(50, seed=3, thinking=1.0, **kwargs))


def test_thinking_work_is_the_columns_for_math_and_the_examples_for_code() -> None:
    for row in arithmetic(100, seed=0, max_operand=49, thinking=1.0):
        a, op, b = row["prompt"][:-1].partition("+") if "+" in row["prompt"] else row["prompt"][:-1].partition("-")
        work = column_steps(int(a), int(b), op).rstrip(",")
        assert row["answer"] == f"<think>{work}</think>\\boxed{{{row['ground_truth']}}}"
    for row in string_functions(100, seed=0, thinking=1.0):
        pairs = [shown.removeprefix("f(").replace(")=", "->") for shown in row["prompt"].split()]
        assert row["answer"].startswith(f"<think>{','.join(pairs)}</think>f=lambda s:")


def test_thinking_answers_score_with_the_real_rewards_only_when_the_think_block_closes() -> None:
    from cascade_plugins.interfaces import Sample
    from cascade_plugins.plugins import get_registry

    registry = get_registry()
    cases = [
        ("math", {}, arithmetic(8, seed=2, split="test", max_operand=49, thinking=0.5)),
        ("code", {"require_fence": False}, string_functions(8, seed=2, split="test", thinking=0.5)),
    ]
    for name, options, rows in cases:
        reward = registry.make_reward(name, **options)
        try:
            def score(responses, rows=rows, reward=reward):
                return [
                    r.reward
                    for r in reward.score([
                        Sample(response=text, prompt=row["prompt"], ground_truth=row.get("ground_truth"),
                               tests=row.get("tests"))
                        for row, text in zip(rows, responses, strict=True)
                    ])
                ]

            assert score([r["answer"] for r in rows]) == [1.0] * len(rows)
            # cut inside the thinking (what the token budget does to code's long reading-back)
            assert score([r["answer"].split("</think>")[0] for r in rows]) == [0.0] * len(rows)
        finally:
            reward.close()


def test_thinking_is_checked() -> None:
    with pytest.raises(ValueError, match="thinking must be a share"):
        string_functions(1, thinking=1.5)
    with pytest.raises(ValueError, match="show_work or thinking"):
        arithmetic(1, show_work=True, thinking=0.5)
    with pytest.raises(ValueError, match="two-digit"):
        arithmetic(1, operations="*", thinking=0.5)
