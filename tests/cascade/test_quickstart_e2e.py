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
from cascade_plugins.cascade.resolve import check_with_backend, resolve_plan
from cascade_plugins.cascade.sequencer import write_generated_dataset
from cascade_plugins.plugins import get_registry

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "configs"

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


@pytest.mark.slow
def test_quickstart_ci_runs_end_to_end_with_the_local_backend(tmp_path):
    run_dir = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "CASCADE_PLUGINS"}
    done = subprocess.run(
        [sys.executable, "-m", "cascade_plugins", "run", str(CONFIGS / "quickstart_ci.yaml"), "--run-dir",
         str(run_dir)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    manifest = load_manifest(run_dir)
    assert manifest.status == "finished"
    for record in manifest.stages:
        assert record.status == "finished" and record.attempts == 1
        result = record.result
        assert set(result["validation"]) == {"math", "code"}
        assert all(0.0 <= v <= 1.0 for v in result["validation"].values())
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
    # math_grpo evaluated mid-stage and kept that checkpoint as a teacher candidate
    assert [e["step"] for e in manifest.registry["math"] if e["stage"] == "math_grpo"] == [3, 6]
    report = (run_dir / "report.md").read_text()
    assert "| domain | sft | math_grpo | code_grpo | mopd |" in report
    assert (run_dir / "report.png").read_bytes()[:4] == b"\x89PNG"
    scores = {r.name: r.result["validation"] for r in manifest.stages}
    print(json.dumps(scores, indent=1))  # shown with -s: what the cascade did, not asserted
