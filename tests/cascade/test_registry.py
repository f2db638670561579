"""The teacher registry: recording, the built-in rule and the plugin override."""

from __future__ import annotations

import pluggy
import pytest

from cascade_plugins import hookimpl, hookspecs
from cascade_plugins.cascade.registry import RegistryError, TeacherRegistry, entries_from_result
from cascade_plugins.config.schema import RegistryConfig
from cascade_plugins.interfaces import CheckpointRef, StageResult


def _result(stage: str, scores: dict[str, float], evaluations: list[dict] | None = None) -> StageResult:
    return StageResult(stage=stage, checkpoint=CheckpointRef(f"/ck/{stage}/final", stage=stage, step=10),
                       validation=scores, evaluations=evaluations or [])


def _hook(*plugins: object) -> object:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    for plugin in plugins:
        pm.register(plugin)
    return pm.hook


def test_entries_keep_intermediate_checkpoints_and_skip_unsaved_ones():
    result = _result("rl", {"math": 0.5}, [
        {"step": 5, "scores": {"math": 0.7}, "checkpoint": {"path": "/ck/rl/step5"}},
        {"step": 8, "scores": {"math": 0.9}},  # evaluated but not kept: cannot be a teacher
        {"step": 10, "scores": {"math": 0.5}, "checkpoint": {"path": "/ck/rl/final"}},  # the final one
    ])
    entries = entries_from_result(result)["math"]
    assert [(e["step"], e["score"], e["checkpoint"]["path"]) for e in entries] == [
        (5, 0.7, "/ck/rl/step5"), (10, 0.5, "/ck/rl/final")
    ]


def test_builtin_rule_by_direction_ties_to_the_earlier_and_nan_ignored():
    registry = TeacherRegistry(RegistryConfig(directions={"loss_domain": "min"}))
    registry.record(_result("a", {"math": 0.5, "loss_domain": 2.0}))
    registry.record(_result("b", {"math": 0.5, "loss_domain": 1.0}))
    registry.record(_result("c", {"math": float("nan"), "loss_domain": 3.0}))
    assert registry.select("math")["stage"] == "a"
    assert registry.select("loss_domain")["stage"] == "b"
    assert registry.select("math")["rule"] == "best (max score)"
    with pytest.raises(RegistryError, match="no validated checkpoint for domain 'code'"):
        registry.select("code")


class _Pick:
    def __init__(self, answer):
        self.answer = answer
        self.seen = None

    @hookimpl
    def cascade_select_teacher(self, domain, candidates, metric, direction):
        self.seen = (domain, [c["stage"] for c in candidates], metric, direction)
        return self.answer(candidates)


def test_first_plugin_answer_wins_none_falls_through():
    registry = TeacherRegistry(RegistryConfig(metric="accuracy"))
    registry.record(_result("a", {"math": 0.9}))
    registry.record(_result("b", {"math": 0.1}))
    abstain, pick_last = _Pick(lambda c: None), _Pick(lambda c: c[-1])
    chosen = registry.select("math", _hook(pick_last, abstain))
    assert (chosen["stage"], chosen["rule"]) == ("b", "plugin")
    assert abstain.seen == ("math", ["a", "b"], "accuracy", "max")
    assert registry.select("math", _hook(abstain))["stage"] == "a"


def test_plugin_returning_garbage_is_an_error():
    registry = TeacherRegistry(RegistryConfig())
    registry.record(_result("a", {"math": 0.9}))
    with pytest.raises(RegistryError, match="expected one of the candidate entries"):
        registry.select("math", _hook(_Pick(lambda c: {"stage": "a"})))


def test_registry_round_trips_through_its_dict():
    registry = TeacherRegistry(RegistryConfig())
    registry.record(_result("a", {"math": 0.9}))
    again = TeacherRegistry(RegistryConfig(), registry.to_dict())
    assert again.select("math") == registry.select("math")
