"""The cascade report: every domain's validation score after every stage, as a Markdown table
with forgetting and recovery marked, and a PNG line plot of the scores through the cascade.

Scores are compared with the stage each stage *started from* (its parent; for a side branch that
is not the stage listed before it):

- **forgetting**: the score got worse than the parent's by more than ``tolerance``;
- **recovery**: it got better by more than ``tolerance`` while the parent was below the best
  score seen earlier on the same line of checkpoints (it regains what was lost).

Below the scores, the PNG plots the training curves of every stage on one step axis: the loss,
the sampled reward (``grpo``) and the MOPD reverse KL, from each finished stage's metrics in the
manifest, or from ``metrics.jsonl`` in its log folder while it runs or after an interruption.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from cascade_plugins.atomic import atomic_writer, write_text_atomic
from cascade_plugins.cascade.manifest import RunManifest, StageRecord, load_manifest
from cascade_plugins.config.schema import RegistryConfig

__all__ = ["CURVES", "Cell", "Curve", "ReportData", "build_report", "render_markdown", "render_plot", "write_report"]

Mark = Literal["", "forgetting", "recovery"]
DEFAULT_TOLERANCE = 0.01
#: training-curve panels: title -> the metric keys that feed it (the first one a stage has)
CURVES: dict[str, tuple[str, ...]] = {
    "loss": ("loss",),
    "reward (sampled)": ("reward", "reward_mean"),
    "MOPD reverse KL": ("reverse_kl", "topk_reverse_kl"),
}


@dataclass
class Cell:
    score: float | None
    #: score minus the parent stage's score (``None`` without a parent score)
    delta: float | None = None
    mark: Mark = ""
    trained: bool = False


@dataclass
class Curve:
    """One stage's values of one metric, at steps counted through the whole cascade."""

    stage: str
    steps: list[int]
    values: list[float]


@dataclass
class ReportData:
    name: str
    status: str
    metric: str
    tolerance: float
    stages: list[StageRecord]
    domains: list[str]
    #: domain -> stage -> cell
    cells: dict[str, dict[str, Cell]]
    #: the line of checkpoints that ends in the last stage (the others are side branches)
    main_line: list[str]
    directions: dict[str, str]
    events: list[str] = field(default_factory=list)
    #: panel title (a key of :data:`CURVES`) -> one curve per stage that has the metric
    curves: dict[str, list[Curve]] = field(default_factory=dict)


def _scores(record: StageRecord) -> dict[str, float]:
    if record.status != "finished" or not record.result:
        return {}
    return {d: float(v) for d, v in (record.result.get("validation") or {}).items()}


