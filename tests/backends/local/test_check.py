"""``Backend.check`` finds bad stages before any compute, naming the key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cascade_plugins.backends.local import lr_at, parse_hparams
from cascade_plugins.backends.local.config import SFTHparams
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec


def test_valid_stages_have_no_problems(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    for kind in ("sft", "grpo"):
        assert backend.check(make_spec(kind)) == []


@pytest.mark.parametrize(
    ("hparams", "expected"),
    [
        ({"lr": -1.0}, "hparams.lr"),
        ({"learning_rate": 1e-3}, "hparams.learning_rate: unknown key 'learning_rate'"),
        ({"lrr": 1e-3}, "hparams.lrr: unknown key 'lrr'; did you mean 'lr'?"),
        ({"warmup_steps": -1}, "hparams.warmup_steps"),
        ({"samples_per_prompt": 1}, "hparams.samples_per_prompt"),
        ({"overlong": "truncate"}, "hparams.overlong"),
        ({"domain_weights": {"nope": 1.0}}, "domain_weights names domains without data: nope"),
        ({"betas": [0.9, 1.5]}, "betas"),
    ],
)
def test_bad_grpo_hparams_are_rejected(
    backend: Any, make_spec: Callable[..., StageSpec], hparams: dict[str, Any], expected: str
) -> None:
    problems = backend.check(make_spec("grpo", hparams=hparams))
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("stage 'grpo'") for p in problems)


def test_kind_specific_keys_are_refused_elsewhere(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    problems = backend.check(make_spec("sft", hparams={"samples_per_prompt": 4}))
    assert any("hparams.samples_per_prompt: unknown key 'samples_per_prompt'" in p for p in problems)


def test_missing_rewards_teachers_and_unknown_names(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    assert any("none for letters" in p for p in backend.check(make_spec("grpo", rewards={})))
    assert any("teacher for every data domain" in p for p in backend.check(make_spec("mopd")))
    unknown = backend.check(make_spec("grpo", rewards={"letters": RewardSpec("exact_answr")}))
    assert any("rewards.letters" in p and "did you mean 'exact_answer'" in p for p in unknown)
    topk = make_spec(
        "mopd",
        teachers={"letters": CheckpointRef("/x", stage="sft")},
        loss=RewardSpec("mopd_topk"),
    )
    assert any("use the 'mopd' loss" in p for p in backend.check(topk))


def test_bad_model_and_paths(backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Any) -> None:
    problems = backend.check(make_spec("sft", model={"hidden_size": 10, "num_attention_heads": 4}))
    assert any("model" in p and "divisible" in p for p in problems)
    problems = backend.check(make_spec("sft", model={"hidden_sise": 10}))
    assert any("model.hidden_sise" in p for p in problems)
    problems = backend.check(make_spec("grpo", init=CheckpointRef(str(tmp_path / "missing"))))
    assert any("is not a Hugging Face checkpoint directory" in p for p in problems)
    # a checkpoint a previous stage will produce is not required to exist yet
    assert backend.check(make_spec("grpo", init=CheckpointRef(str(tmp_path / "later"), stage="sft"))) == []


def test_run_stage_refuses_a_bad_spec_before_compute(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    spec = make_spec("sft", hparams={"steps": 0})
    with pytest.raises(ValueError, match=r"hparams\.steps"):
        backend.run_stage(spec, None)


def test_parse_hparams_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="not 'ppo'"):
        parse_hparams("ppo", {"steps": 1, "lr": 1.0})


def test_learning_rate_schedule() -> None:
    hp = SFTHparams(steps=10, lr=1.0, warmup_steps=2, lr_schedule="cosine", min_lr_ratio=0.1)
    assert lr_at(1, hp) == pytest.approx(0.55)
    assert lr_at(2, hp) == pytest.approx(1.0)
    assert lr_at(10, hp) == pytest.approx(0.1)
    rates = [lr_at(s, hp) for s in range(2, 11)]
    assert rates == sorted(rates, reverse=True)
    short = SFTHparams(steps=2, lr=1.0, warmup_steps=4, min_lr_ratio=0.0)
    assert [lr_at(s, short) for s in (1, 2)] == pytest.approx([0.25, 0.5])
    linear = SFTHparams(steps=4, lr=1.0, lr_schedule="linear", min_lr_ratio=0.0)
    assert [lr_at(s, linear) for s in range(1, 5)] == pytest.approx([0.75, 0.5, 0.25, 0.0])
