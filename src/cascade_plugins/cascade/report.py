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

A second section and ``recovery.png`` set each score against its standard error and each MOPD
stage's teachers: the share of a teacher's gain the student holds, and the MOPD step metrics.
"""

from __future__ import annotations

import itertools
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

__all__ = [
    "CURVES",
    "Cell",
    "Curve",
    "Recovery",
    "ReportData",
    "build_report",
    "eval_sizes",
    "recoveries",
    "render_markdown",
    "render_plot",
    "render_recovery_markdown",
    "render_recovery_plot",
    "standard_error",
    "write_report",
]

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


def _pyplot() -> Any | None:
    """``matplotlib.pyplot`` on the Agg backend; ``None`` without matplotlib (the ``local`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def _save_png(plt: Any, fig: Any, path: Path, dpi: int) -> Path:
    """Lay ``fig`` out, write it to ``path`` atomically, and close it (also on failure)."""
    fig.tight_layout()
    try:
        with atomic_writer(path, "wb") as handle:
            fig.savefig(handle, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return path


def render_plot(data: ReportData, path: Path) -> Path | None:
    """The validation scores (a line per domain over the main line of stages; side-branch stages
    as separate markers) above the training curves (one panel per metric of :data:`CURVES`, a
    colour per stage). Returns ``None`` when matplotlib is not installed (the ``local`` extra)."""
    plt = _pyplot()
    if plt is None:
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
    return _save_png(plt, fig, path, dpi=120)


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
    if data.domains:
        sizes = eval_sizes(run_dir, manifest)
        recovery_png = render_recovery_plot(data, sizes, out / "recovery.png")
        text += render_recovery_markdown(data, sizes, recovery_png.name if recovery_png else None)
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


# -- forgetting and recovery through MOPD ------------------------------------------------------------
#
# The paper's view of a cascade: every domain's score after every stage against the level of the
# teacher MOPD distils it from, with each score's standard error so that a drop or a recovery can be
# told from evaluation noise, and the MOPD step metrics that show the student closing on its teachers.

#: MOPD step metrics shown in the report, in this order (``reverse_kl/<domain>`` come first)
_MOPD_METRICS = (("is_oob_fraction", "IcePop out-of-band"), ("advantage_abs_mean", "mean abs. advantage"))
_MAX_METRIC_ROWS = 16


@dataclass
class Recovery:
    """One domain of one MOPD stage: its teacher's gain over the anchor (the first stage) and how
    much of it the MOPD student holds."""

    stage: str
    domain: str
    anchor: float
    teacher: str
    teacher_score: float
    before: float
    after: float

    @property
    def teacher_gain(self) -> float:
        return self.teacher_score - self.anchor

    @property
    def recovered(self) -> float | None:
        """``(after - anchor) / (teacher - anchor)``: 1.0 is the teacher's level; ``None`` when the
        teacher is no better than the anchor (nothing to recover)."""
        return (self.after - self.anchor) / self.teacher_gain if self.teacher_gain > 0 else None


def standard_error(score: float, n: int | None) -> float | None:
    """Standard error of a mean 0/1 reward (accuracy) over ``n`` prompts: ``sqrt(p(1-p)/n)``."""
    if not n or not 0.0 <= score <= 1.0:
        return None
    return math.sqrt(score * (1.0 - score) / n)


def eval_sizes(run_dir: str | Path, manifest: RunManifest) -> dict[str, int]:
    """Validation prompts per domain, from the run's config snapshot: a generated set's row count,
    or the lines of a JSONL file (capped by ``hparams.common.eval_max_samples``)."""
    snapshot = Path(run_dir) / "config.yaml"
    try:
        config = yaml.safe_load(snapshot.read_text(encoding="utf-8")) or {}
        sets = (config.get("eval") or {}).get("sets") or {}
        cap = ((config.get("hparams") or {}).get("common") or {}).get("eval_max_samples")
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    sizes: dict[str, int] = {}
    for domain, entry in sets.items():
        name = entry.get("data") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue
        if name in manifest.datasets:
            rows = manifest.datasets[name].get("rows")
        else:
            path = Path(name) if Path(name).is_absolute() else Path(manifest.base_dir) / name
            try:
                rows = sum(1 for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
            except OSError:
                continue
        if isinstance(rows, int) and rows > 0:
            sizes[domain] = min(rows, cap) if isinstance(cap, int) and cap > 0 else rows
    return sizes


def _score(cells: dict[str, Cell], stage: str) -> float | None:
    return cells[stage].score if stage in cells else None


def recoveries(data: ReportData) -> list[Recovery]:
    """Per finished MOPD stage and domain with a scored teacher: anchor, teacher, before and after."""
    if not data.stages:
        return []
    first = data.main_line[0] if data.main_line else data.stages[0].name
    out: list[Recovery] = []
    for record in data.stages:
        if record.kind != "mopd" or record.status != "finished" or record.parent is None:
            continue
        for domain, teacher in sorted(record.teachers.items()):
            cells = data.cells.get(domain, {})
            anchor, before, after = (_score(cells, n) for n in (first, record.parent, record.name))
            score = teacher.get("score")
            if score is None or anchor is None or before is None or after is None:
                continue
            source = teacher.get("stage") or teacher["checkpoint"]["path"]
            step = f" step {teacher['step']}" if teacher.get("step") is not None else ""
            out.append(Recovery(record.name, domain, anchor, f"{source}{step}", float(score), before, after))
    return out


def _in_se(delta: float, a: float, b: float, n: int | None) -> str:
    se_a, se_b = standard_error(a, n), standard_error(b, n)
    if se_a is None or se_b is None or se_a + se_b == 0:
        return ""
    return f", {abs(delta) / math.hypot(se_a, se_b):.1f} SE"


def render_recovery_markdown(data: ReportData, sizes: dict[str, int], plot_name: str | None = None) -> str:
    """The recovery table, the largest drop of each domain, and the MOPD step metrics."""
    items = recoveries(data)
    lines = ["", "## Forgetting and recovery through MOPD", ""]
    if sizes:
        noise = ", ".join(
            f"`{d}` ±{0.5 / math.sqrt(n):.3f} at most (n = {n})" for d, n in sorted(sizes.items()) if d in data.domains
        )
        lines += [
            f"Standard error of a score (sqrt(p(1−p)/n) over n validation prompts): {noise}. A change counts as "
            "beyond noise at 2 SE or more, SE = sqrt(SE₁² + SE₂²) (conservative: both scores use the same prompts).",
            "",
        ]
    for domain in data.domains:
        scored = [(n, s) for n in data.main_line if (s := data.cells[domain][n].score) is not None]
        steps = [(a, b, stage) for (_, a), (stage, b) in itertools.pairwise(scored)]
        sign = 1.0 if data.directions[domain] == "max" else -1.0
        worst = min(steps, key=lambda d: sign * (d[1] - d[0]), default=None)
        if worst is not None and sign * (worst[1] - worst[0]) < 0:
            a, b, stage = worst
            change = f"{b - a:+.3f}{_in_se(b - a, a, b, sizes.get(domain))}"
            lines.append(f"- largest loss of `{domain}` in one stage: {a:.3f} → {b:.3f} ({change}) in `{stage}`")
    if items:
        lines += ["", "| MOPD stage | domain | anchor | teacher | teacher's gain | before MOPD | after MOPD | "
                  "share of the teacher's gain |", "|---|---|---|---|---|---|---|---|"]
        for r in items:
            share = f"**{r.recovered:.0%}**" if r.recovered is not None else "– (teacher ≤ anchor)"
            n = sizes.get(r.domain)
            gain = f"{r.teacher_gain:+.3f}{_in_se(r.teacher_gain, r.anchor, r.teacher_score, n)}"
            change = f"{r.after - r.before:+.3f}{_in_se(r.after - r.before, r.before, r.after, n)}"
            lines.append(
                f"| {r.stage} | {r.domain} | {r.anchor:.3f} | {r.teacher_score:.3f} ({r.teacher}) | {gain} | "
                f"{r.before:.3f} | {r.after:.3f} ({change}) | {share} |"
            )
        lines += ["", f"Anchor: `{data.main_line[0] if data.main_line else data.stages[0].name}`, the first stage. "
                  "Share = (after − anchor) / (teacher − anchor); 100 % is the teacher's level."]
    for record in data.stages:
        if record.kind == "mopd" and record.result:
            lines += ["", *_mopd_metrics_table(record)]
    if plot_name:
        lines += ["", f"![scores after every stage against the MOPD teachers]({plot_name})"]
    return "\n".join(lines) + "\n"


def _mopd_metrics_table(record: StageRecord) -> list[str]:
    metrics = [m for m in (record.result or {}).get("metrics") or [] if isinstance(m, dict)]
    kl_keys = sorted({k for m in metrics for k in m if k.startswith("reverse_kl/")})
    keys = [*kl_keys, *(k for k, _ in _MOPD_METRICS if any(k in m for m in metrics))]
    if not metrics or not keys:
        return []
    stride = max(1, math.ceil(len(metrics) / _MAX_METRIC_ROWS))
    rows = [m for i, m in enumerate(metrics) if i % stride == 0 or i == len(metrics) - 1]
    names = [f"reverse KL to the `{k.split('/', 1)[1]}` teacher" for k in kl_keys]
    names += [label for k, label in _MOPD_METRICS if k in keys]
    lines = [
        f"MOPD step metrics of `{record.name}` (every {stride} step{'s' if stride > 1 else ''}): the sampled-token "
        "reverse KL `log π_student − log π_teacher` per token of each domain's rollouts, and the share of "
        "tokens whose train/inference ratio fell outside the IcePop band and was dropped (0 when the sampler "
        "and the trainer are the same model in one process, as on the local host).",
        "",
        "| step | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for m in rows:
        cells = [f"{m[k]:.4f}" if isinstance(m.get(k), int | float) else "–" for k in keys]
        lines.append(f"| {m.get('step', '')} | " + " | ".join(cells) + " |")
    return lines


def render_recovery_plot(data: ReportData, sizes: dict[str, int], path: Path) -> Path | None:
    """One panel per domain (score after every stage of the main line, ±1 SE, forgetting ▼ and
    recovery ▲ marked, the MOPD teacher's score as a dashed line), plus a panel of the MOPD reverse
    KL per step. Returns ``None`` without matplotlib."""
    plt = _pyplot()
    if plt is None:
        return None
    mopd = [r for r in data.stages if r.kind == "mopd" and r.result]
    panels = len(data.domains) + (1 if mopd else 0)
    fig, axes = plt.subplots(1, panels, figsize=(4.2 * panels, 3.8), squeeze=False)
    teachers = {r.domain: r for r in recoveries(data)}
    for ax, domain in zip(axes[0], data.domains, strict=False):
        points = [(n, s) for n in data.main_line if (s := data.cells[domain][n].score) is not None]
        names, ys = [n for n, _ in points], [s for _, s in points]
        errors = [standard_error(y, sizes.get(domain)) or 0.0 for y in ys]
        ax.errorbar(range(len(names)), ys, yerr=errors, marker="o", capsize=3, color="tab:blue", label="score ±1 SE")
        for x, name in enumerate(names):
            cell = data.cells[domain][name]
            if cell.mark:
                down = cell.mark == "forgetting"
                ax.scatter([x], [cell.score], marker="v" if down else "^", s=110, zorder=3,
                           color="tab:red" if down else "tab:green", label=cell.mark)
            ax.annotate(f"{cell.score:.2f}", (x, cell.score), textcoords="offset points", xytext=(0, 8),
                        ha="center", fontsize=8)
        if domain in teachers:
            t = teachers[domain]
            ax.axhline(t.teacher_score, color="tab:gray", linestyle="--", label=f"teacher ({t.teacher})")
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, fontsize=8, rotation=15)
        ax.set_title(f"{domain}")
        ax.set_ylabel(f"validation {data.metric}")
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles, strict=True))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="best")
    if mopd:
        ax = axes[0][-1]
        metrics = [m for m in (mopd[-1].result or {}).get("metrics") or [] if isinstance(m, dict)]
        for key in sorted({k for m in metrics for k in m if k.startswith("reverse_kl/")}):
            ax.plot([m["step"] for m in metrics if key in m], [m[key] for m in metrics if key in m],
                    label=f"reverse KL, {key.split('/', 1)[1]}")
        if any("is_oob_fraction" in m for m in metrics):
            ax.plot([m["step"] for m in metrics if "is_oob_fraction" in m],
                    [m["is_oob_fraction"] for m in metrics if "is_oob_fraction" in m], linestyle=":",
                    color="black", label="IcePop out-of-band share")
        ax.axhline(0.0, color="tab:gray", linewidth=0.8)
        ax.set_title(f"{mopd[-1].name}: student vs teachers")
        ax.set_xlabel("MOPD step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(f"{data.name}: forgetting and recovery")
    return _save_png(plt, fig, path, dpi=110)
