"""The quickstart cascade end to end through the real embedded host (torch + transformers)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.manifest import load_manifest
from cascade_plugins.cascade.report import build_report
from cascade_plugins.cascade.resolve import check_with_backend, resolve_plan
from cascade_plugins.cascade.sequencer import write_generated_dataset
from cascade_plugins.plugins import get_registry

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"
#: what configs/quickstart_ci.yaml must show on seed 0, as accuracy out of 1 (150 validation prompts
#: per domain, one standard error 0.04 at most). Measured on seed 0: math +0.320 in math_grpo, code
#: +0.267 in code_grpo (both over sft), math -0.187 in code_grpo, +0.140 back in mopd, which holds
#: 85 % (math) and 92 % (code) of its teachers' gains over sft.
MARGINS = {
    "math_gain": 0.20,
    "code_gain": 0.15,
    "math_forgetting": 0.10,
    "math_recovery": 0.08,
    "share_of_teacher_gain": 0.75,
}

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_full_quickstart_config_plans_cleanly(tmp_path):
    """The README's config passes every check, the local backend's included."""
    config, loaded = load_cascade_config(CONFIGS / "quickstart.yaml")
    plan = resolve_plan(config, loaded, run_dir=tmp_path / "run")
    assert [s.name for s in plan.stages] == ["sft", "math_grpo", "code_grpo", "mopd"]
    assert [s.kind for s in plan.stages] == ["sft", "grpo", "grpo", "mopd"]
    assert {d: t.describe() for d, t in plan.stage("mopd").teachers.items()} == {
        "math": "best:math", "code": "best:code"
    }
    registry = get_registry(config.plugins)
    for source in plan.generated().values():
        write_generated_dataset(source, registry)
    check_with_backend(plan, registry)


@pytest.fixture(scope="module")
def quickstart_ci_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The CI quickstart run once through the ``cascade`` CLI (seed 0), shared by the tests below."""
    run_dir = tmp_path_factory.mktemp("quickstart_ci") / "run"
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-m", "cascade_plugins", "run", str(CONFIGS / "quickstart_ci.yaml"), "--run-dir",
         str(run_dir)],
        cwd=run_dir.parent, env=env, capture_output=True, text=True, timeout=1500,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_quickstart_ci_runs_end_to_end_with_the_local_backend(quickstart_ci_run: Path) -> None:
    run_dir = quickstart_ci_run
    manifest = load_manifest(run_dir)
    assert manifest.status == "finished"
    for record in manifest.stages:
        assert record.status == "finished" and record.attempts == 1
        result = record.result
        assert set(result["validation"]) == {"math", "code"}
        checkpoint = Path(result["checkpoint"]["path"])
        assert (checkpoint / "config.json").is_file()  # a Hugging Face directory, handed to the next stage
        assert len(result["metrics"]) == result["checkpoint"]["step"]
    # each stage started from the previous stage's checkpoint
    for before, after in zip(manifest.stages, manifest.stages[1:], strict=False):
        assert after.init["path"] == before.result["checkpoint"]["path"]
    # the MOPD teachers came from the registry: the best validated checkpoint per domain
    for domain, teacher in manifest.stage("mopd").teachers.items():
        earlier = [e for e in manifest.registry[domain] if e["stage"] != "mopd"]
        assert teacher["score"] == max(e["score"] for e in earlier)
        assert Path(teacher["checkpoint"]["path"]).is_dir()
    # the RL stages evaluated mid-stage and kept those checkpoints as teacher candidates
    assert [e["step"] for e in manifest.registry["math"] if e["stage"] == "math_grpo"] == [10, 20, 30]
    report = (run_dir / "report.md").read_text()
    assert "| domain | sft | math_grpo | code_grpo | mopd |" in report
    assert "## Forgetting and recovery through MOPD" in report
    assert "`code` ±0.041 at most (n = 150), `math` ±0.041 at most (n = 150)" in report  # the standard error
    for column in ("reverse KL to the `math` teacher", "reverse KL to the `code` teacher", "IcePop out-of-band"):
        assert column in report
    for png in ("report.png", "recovery.png"):
        assert (run_dir / png).read_bytes()[:4] == b"\x89PNG"


@pytest.mark.slow
def test_quickstart_ci_shows_gains_forgetting_and_recovery(quickstart_ci_run: Path) -> None:
    """The effects the quickstart exists to show, on seed 0 (deterministic on one thread), each with
    a margin below what this seed gives (see ``MARGINS``)."""
    manifest = load_manifest(quickstart_ci_run)
    score = {r.name: r.result["validation"] for r in manifest.stages}
    teachers = manifest.stage("mopd").teachers
    print(json.dumps({"scores": score, "teachers": {d: t["score"] for d, t in teachers.items()}}, indent=1))
    # each RL stage gains in its own domain, over SFT
    assert score["math_grpo"]["math"] - score["sft"]["math"] >= MARGINS["math_gain"]
    assert score["code_grpo"]["code"] - score["sft"]["code"] >= MARGINS["code_gain"]
    # the later (code) stage costs the earlier domain
    assert score["math_grpo"]["math"] - score["code_grpo"]["math"] >= MARGINS["math_forgetting"]
    # the report marks both, as the paper's figure does
    cells = build_report(manifest).cells["math"]
    assert (cells["code_grpo"].mark, cells["mopd"].mark) == ("forgetting", "recovery")
    # MOPD brings math most of the way back to its teacher and keeps code at its teacher's level
    assert score["mopd"]["math"] - score["code_grpo"]["math"] >= MARGINS["math_recovery"]
    for domain in ("math", "code"):
        gain = teachers[domain]["score"] - score["sft"][domain]
        assert gain > 0
        assert (score["mopd"][domain] - score["sft"][domain]) / gain >= MARGINS["share_of_teacher_gain"]
