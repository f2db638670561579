"""The typed seam between the cascade and its backends: problems, loss inputs, verdicts, and the
registry a backend is built with."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from cascade_plugins.interfaces import (
    JUDGE_VERDICTS,
    VERDICTS,
    LossInput,
    StageProblem,
    Verdict,
    judged_verdict,
    loss_feed_problems,
    loss_inputs,
)
from cascade_plugins.plugins import PluginError, load_plugins

SRC = Path(__file__).resolve().parents[2] / "src" / "cascade_plugins"


def test_a_stage_problem_is_keyed_by_the_stage_spec() -> None:
    problem = StageProblem("rl", "hparams.lr", "must be > 0", hint="try 1e-6")
    assert problem.key == ("hparams", "lr") and problem.is_error
    assert str(problem) == "stage 'rl': hparams.lr: must be > 0; try 1e-6"
    assert str(StageProblem("rl", ("hparams", "betas", 1), "too big")) == "stage 'rl': hparams.betas[1]: too big"
    assert StageProblem("rl", (), "whole stage", severity="note").is_error is False
    with pytest.raises(ValueError, match="must start with one of"):
        StageProblem("rl", ("hparms", "lr"), "typo in the root")
    with pytest.raises(ValueError, match="say what is wrong"):
        StageProblem("rl", ("hparams",), "")
    with pytest.raises(ValueError, match="severity"):
        StageProblem("rl", (), "x", severity="warning")  # type: ignore[arg-type]


class Declared:
    inputs = frozenset({"policy_logprobs", LossInput.TEACHER_LOGPROBS})


class Undeclared:
    pass


class Unknown:
    inputs = frozenset({"teacher_hidden_states"})


def test_losses_declare_their_inputs_and_a_backend_refuses_what_it_cannot_feed() -> None:
    assert loss_inputs(Declared()) == {LossInput.POLICY_LOGPROBS, LossInput.TEACHER_LOGPROBS}
    assert loss_inputs(Undeclared()) is None and loss_inputs(Unknown()) is None
    feeds = frozenset({LossInput.POLICY_LOGPROBS, LossInput.TEACHER_LOGPROBS})
    assert loss_feed_problems("s", "ok", Declared(), feeds, "host") == []
    (short,) = loss_feed_problems("s", "ok", Declared(), frozenset({LossInput.POLICY_LOGPROBS}), "host", "use x")
    assert (short.key, short.hint) == (("loss",), "use x") and LossInput.TEACHER_LOGPROBS in short.message
    (opaque,) = loss_feed_problems("s", "opaque", Undeclared(), feeds, "host")
    assert opaque.key == ("loss",) and "inputs" in (opaque.hint or "")


def test_the_built_in_losses_declare_what_their_options_need() -> None:
    pytest.importorskip("torch", reason="the MOPD losses are torch code")
    from cascade_plugins.losses.mopd import MOPDLoss, TopKMOPDLoss

    assert MOPDLoss().inputs == {LossInput.POLICY_LOGPROBS, LossInput.TEACHER_LOGPROBS, LossInput.INFERENCE_LOGPROBS}
    assert LossInput.INFERENCE_LOGPROBS not in MOPDLoss(importance_sampling="none").inputs
    assert LossInput.OUTCOME_ADVANTAGES in MOPDLoss(outcome_weight=0.3).inputs
    assert TopKMOPDLoss().inputs == {LossInput.TEACHER_TOPK}


def test_one_verdict_vocabulary() -> None:
    assert set(JUDGE_VERDICTS.values()) <= set(VERDICTS)
    assert judged_verdict("WA") == Verdict.INCORRECT and judged_verdict("CE") == Verdict.COMPILE_ERROR
    assert judged_verdict(Verdict.NO_ANSWER) == Verdict.NO_ANSWER  # a shared verdict passes through
    assert judged_verdict("WRONG-ISH") == Verdict.ERROR


def test_a_backend_is_built_with_the_registry_that_made_it() -> None:
    registry = load_plugins(["nemo_rl"], use_env=False)
    backend: Any = registry.make_backend("nemo_rl", nemo_rl_root="/nowhere", mode="emit")
    assert backend.registry is registry and registry.allowed == {"nemo_rl"}
    with pytest.raises(PluginError, match="'registry' is not an option"):
        registry.make_backend("nemo_rl", registry=registry)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_nemo_rl_compat_depends_on_nothing_of_the_backend() -> None:
    """``registration`` uses ``compat``; ``compat`` (the version layer) uses nothing of ours back."""
    compat = _imports(SRC / "backends" / "nemo_rl" / "compat.py")
    assert not {name for name in compat if name.startswith("cascade_plugins")}
    assert "cascade_plugins.backends.nemo_rl.compat" in _imports(SRC / "backends" / "nemo_rl" / "registration.py")
