"""``Backend.check`` finds bad stages before any compute, naming the key."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from cascade_plugins import hookimpl, hookspecs
from cascade_plugins.backends.local import lr_at, parse_hparams
from cascade_plugins.backends.local import plugin as local_plugin
from cascade_plugins.backends.local.config import SFTHparams
from cascade_plugins.interfaces import CheckpointRef, LossInput, RewardSpec, StageProblem, StageSpec
from cascade_plugins.plugins import PluginRegistry, load_plugins


def keys(problems: list[StageProblem]) -> list[tuple[str | int, ...]]:
    return [p.key for p in problems]


def test_valid_stages_have_no_problems(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    for kind in ("sft", "grpo"):
        assert backend.check(make_spec(kind)) == []


@pytest.mark.parametrize(
    ("hparams", "key", "hint"),
    [
        ({"lr": -1.0}, ("hparams", "lr"), None),
        ({"learning_rate": 1e-3}, ("hparams", "learning_rate"), None),
        ({"lrr": 1e-3}, ("hparams", "lrr"), "did you mean 'lr'?"),
        ({"warmup_steps": -1}, ("hparams", "warmup_steps"), None),
        ({"samples_per_prompt": 1}, ("hparams", "samples_per_prompt"), None),
        ({"overlong": "truncate"}, ("hparams", "overlong"), None),
        ({"domain_weights": {"nope": 1.0}}, ("hparams", "domain_weights"), None),
        ({"betas": [0.9, 1.5]}, ("hparams",), None),  # a check across keys: the section
    ],
)
def test_bad_grpo_hparams_are_rejected_at_their_key(
    backend: Any, make_spec: Callable[..., StageSpec], hparams: dict[str, Any], key: tuple, hint: str | None
) -> None:
    problems = backend.check(make_spec("grpo", hparams=hparams))
    assert keys(problems) == [key], problems
    assert problems[0].stage == "grpo" and problems[0].is_error and problems[0].hint == hint


def test_kind_specific_keys_are_refused_elsewhere(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    problems = backend.check(make_spec("sft", hparams={"samples_per_prompt": 4}))
    assert keys(problems) == [("hparams", "samples_per_prompt")]


def test_missing_rewards_teachers_and_unknown_names(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    assert keys(backend.check(make_spec("grpo", rewards={}))) == [("rewards",)]
    assert keys(backend.check(make_spec("mopd"))) == [("teachers",)]
    unknown = backend.check(make_spec("grpo", rewards={"letters": RewardSpec("exact_answr")}))
    assert keys(unknown) == [("rewards", "letters")]
    bad_eval = backend.check(make_spec("sft", eval={"letters": ("x.jsonl", RewardSpec("starts_with", {"x": 1}))}))
    assert keys(bad_eval) == [("eval", "letters", "reward")]


def test_bad_model_and_paths(backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Any) -> None:
    assert keys(backend.check(make_spec("sft", model={"hidden_size": 10, "num_attention_heads": 4}))) == [("model",)]
    assert keys(backend.check(make_spec("sft", model={"hidden_sise": 10}))) == [("model", "hidden_sise")]
    assert keys(backend.check(make_spec("grpo", init=CheckpointRef(str(tmp_path / "missing"))))) == [("init",)]
    # a checkpoint a previous stage will produce is not required to exist yet
    assert backend.check(make_spec("grpo", init=CheckpointRef(str(tmp_path / "later"), stage="sft"))) == []


def _mopd(make_spec: Callable[..., StageSpec], loss: RewardSpec | None, **overrides: Any) -> StageSpec:
    return make_spec("mopd", teachers={"letters": CheckpointRef("/x", stage="sft")}, loss=loss, **overrides)


def test_the_loss_is_resolved_by_name_and_refused_when_the_host_cannot_feed_it(
    backend: Any, make_spec: Callable[..., StageSpec]
) -> None:
    assert backend.check(_mopd(make_spec, None)) == []  # the default 'mopd' loss
    assert backend.check(_mopd(make_spec, RewardSpec("mopd", {"importance_sampling": "none"}))) == []
    # top-k distillation needs the teacher's top-k tokens; the host computes sampled-token log-probs
    (topk,) = backend.check(_mopd(make_spec, RewardSpec("mopd_topk")))
    assert topk.key == ("loss",) and LossInput.TEACHER_TOPK in topk.message and topk.hint == "use the 'mopd' loss"
    # MiMo's outcome mixing needs outcome advantages, which the host's MOPD step does not compute
    (mixed,) = backend.check(_mopd(make_spec, RewardSpec("mopd", {"outcome_weight": 0.5})))
    assert mixed.key == ("loss",) and LossInput.OUTCOME_ADVANTAGES in mixed.message
    (unknown,) = backend.check(_mopd(make_spec, RewardSpec("mopdd")))
    assert unknown.key == ("loss",) and "did you mean 'mopd'" in unknown.message
    (options,) = backend.check(_mopd(make_spec, RewardSpec("mopd", {"normalisation": "token"})))
    assert options.key == ("loss",)
    # sft and grpo stages train with their own objective: a loss there would be ignored
    assert keys(backend.check(make_spec("grpo", loss=RewardSpec("mopd")))) == [("loss",)]


def test_a_loss_that_declares_no_inputs_is_refused(make_spec: Callable[..., StageSpec]) -> None:
    class Opaque:
        name = "opaque"

        def __init__(self, **options: Any) -> None:
            pass

    class Losses:
        @hookimpl
        def register_losses(self, register: Callable[..., None]) -> None:
            register(Opaque)

    backend = _registry_with(Losses(), "losses").make_backend("local")
    (problem,) = backend.check(_mopd(make_spec, RewardSpec("opaque"), rewards={}, eval={}))
    assert problem.key == ("loss",) and problem.hint is not None and "inputs" in problem.hint


def test_a_reward_scored_inside_nemo_rl_is_refused_at_plan_time(make_spec: Callable[..., StageSpec]) -> None:
    backend = load_plugins(["local", "mopd", "nemo_rl"], use_env=False).make_backend("local")
    gym = RewardSpec("nemo_rl_env", {"env": "nemo_gym"})
    (problem,) = backend.check(make_spec("grpo", rewards={"letters": gym}, eval={}))
    assert problem.key == ("rewards", "letters") and problem.hint is not None and "'nemo_rl'" in problem.hint
    (in_eval,) = backend.check(make_spec("sft", rewards={}, eval={"letters": ("v.jsonl", gym)}))
    assert in_eval.key == ("eval", "letters", "reward")


def test_the_backend_sees_only_the_plugins_of_its_registry(make_spec: Callable[..., StageSpec]) -> None:
    """A reward registered by a plugin the registry was not loaded with does not exist for it."""
    backend = load_plugins(["local", "mopd"], use_env=False).make_backend("local")
    problems = backend.check(make_spec("grpo"))  # 'exact_answer' comes from the test plugin only
    assert keys(problems) == [("rewards", "letters"), ("eval", "letters", "reward")]
    assert all("unknown reward 'exact_answer'" in p.message for p in problems)


def _registry_with(plugin: object, name: str) -> PluginRegistry:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(local_plugin, name="local")
    pm.register(plugin, name=name)
    return PluginRegistry(pm, {})


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
