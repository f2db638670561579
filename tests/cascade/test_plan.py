"""Plan resolution and every refusal, before any compute."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.plan import Plan, check_with_backend, deep_merge, resolve_plan
from cascade_plugins.cli import cli
from cascade_plugins.config import ConfigError
from cascade_plugins.plugins import PluginRegistry


def _plan(tmp_path: Path, config: dict[str, Any], registry: PluginRegistry, kit: Any) -> Plan:
    path = kit.write(tmp_path / "cascade.yaml", config)
    loaded_config, loaded = load_cascade_config(path)
    return resolve_plan(loaded_config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=registry)


def _problems(tmp_path: Path, config: dict[str, Any], registry: PluginRegistry, kit: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        _plan(tmp_path, config, registry, kit)
    return [f"{p.key_path}: {p.message}" for p in info.value.problems]


def test_resolves_order_init_teachers_and_data(tmp_path, ledger_registry, kit):
    plan = _plan(tmp_path, kit.config(), ledger_registry, kit)
    assert [s.name for s in plan.stages] == ["sft", "math_rl", "code_rl", "mopd"]
    assert [s.init.describe() for s in plan.stages] == ["base", "stage:sft", "stage:math_rl", "stage:code_rl"]
    assert not any(s.branch for s in plan.stages)
    mopd = plan.stage("mopd")
    assert {d: t.describe() for d, t in mopd.teachers.items()} == {"math": "best:math", "code": "best:code"}
    assert mopd.loss is not None and mopd.loss.name == "ledger_loss"
    assert plan.stage("math_rl").domains == ["math"]
    # generated data lands in the run directory; every stage and eval set points at it
    assert plan.stage("sft").data["code"].path == str(tmp_path / "run" / "data" / "code_train.jsonl")
    assert plan.eval["math"][0].path == str(tmp_path / "run" / "data" / "math_val.jsonl")
    assert plan.eval["math"][1].name == "nonempty"
    assert plan.lineage("mopd") == ["sft", "math_rl", "code_rl", "mopd"]
    assert [s.seed for s in plan.stages] == [0, 1, 2, 3]


def test_hparams_merge_common_then_kind_then_stage(tmp_path, ledger_registry, kit):
    config = kit.config(hparams={"common": {"steps": 3, "lr": 1.0}, "grpo": {"lr": 2.0}},
                        eval={"every_n_steps": 2, "sets": kit.config()["eval"]["sets"]})
    config["stages"][2]["hparams"]["lr"] = 3.0
    config["stages"][3]["hparams"]["eval_every"] = 1
    plan = _plan(tmp_path, config, ledger_registry, kit)
    assert plan.stage("sft").hparams["lr"] == 1.0
    assert plan.stage("math_rl").hparams["lr"] == 2.0
    assert plan.stage("code_rl").hparams["lr"] == 3.0
    assert plan.stage("code_rl").hparams["validation"] == {"math": 0.4, "code": 0.7}
    # eval.every_n_steps reaches the backend as hparams.eval_every unless a stage sets its own
    assert plan.stage("sft").hparams["eval_every"] == 2
    assert plan.stage("mopd").hparams["eval_every"] == 1


def test_deep_merge_replaces_leaves_and_merges_mappings():
    assert deep_merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"c": 3}, "l": [2]}) == {
        "a": {"b": 1, "c": 3}, "l": [2]
    }


def test_branch_from_an_earlier_stage_is_part_of_the_plan(tmp_path, ledger_registry, kit):
    config = kit.config()
    # Cascade 2's RLHF teacher: trained from the SFT checkpoint as a side branch
    config["stages"].insert(2, {"name": "rlhf", "kind": "grpo", "init": "sft", "data": {"code": "code_train"}})
    config["stages"][4]["teachers"]["code"] = "rlhf"
    plan = _plan(tmp_path, config, ledger_registry, kit)
    rlhf, code_rl = plan.stage("rlhf"), plan.stage("code_rl")
    assert rlhf.init.describe() == "stage:sft"
    # "previous" means the stage listed just before: code_rl continues from rlhf, so math_rl is
    # the side branch (its checkpoint does not lead to the last stage)
    assert code_rl.init.describe() == "stage:rlhf"
    assert [s.name for s in plan.stages if s.branch] == ["math_rl"]
    assert plan.stage("mopd").teachers["code"].describe() == "stage:rlhf"
    assert plan.lineage("rlhf") == ["sft", "rlhf"]


def test_init_from_path_and_base(tmp_path, ledger_registry, kit):
    checkpoint = tmp_path / "ckpt"
    checkpoint.mkdir()
    config = kit.config()
    config["stages"][1]["init"] = "ckpt"
    config["stages"][2]["init"] = "base"
    plan = _plan(tmp_path, config, ledger_registry, kit)
    assert plan.stage("math_rl").init.describe() == f"path:{checkpoint}"
    assert plan.stage("code_rl").init.describe() == "base"
    assert [s.name for s in plan.stages if s.branch] == ["sft", "math_rl"]


def test_every_problem_is_reported_at_once_with_key_paths_and_lines(tmp_path, ledger_registry, kit):
    config = kit.config()
    config["stages"][0]["data"]["physics"] = "missing.jsonl"
    config["stages"][1]["rewards"] = {"math": "nonemptyy"}
    config["stages"][3]["teachers"]["math"] = "best:maths"
    config["stages"][2]["teachers"] = {"code": "sft"}
    config["data"]["code_train"]["generator"] = "no_such_generator"
    path = kit.write(tmp_path / "cascade.yaml", config)
    loaded_config, loaded = load_cascade_config(path)
    with pytest.raises(ConfigError) as info:
        resolve_plan(loaded_config, loaded, run_dir=tmp_path / "run", base_dir=tmp_path, registry=ledger_registry)
    messages: dict[str, list[str]] = {}
    for problem in info.value.problems:
        messages.setdefault(problem.key_path, []).append(problem.message)
    physics = messages["stages[0].data.physics"]
    assert any("unknown domain 'physics'" in m for m in physics)
    assert any("'missing.jsonl' is neither a dataset" in m for m in physics)
    assert "did you mean 'nonempty'" in messages["stages[1].rewards.math"][0]
    assert "did you mean 'math'" in messages["stages[3].teachers.math"][0]
    assert "only mopd stages have teachers" in messages["stages[2].teachers"][0]
    assert "unknown dataset 'no_such_generator'" in messages["data.code_train.generator"][0]
    assert len(info.value.problems) == 6
    assert all(p.file == str(path) and p.line for p in info.value.problems)
    text = path.read_text().splitlines()
    reward_line = next(p.line for p in info.value.problems if p.key_path == "stages[1].rewards.math")
    assert "nonemptyy" in text[reward_line - 1]


def test_missing_data_file(tmp_path, ledger_registry, kit):
    config = kit.config(data={**kit.config()["data"], "math_val": {"path": "val/math.jsonl"}})
    assert _problems(tmp_path, config, ledger_registry, kit) == [
        f"data.math_val.path: data file not found: {tmp_path / 'val' / 'math.jsonl'}"
    ]
    (tmp_path / "val").mkdir()
    (tmp_path / "val" / "math.jsonl").write_text('{"prompt": "1+1=", "ground_truth": "2"}\n')
    plan = _plan(tmp_path, config, ledger_registry, kit)
    assert plan.eval["math"][0].path == str(tmp_path / "val" / "math.jsonl")


def test_teacher_that_cannot_exist_yet(tmp_path, ledger_registry, kit):
    config = kit.config()
    first = {"name": "warm", "kind": "mopd", "loss": "ledger_loss", "data": {"math": "math_train"},
             "teachers": {"math": "best:math"}}
    config["stages"].insert(0, first)
    config["stages"][4]["teachers"]["code"] = "mopd"
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert "stages[0].teachers.math: 'best:math' cannot exist yet: no stage runs before this one" in problems
    assert "stages[4].teachers.code: stage 'mopd' cannot learn from itself (a cycle)" in problems


def test_forward_reference_and_cycle(tmp_path, ledger_registry, kit):
    config = kit.config()
    config["stages"][1]["init"] = "code_rl"  # math_rl <- code_rl <- (previous) math_rl: a cycle
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert problems == ["stages[1].init: stages form a cycle: math_rl -> code_rl -> math_rl"]

    config = kit.config()
    config["stages"][0]["init"] = "mopd"  # sft <- mopd <- code_rl <- math_rl <- sft
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert problems == ["stages[0].init: stages form a cycle: sft -> mopd -> code_rl -> math_rl -> sft"]

    config = kit.config()
    config["stages"].append({"name": "extra", "kind": "sft", "init": "base", "data": {"math": "math_train"}})
    config["stages"][1]["init"] = "extra"
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert problems == [
        "stages[1].init: stage 'extra' (stages[4]) runs after 'math_rl' (stages[1]), so its checkpoint cannot "
        "exist yet; a stage can only start from a stage listed before it"
    ]


def test_unknown_backend_duplicate_names_and_mopd_without_teachers(tmp_path, ledger_registry, kit):
    config = kit.config(backend="ledgr")
    config["stages"][2]["name"] = "sft"
    config["stages"][3]["teachers"] = {"math": "best:math"}
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert "backend.name: unknown backend 'ledgr'; did you mean 'ledger'? (available: ledger)" in problems
    assert "stages[2].name: duplicate stage name 'sft' (first used by stages[0])" in problems
    assert "stages[3].teachers: no teacher for domain(s) code: every mopd domain needs one" in problems


def test_default_mopd_loss_must_be_loaded(tmp_path, ledger_registry, kit):
    config = kit.config()
    del config["stages"][3]["loss"]
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert problems == [
        "stages[3].kind: mopd stages use the loss 'mopd' unless 'loss' is set: unknown loss 'mopd' "
        "(available: ledger_loss)"
    ]


def test_generator_options_are_checked(tmp_path, ledger_registry, kit):
    config = kit.config()
    config["data"]["math_val"]["colour"] = "blue"
    problems = _problems(tmp_path, config, ledger_registry, kit)
    assert len(problems) == 1 and problems[0].startswith("data.math_val: generator 'ledger_rows' rejected")
    assert "colour" in problems[0]


def test_schema_errors_name_the_key(tmp_path, kit):
    config = kit.config()
    config["stages"][0]["kind"] = "ppo"
    config["stages"][1]["inti"] = "sft"
    path = kit.write(tmp_path / "cascade.yaml", config)
    with pytest.raises(ConfigError) as info:
        load_cascade_config(path)
    problems = {p.key_path: p.message for p in info.value.problems}
    assert "stages[0].kind" in problems
    assert "did you mean 'init'" in problems["stages[1].inti"]


def test_backend_check_problems_point_at_the_line_that_set_the_value(tmp_path, ledger_registry, kit):
    config = kit.config(hparams={"common": {"steps": 3, "warmup": 1}})
    config["stages"][1]["hparams"]["steps"] = 0
    path = kit.write(tmp_path / "cascade.yaml", config)
    plan = _plan(tmp_path, config, ledger_registry, kit)
    scratch = plan.with_data_dir(tmp_path / "scratch")
    with pytest.raises(ConfigError) as info:
        check_with_backend(scratch, ledger_registry)  # generated data not written: the backend says so
    messages = [str(p) for p in info.value.problems]
    assert any("data for math not found" in m for m in messages)

    from cascade_plugins.cascade.sequencer import write_generated_dataset

    for source in scratch.generated().values():
        write_generated_dataset(source, ledger_registry)
    with pytest.raises(ConfigError) as info:
        check_with_backend(scratch, ledger_registry)
    problems = info.value.problems
    warmup = [p for p in problems if p.key_path == "hparams.common.warmup"]
    # every stage inherits it from one line: one problem, at that line, naming the stages
    assert [p.message for p in warmup] == ["backend 'ledger' (all 4 stages): not a ledger setting"]
    lines = path.read_text().splitlines()
    assert "warmup" in lines[warmup[0].line - 1]
    steps = [p for p in problems if p.key_path == "stages[1].hparams.steps"]
    assert len(steps) == 1 and "positive integer" in steps[0].message and "steps: 0" in lines[steps[0].line - 1]


def test_cli_plan_prints_the_plan_and_json(tmp_path, ledger_site, kit, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = kit.config()
    config["stages"].insert(2, {"name": "rlhf", "kind": "grpo", "init": "sft", "data": {"code": "code_train"}})
    kit.write(tmp_path / "cascade.yaml", config)
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", "cascade.yaml", "stages.0.hparams.validation.math=0.25"])
    assert result.exit_code == 0, result.output
    assert "rlhf" in result.output and "(branch)" in result.output and "best:math" in result.output
    assert not (tmp_path / "runs").exists()  # planning writes nothing into the run directory

    result = runner.invoke(cli, ["plan", "cascade.yaml", "--json", "stages.0.hparams.validation.math=0.25"])
    assert result.exit_code == 0, result.output
    described = json.loads(result.output)
    assert [s["name"] for s in described["stages"]] == ["sft", "math_rl", "rlhf", "code_rl", "mopd"]
    assert described["stages"][2]["init"] == "stage:sft"
    assert [s["branch"] for s in described["stages"]] == [False, True, False, False, False]
    assert described["stages"][0]["hparams"]["validation"]["math"] == 0.25
    assert described["run_dir"] == str(tmp_path / "runs" / "cascade")


def test_cli_plan_exit_2_with_all_problems(tmp_path, ledger_site, kit, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = kit.config()
    config["stages"][0]["data"]["math"] = "nope.jsonl"
    config["stages"][3]["teachers"]["code"] = "best:cod"
    kit.write(tmp_path / "cascade.yaml", config)
    result = CliRunner().invoke(cli, ["plan", "cascade.yaml"])
    assert result.exit_code == 2
    assert "2 problems in config" in result.output
    assert "stages[0].data.math" in result.output and "stages[3].teachers.code" in result.output


RECIPE = Path(__file__).resolve().parents[2] / "configs" / "nemotron_cascade2.yaml"


def test_a_recipe_broken_in_several_ways_lists_every_problem_once(tmp_path, monkeypatch):
    """The Cascade 2 recipe with problems of every kind at once: missing data, a typo'd reward and
    stage, a bad hparams key, a key the backend owns, and no NeMo RL checkout. One run of
    `cascade plan` lists all of them, each once, in file order."""
    import yaml

    data = yaml.safe_load(RECIPE.read_text())
    for entry in data["data"].values():
        path = tmp_path / entry
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"prompt": "p", "ground_truth": "1"}\n')
    (tmp_path / "data" / "nemotron_cascade2" / "code_val.jsonl").unlink()
    (tmp_path / "sft").mkdir()
    (tmp_path / "nemo-rl").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CASCADE2_SFT_MODEL", str(tmp_path / "sft"))
    monkeypatch.setenv("NEMO_RL_ROOT", str(tmp_path / "nemo-rl"))  # a checkout without the base configs
    monkeypatch.delenv("CASCADE_PLUGINS", raising=False)
    overrides = [
        "domains.code=codee",
        "stages.3.init=multi_domain",
        "+stages.0.hparams.learning_rate=1e-6",
        "+stages.6.hparams.nemo_rl.overrides.checkpointing.checkpoint_dir=/elsewhere",
    ]
    result = CliRunner().invoke(cli, ["plan", str(RECIPE), *overrides])
    assert result.exit_code == 2, result.output
    listed = [line.strip() for line in result.output.splitlines()[1:] if line.strip()]
    assert result.output.splitlines()[0] == "6 problems in config:"
    assert len(listed) == 6 and len(set(listed)) == 6

    def one(fragment: str) -> str:
        found = [line for line in listed if fragment in line]
        assert len(found) == 1, (fragment, listed)
        return found[0]

    assert "did you mean 'code'" in one("domains.code.reward: ")
    assert "did you mean 'multi_domain_rl'" in one("stages[3].init: ")
    assert "code_val.jsonl" in one("data.code_val.path: data file not found")
    assert "unknown key 'learning_rate'" in one("stages[0].hparams.learning_rate: backend 'nemo_rl' (stage 'if_rl')")
    assert "set by the backend" in one("stages[6].hparams.nemo_rl.overrides.checkpointing.checkpoint_dir:")
    # every stage inherits the base config from hparams.common: one problem at that line (if_rl is
    # not among the stages because its hparams failed to validate first)
    shared = one("hparams.common.nemo_rl.defaults: backend 'nemo_rl' (stages 'multi_domain_rl', 'rlhf_from_sft',")
    assert shared.startswith(f"{RECIPE}:") and "NeMo RL config not found" in shared
    lines = [int(line.split(":")[1]) for line in listed if line.startswith(f"{RECIPE}:")]
    assert lines == sorted(lines)  # in file order


def test_each_stage_gets_its_own_tracked_run_grouped_by_the_cascade(tmp_path, ledger_registry, kit):
    config = kit.config(name="demo", logger={"tensorboard_enabled": True, "wandb": {"project": "p"}})
    plan = _plan(tmp_path, config, ledger_registry, kit)
    spec = plan.placeholder_spec(plan.stage("math_rl"))
    assert spec.logger == {
        "tensorboard_enabled": True,
        "wandb": {"group": "demo", "name": "math_rl", "job_type": "grpo", "project": "p"},
        "log_dir": str(tmp_path / "run" / "logs" / "math_rl"),
    }
    moved = _plan(tmp_path, kit.config(name="demo", logger={"log_dir": "tb"}), ledger_registry, kit)
    assert moved.placeholder_spec(moved.stage("sft")).logger["log_dir"] == str(tmp_path / "run" / "tb" / "sft")
    # tracking can be switched on for a run that goes on: it is not part of the config's hash
    assert moved.config_hash == plan.config_hash
