"""A backend's problems are keyed by the StageSpec; ``cascade plan`` shows each at the YAML line
that set that value (the stage, ``hparams.<kind>``, ``hparams.common``, the domain's reward, the
default loss, a backend option), never by reading the message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.resolve import check_plan
from cascade_plugins.cli import cli
from cascade_plugins.config import ConfigError
from cascade_plugins.interfaces import StageProblem, StageSpec
from cascade_plugins.plugins import PluginRegistry

MESSAGE = "not something this backend can run"  # the same text for every key: only keys tell them apart


class ProbeBackend:
    """Refuses the StageSpec keys listed in its ``refuse`` option (dotted), on every stage that has
    them, and notes each stage once."""

    name = "probe"

    def __init__(self, registry: Any, refuse: list[str], flavour: str = "plain"):
        self.refuse = refuse

    def check(self, spec: StageSpec) -> list[StageProblem]:
        problems = [StageProblem(spec.name, (), f"{spec.kind} stage", severity="note")]
        for dotted in self.refuse:
            root, _, rest = dotted.partition(".")
            present = {
                "rewards": rest in spec.rewards, "eval": rest.split(".")[0] in spec.eval,
                "loss": spec.kind == "mopd", "hparams": True, "backend": True, "teachers": rest in spec.teachers,
            }[root]
            if present:
                problems.append(StageProblem(spec.name, dotted, MESSAGE, hint="change it"))
        return problems

    def run_stage(self, spec: StageSpec, reporter: Any) -> Any:
        raise NotImplementedError


@pytest.fixture
def registry(ledger_registry: PluginRegistry) -> PluginRegistry:
    ledger_registry._register("backend", "probe", ProbeBackend)
    return ledger_registry


def _config(kit: Any, refuse: list[str], **changes: Any) -> dict[str, Any]:
    config = kit.config(backend={"name": "probe", "options": {"refuse": refuse, "flavour": "x"}}, **changes)
    config["stages"][1]["rewards"] = {"math": "nonempty"}  # math_rl sets its own reward
    return config


def _problems(tmp_path: Path, kit: Any, registry: PluginRegistry, config: dict[str, Any]):
    path = kit.write(tmp_path / "cascade.yaml", config)
    loaded_config, loaded = load_cascade_config(path)
    with pytest.raises(ConfigError) as info:
        check_plan(loaded_config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)
    lines = path.read_text().splitlines()
    return {p.key_path: (p.message, lines[p.line - 1].strip()) for p in info.value.problems}


def test_each_key_is_shown_where_the_yaml_set_it(tmp_path: Path, kit: Any, registry: PluginRegistry) -> None:
    config = _config(kit, ["rewards.math", "rewards.code", "eval.code.reward", "loss", "backend.flavour",
                           "hparams.steps", "teachers.math"])
    config["stages"][2]["hparams"]["steps"] = 5  # code_rl sets its own; the others inherit hparams.common
    config["eval"]["sets"]["code"]["reward"] = "nonempty"
    found = _problems(tmp_path, kit, registry, config)
    assert set(found) == {
        "stages[1].rewards.math",   # math_rl's own reward
        "domains.math",             # the others score math with the domain's reward (``math: nonempty``)
        "domains.code",
        "eval.sets.code.reward",
        "stages[3].loss",
        "backend.options.flavour",
        "stages[2].hparams.steps",
        "hparams.common.steps",
        "stages[3].teachers.math",
    }
    assert found["stages[1].rewards.math"][1] == "math: nonempty"
    assert found["backend.options.flavour"][1].startswith("flavour")
    assert found["stages[3].loss"][1].startswith("loss")
    # one line inherited by several stages is one problem naming them
    who = "stages 'sft', 'math_rl', 'mopd'"
    assert found["hparams.common.steps"][0] == f"backend 'probe' ({who}): {MESSAGE}; change it"
    assert found["domains.math"][0].startswith("backend 'probe' (stages 'sft', 'mopd'):")


def test_a_mopd_stage_without_a_loss_is_refused_at_its_kind(tmp_path: Path, kit: Any,
                                                            registry: PluginRegistry) -> None:
    config = _config(kit, ["loss"])
    del config["stages"][3]["loss"]
    registry._register("loss", "mopd", type("Default", (), {"name": "mopd", "__init__": lambda self, **o: None}))
    found = _problems(tmp_path, kit, registry, config)
    assert list(found) == ["stages[3].kind"] and found["stages[3].kind"][1] == "kind: mopd"


def test_notes_come_with_the_plan(tmp_path: Path, kit: Any, registry: PluginRegistry) -> None:
    path = kit.write(tmp_path / "cascade.yaml", _config(kit, []))
    loaded_config, loaded = load_cascade_config(path)
    plan = check_plan(loaded_config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)
    assert [(n.stages, n.key_path, n.message) for n in plan.notes] == [
        (("sft",), "stages[0]", "sft stage"), (("math_rl", "code_rl"), "backend", "grpo stage"),
        (("mopd",), "stages[3]", "mopd stage"),
    ]
    assert plan.notes[0].line is not None and plan.notes[0].file == str(path)


def test_cascade_plan_prints_notes_and_gives_them_in_json(tmp_path: Path, kit: Any, ledger_site: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = kit.write(tmp_path / "cascade.yaml", kit.config(hparams={"common": {"steps": 3, "note": "slow disk"}}))
    result = CliRunner().invoke(cli, ["plan", str(path), "--json"])
    assert result.exit_code == 0, result.output
    (note,) = json.loads(result.output)["backend_notes"]
    assert note["stages"] == ["sft", "math_rl", "code_rl", "mopd"] and note["key_path"] == "hparams.common.note"
    assert note["message"] == "slow disk" and note["file"] == str(path)
    assert "note: slow disk" in path.read_text().splitlines()[note["line"] - 1]
    text = CliRunner().invoke(cli, ["plan", str(path)])
    assert text.exit_code == 0 and "backend notes" in text.output