def _training_rows(record: StageRecord) -> list[dict[str, Any]]:
    """A stage's per-step metrics: the result's when finished, else its ``metrics.jsonl``."""
    if record.status == "finished" and record.result:
        return [m for m in record.result.get("metrics") or [] if isinstance(m, dict)]
    if not record.log_dir:
        return []
    path = Path(record.log_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # the last line of a stage killed mid-write
            if isinstance(row, dict) and isinstance(row.get("step"), int):
                rows.append(row)
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def training_curves(stages: list[StageRecord]) -> dict[str, list[Curve]]:
    """Every stage's curves on one axis: a stage's step ``n`` is plotted at ``offset + n``, where
    ``offset`` is the number of steps of the stages listed before it."""
    curves: dict[str, list[Curve]] = {title: [] for title in CURVES}
    offset = 0
    for record in stages:
        rows = _training_rows(record)
        for title, keys in CURVES.items():
            key = next((k for k in keys if any(_number(r.get(k)) is not None for r in rows)), None)
            if key is None:
                continue
            points = [(r["step"], _number(r.get(key))) for r in rows]
            kept = [(offset + step, value) for step, value in points if value is not None]
            curves[title].append(Curve(record.name, [x for x, _ in kept], [y for _, y in kept]))
        last = max((r["step"] for r in rows), default=0)
        offset += record.total_steps or last
    return {title: found for title, found in curves.items() if found}


def _ancestors(records: dict[str, StageRecord], name: str) -> list[str]:
    """Parents of ``name`` from the nearest up (``name`` excluded)."""
    chain: list[str] = []
    parent = records[name].parent
    while parent is not None and parent in records and parent not in chain:
        chain.append(parent)
        parent = records[parent].parent
    return chain


def build_report(
    manifest: RunManifest, tolerance: float = DEFAULT_TOLERANCE, registry: RegistryConfig | None = None
) -> ReportData:
    """``registry`` gives each domain's direction (``max``: higher is better) and the metric name."""
    records = {r.name: r for r in manifest.stages}
    scores = {r.name: _scores(r) for r in manifest.stages}
    domains: list[str] = []
    for record in manifest.stages:
        domains += [d for d in scores[record.name] if d not in domains]
    registry = registry or RegistryConfig()
    directions = {d: registry.direction_for(d) for d in domains}
    cells: dict[str, dict[str, Cell]] = {d: {} for d in domains}
    events: list[str] = []
    for record in manifest.stages:
        ancestors = _ancestors(records, record.name)
        parent = ancestors[0] if ancestors else None
        for domain in domains:
            sign = 1.0 if directions[domain] == "max" else -1.0
            score = scores[record.name].get(domain)
            cell = Cell(score=score, trained=domain in record.domains)
            before = scores[parent].get(domain) if parent else None
            if score is not None and before is not None:
                cell.delta = score - before
                gain = sign * cell.delta
                earlier = [scores[a][domain] for a in ancestors[1:] if domain in scores[a]]
                peak = max((sign * s for s in earlier), default=-math.inf)
                if gain < -tolerance:
                    cell.mark = "forgetting"
                    events.append(
                        f"**forgetting**: `{domain}` fell {before:.3f} → {score:.3f} ({cell.delta:+.3f}) in "
                        f"`{record.name}` ({record.kind}{', trained on it' if cell.trained else ''}), "
                        f"started from `{parent}`"
                    )
                elif gain > tolerance and peak > sign * before + tolerance:
                    cell.mark = "recovery"
                    events.append(
                        f"**recovery**: `{domain}` rose {before:.3f} → {score:.3f} ({cell.delta:+.3f}) in "
                        f"`{record.name}` ({record.kind}); best earlier on its line: {sign * peak:.3f}"
                    )
            cells[domain][record.name] = cell
    main_line: list[str] = []
    if manifest.stages:
        last = manifest.stages[-1].name
        main_line = [*reversed(_ancestors(records, last)), last]
    return ReportData(
        name=manifest.name or "cascade",
        status=manifest.status,
        metric=registry.metric,
        tolerance=tolerance,
        stages=list(manifest.stages),
        domains=domains,
        cells=cells,
        main_line=main_line,
        directions=directions,
        events=events,
        curves=training_curves(list(manifest.stages)),
    )


def _cell_text(cell: Cell) -> str:
    if cell.score is None:
        return "–"
    text = f"{cell.score:.3f}"
    if cell.delta is not None:
        text += f" ({cell.delta:+.3f})"
    if cell.trained:
        text += " †"
    if cell.mark == "forgetting":
        return f"**{text} ▼**"
    if cell.mark == "recovery":
        return f"**{text} ▲**"
    return text


def render_markdown(data: ReportData, plot_name: str | None = None) -> str:
    lines = [f"# Cascade report: {data.name}", "", f"Run status: **{data.status}**.", "", "## Stages", ""]
    lines += ["| # | stage | kind | starts from | trains | steps | status |", "|---|---|---|---|---|---|---|"]
    for index, record in enumerate(data.stages, start=1):
        metrics = (record.result or {}).get("metrics") or []
        steps = str(metrics[-1].get("step", len(metrics))) if metrics else "–"
        start = record.parent or record.start
        if record.branch:
            start += " (branch)"
        lines.append(
            f"| {index} | {record.name} | {record.kind} | {start} | {', '.join(record.domains)} | {steps} | "
            f"{record.status} |"
        )
    lines += ["", "## Validation score after each stage", ""]
    if not data.domains:
        lines.append("No stage has finished with validation scores yet.")
    else:
        lines.append("| domain | " + " | ".join(r.name for r in data.stages) + " |")
        lines.append("|---|" + "---|" * len(data.stages))
        for domain in data.domains:
            arrow = "↑" if data.directions[domain] == "max" else "↓"
            row = [_cell_text(data.cells[domain][r.name]) for r in data.stages]
            lines.append(f"| {domain} ({arrow}) | " + " | ".join(row) + " |")
        lines += [
            "",
            f"Each cell: score (change vs the stage it started from). † the stage trains this domain. "
            f"**▼** forgetting: worse by more than {data.tolerance:g}. **▲** recovery: better by more than "
            f"{data.tolerance:g} after an earlier drop on the same line of checkpoints.",
            "",
            "## Forgetting and recovery",
            "",
        ]
        lines += [f"- {event}" for event in data.events] or ["None beyond the tolerance."]
    teachers = [(r.name, d, t) for r in data.stages for d, t in r.teachers.items()]
    if teachers:
        lines += ["", "## Teachers", ""]
        for stage, domain, teacher in teachers:
            source = teacher.get("stage") or teacher["checkpoint"]["path"]
            step = f" step {teacher['step']}" if teacher.get("step") is not None else ""
            score = f" ({data.metric} {teacher['score']:.3f})" if teacher.get("score") is not None else ""
            lines.append(f"- `{stage}` learned `{domain}` from `{source}`{step}{score}, rule: {teacher.get('rule')}")
    if plot_name:
        shown = ["validation scores"] if data.domains else []
        shown += ["training curves"] if data.curves else []
        lines += ["", f"![{' and '.join(shown)} through the cascade]({plot_name})"]
    return "\n".join(lines) + "\n"


def render_plot(data: ReportData, path: Path) -> Path | None:
    """The validation scores (a line per domain over the main line of stages; side-branch stages
    as separate markers) above the training curves (one panel per metric of :data:`CURVES`, a
    colour per stage). Returns ``None`` when matplotlib is not installed (the ``local`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    panels = list(data.curves)
    width = max(6.0, 1.3 * len(data.stages) + 2, 4.2 * len(panels))
    rows = int(bool(data.domains)) + int(bool(panels))
    fig = plt.figure(figsize=(width, 4.2 * rows))
    grid = fig.add_gridspec(rows, max(1, len(panels)))
    if data.domains:
        _plot_scores(data, fig.add_subplot(grid[0, :]))
    colours = {r.name: f"C{i % 10}" for i, r in enumerate(data.stages)}
    for column, title in enumerate(panels):
        ax = fig.add_subplot(grid[rows - 1, column])
        for curve in data.curves[title]:
            ax.plot(curve.steps, curve.values, color=colours[curve.stage], label=curve.stage, linewidth=1.2)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("optimizer step (through the cascade)", fontsize=8)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    try:
        with atomic_writer(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=120)
    finally:
        plt.close(fig)
    return path


def _plot_scores(data: ReportData, ax: Any) -> None:
    names = [r.name for r in data.stages]
    for domain in data.domains:
        xs = [names.index(n) for n in data.main_line if data.cells[domain][n].score is not None]
        ys = [data.cells[domain][names[x]].score for x in xs]
        (line,) = ax.plot(xs, ys, marker="o", label=domain)
        for x, y in zip(xs, ys, strict=True):
            ax.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        branch = [(i, data.cells[domain][n].score) for i, n in enumerate(names) if n not in data.main_line]
        branch = [(i, s) for i, s in branch if s is not None]
        if branch:
            ax.scatter([i for i, _ in branch], [s for _, s in branch], marker="D", facecolors="none",
                       edgecolors=line.get_color(), label=f"{domain} (side branch)")
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{r.name}\n({r.kind})" for r in data.stages], fontsize=9)
    ax.set_ylabel(f"validation {data.metric}")
    ax.set_title(f"{data.name}: validation score after each stage")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def write_report(
    run_dir: str | Path, output_dir: str | Path | None = None, tolerance: float = DEFAULT_TOLERANCE
) -> tuple[Path, Path | None, str]:
    """Write ``report.md`` and ``report.png`` (into ``output_dir``, default ``run_dir``);
    returns their paths and the Markdown text."""
    run_dir = Path(run_dir)
    out = Path(output_dir) if output_dir is not None else run_dir
    manifest = load_manifest(run_dir)  # first: a folder that is no run gets nothing written
    out.mkdir(parents=True, exist_ok=True)
    data = build_report(manifest, tolerance, _registry_config(run_dir))
    png = render_plot(data, out / "report.png") if data.domains or data.curves else None
    text = render_markdown(data, png.name if png else None)
    md = out / "report.md"
    write_text_atomic(md, text)
    return md, png, text


def _registry_config(run_dir: Path) -> RegistryConfig | None:
    """The run's ``registry:`` section from its config snapshot (directions, metric name)."""
    snapshot = run_dir / "config.yaml"
    if not snapshot.is_file():
        return None
    try:
        data = yaml.safe_load(snapshot.read_text(encoding="utf-8")) or {}
        return RegistryConfig.model_validate(data.get("registry") or {})
    except (yaml.YAMLError, ValidationError, AttributeError):
        return None
