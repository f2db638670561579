"""The report: forgetting and recovery against each stage's parent, Markdown and PNG."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from cascade_plugins.cascade.manifest import RunManifest, StageRecord, save_manifest
from cascade_plugins.cascade.report import (
    build_report,
    eval_sizes,
    recoveries,
    render_markdown,
    standard_error,
    write_report,
)
from cascade_plugins.config.schema import RegistryConfig

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="the report's plot needs matplotlib (pip install 'cascade-plugins[local]')",
)


def _record(name: str, parent: str | None, domains: list[str], scores: dict[str, float], branch: bool = False):
    return StageRecord(
        name=name, kind="grpo", status="finished", domains=domains, parent=parent, branch=branch,
        start=f"stage:{parent}" if parent else "base",
        result={"stage": name, "checkpoint": {"path": f"/ck/{name}"}, "metrics": [{"step": 4}],
                "validation": scores, "evaluations": []},
    )


def _manifest() -> RunManifest:
    return RunManifest(config_hash="x", base_dir="/", backend="ledger", status="finished", name="demo", stages=[
        _record("sft", None, ["math", "code"], {"math": 0.30, "code": 0.40}),
        _record("rlhf", "sft", ["code"], {"math": 0.10, "code": 0.45}, branch=True),
        _record("math_rl", "sft", ["math"], {"math": 0.60, "code": 0.20}),
        _record("code_rl", "math_rl", ["code"], {"math": 0.595, "code": 0.50}),
        _record("mopd", "code_rl", ["math", "code"], {"math": 0.62, "code": 0.48}),
    ])


def _with_teachers(manifest: RunManifest) -> RunManifest:
    manifest.stages[-1].teachers = {
        "math": {"stage": "math_rl", "step": 4, "score": 0.6, "checkpoint": {"path": "/ck/math_rl"},
                 "rule": "best (max score)"},
        "code": {"checkpoint": {"path": "/models/coder"}, "rule": "path"},
    }
    return manifest


def test_forgetting_and_recovery_are_measured_against_the_parent_stage():
    data = build_report(_manifest(), tolerance=0.01)
    marks = {(d, s): c.mark for d, row in data.cells.items() for s, c in row.items()}
    assert marks[("code", "math_rl")] == "forgetting"  # 0.40 -> 0.20 while training math
    assert marks[("math", "rlhf")] == "forgetting"  # the side branch compares with sft, its parent
    assert marks[("math", "code_rl")] == ""  # -0.005 is within tolerance
    assert marks[("code", "code_rl")] == "recovery"  # 0.20 -> 0.50 after the drop (peak 0.40)
    assert marks[("code", "mopd")] == "forgetting"  # 0.50 -> 0.48
    assert marks[("math", "mopd")] == ""  # up, but math never dropped on this line
    assert abs(data.cells["code"]["math_rl"].delta + 0.2) < 1e-9
    assert data.main_line == ["sft", "math_rl", "code_rl", "mopd"]
    assert len(data.events) == 4


def test_min_direction_flips_what_counts_as_forgetting():
    data = build_report(_manifest(), registry=RegistryConfig(directions={"code": "min"}))
    assert data.cells["code"]["math_rl"].mark == ""  # lower is better: 0.40 -> 0.20 is no loss
    assert data.cells["code"]["code_rl"].mark == "forgetting"


@needs_matplotlib
def test_markdown_table_and_plot_are_written(tmp_path: Path):
    save_manifest(tmp_path, _with_teachers(_manifest()))
    md, png, text = write_report(tmp_path)
    assert md.read_text() == text
    assert "| domain | sft | rlhf | math_rl | code_rl | mopd |" in text
    assert "| code (↑) | 0.400 † | 0.450 (+0.050) † | **0.200 (-0.200) ▼** | **0.500 (+0.300) † ▲** |" in text
    assert "| 2 | rlhf | grpo | sft (branch) | code | 4 | finished |" in text
    assert png is not None and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![validation scores through the cascade](report.png)" in text
    assert "- `mopd` learned `math` from `math_rl` step 4 (score 0.600), rule: best (max score)" in text
    assert "- `mopd` learned `code` from `/models/coder`, rule: path" in text


def test_unfinished_run_reports_what_exists():
    manifest = _manifest()
    manifest.stages[-1].status, manifest.stages[-1].result = "pending", None
    text = render_markdown(build_report(manifest))
    assert "| math (↑) | 0.300 † |" in text and text.count("–") >= 2


def _cascade_with_mopd() -> RunManifest:
    """sft -> math_rl -> code_rl (math forgotten) -> mopd (teachers: math_rl, code_rl)."""
    manifest = RunManifest(config_hash="x", base_dir="/", backend="ledger", status="finished", name="demo", stages=[
        _record("sft", None, ["math", "code"], {"math": 0.50, "code": 0.20}),
        _record("math_rl", "sft", ["math"], {"math": 0.85, "code": 0.10}),
        _record("code_rl", "math_rl", ["code"], {"math": 0.65, "code": 0.46}),
        _record("mopd", "code_rl", ["math", "code"], {"math": 0.80, "code": 0.45}),
    ])
    mopd = manifest.stages[-1]
    mopd.kind = "mopd"
    mopd.teachers = {
        "math": {"stage": "math_rl", "step": 30, "score": 0.875, "checkpoint": {"path": "/ck/m30"}, "rule": "best"},
        "code": {"stage": "code_rl", "step": 40, "score": 0.46, "checkpoint": {"path": "/ck/c40"}, "rule": "best"},
    }
    mopd.result["metrics"] = [
        {"step": s, "reverse_kl/math": 0.05 / s, "reverse_kl/code": 0.01, "is_oob_fraction": 0.0,
         "advantage_abs_mean": 0.02} for s in range(1, 41)
    ]
    return manifest


def test_recovery_is_the_share_of_each_teachers_gain_over_the_first_stage():
    items = {r.domain: r for r in recoveries(build_report(_cascade_with_mopd()))}
    math, code = items["math"], items["code"]
    assert (math.anchor, math.before, math.after, math.teacher) == (0.50, 0.65, 0.80, "math_rl step 30")
    assert abs(math.recovered - (0.80 - 0.50) / (0.875 - 0.50)) < 1e-12  # 80 %
    assert abs(code.recovered - 0.25 / 0.26) < 1e-12
    math.teacher_score = 0.4  # a teacher no better than the anchor: nothing to recover
    assert math.recovered is None


def test_standard_error_and_eval_sizes_come_from_the_run(tmp_path: Path):
    assert abs(standard_error(0.5, 400) - 0.025) < 1e-12
    assert standard_error(0.5, None) is None and standard_error(1.5, 10) is None
    manifest = _cascade_with_mopd()
    manifest.base_dir = str(tmp_path)
    manifest.datasets = {"math_val": {"path": "x", "rows": 300}}
    (tmp_path / "code_val.jsonl").write_text('{"prompt": "a"}\n{"prompt": "b"}\n\n')
    (tmp_path / "config.yaml").write_text(
        "eval: {sets: {math: {data: math_val}, code: {data: code_val.jsonl}}}\nhparams: {common: {}}\n"
    )
    assert eval_sizes(tmp_path, manifest) == {"math": 300, "code": 2}
    (tmp_path / "config.yaml").write_text(
        "eval: {sets: {math: {data: math_val}}}\nhparams: {common: {eval_max_samples: 100}}\n"
    )
    assert eval_sizes(tmp_path, manifest) == {"math": 100}


@needs_matplotlib
def test_report_shows_recovery_noise_and_mopd_metrics(tmp_path: Path):
    (tmp_path / "config.yaml").write_text("eval: {sets: {math: {data: math_val}, code: {data: code_val}}}\n")
    manifest = _cascade_with_mopd()
    manifest.datasets = {"math_val": {"rows": 200}, "code_val": {"rows": 200}}
    save_manifest(tmp_path, manifest)
    _, _, text = write_report(tmp_path)
    assert "`code` ±0.035 at most (n = 200), `math` ±0.035 at most (n = 200)" in text
    # 0.85 -> 0.65 with SE 0.025 and 0.034: 4.7 standard errors
    assert "- largest loss of `math` in one stage: 0.850 → 0.650 (-0.200, 4.7 SE) in `code_rl`" in text
    assert (
        "| mopd | math | 0.500 | 0.875 (math_rl step 30) | +0.375, 8.8 SE | 0.650 | 0.800 (+0.150, 3.4 SE) | **80%** |"
    ) in text
    assert "| mopd | code | 0.200 | 0.460 (code_rl step 40) |" in text
    assert (
        "| step | reverse KL to the `code` teacher | reverse KL to the `math` teacher | IcePop out-of-band | "
        "mean abs. advantage |"
    ) in text
    table = text.split("MOPD step metrics of `mopd` (every 3 steps)")[1]
    assert "| 1 | 0.0100 | 0.0500 | 0.0000 | 0.0200 |" in table
    assert "| 40 | 0.0100 | 0.0013 | 0.0000 | 0.0200 |" in table
    assert "| 2 |" not in table  # 40 steps thinned to every third, the last kept
    recovery = tmp_path / "recovery.png"
    assert recovery.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![scores after every stage against the MOPD teachers](recovery.png)" in text


@needs_matplotlib
def test_training_curves_run_through_the_cascade_and_into_the_plot(tmp_path: Path):
    manifest = _manifest()
    sft, rlhf, math_rl, code_rl, mopd = manifest.stages
    sft.kind, mopd.kind = "sft", "mopd"
    sft.result["metrics"] = [{"step": s, "loss": 2.0 / s} for s in (1, 2, 3, 4)]
    rlhf.result["metrics"] = [{"step": s, "loss": 0.1, "reward": s / 4} for s in (1, 2, 3, 4)]
    math_rl.result["metrics"] = [{"step": s, "loss": 0.0, "reward": 0.5, "lr": 1e-4} for s in (1, 2, 3, 4)]
    code_rl.result["metrics"] = []
    # the last stage was interrupted: its curve comes from its metrics.jsonl
    mopd.status, mopd.result, mopd.total_steps = "interrupted", None, 10
    mopd.log_dir = str(tmp_path / "logs" / "mopd")
    Path(mopd.log_dir).mkdir(parents=True)
    (Path(mopd.log_dir) / "metrics.jsonl").write_text(
        '{"step": 1, "loss": 0.3, "reverse_kl": 0.02}\n{"step": 2, "loss": 0.2, "reverse_kl": 0.01}\n'
        '{"step": 2, "validation/math": 0.6}\n{"step": 3, "lo'
    )
    data = build_report(manifest)
    curves = {title: [(c.stage, c.steps, c.values) for c in found] for title, found in data.curves.items()}
    assert curves["loss"] == [
        ("sft", [1, 2, 3, 4], [2.0, 1.0, 2 / 3, 0.5]),
        ("rlhf", [5, 6, 7, 8], [0.1] * 4),
        ("math_rl", [9, 10, 11, 12], [0.0] * 4),
        ("mopd", [13, 14], [0.3, 0.2]),
    ]
    assert curves["reward (sampled)"] == [("rlhf", [5, 6, 7, 8], [0.25, 0.5, 0.75, 1.0]),
                                          ("math_rl", [9, 10, 11, 12], [0.5] * 4)]
    assert curves["MOPD reverse KL"] == [("mopd", [13, 14], [0.02, 0.01])]

    save_manifest(tmp_path, manifest)
    _, png, text = write_report(tmp_path)
    assert "![validation scores and training curves through the cascade](report.png)" in text
    assert png is not None and png.read_bytes()[:4] == b"\x89PNG"


@needs_matplotlib
def test_a_run_without_scores_still_plots_its_curves(tmp_path: Path):
    record = StageRecord(name="sft", kind="sft", status="finished",
                         result={"stage": "sft", "checkpoint": {"path": "/ck"}, "validation": {}, "evaluations": [],
                                 "metrics": [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 0.5}]})
    save_manifest(tmp_path, RunManifest(config_hash="x", base_dir="/", backend="ledger", stages=[record]))
    _, png, text = write_report(tmp_path)
    assert png is not None and "![training curves through the cascade](report.png)" in text
