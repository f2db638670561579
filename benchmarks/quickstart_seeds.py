"""The quickstart cascade over several seeds: every stage's validation score, mean ± sd.

Runs ``configs/quickstart.yaml`` (or ``--config``) once per seed through the real sequencer and the
embedded host, in one process, with ``seed=<s>`` overriding the cascade seed (model initialisation
and every stage's sampling; the generated data stay the same). Each run's anchor is its own SFT
stage: the table shows each stage's score and its change against that anchor, the MOPD teachers'
scores, the share of each teacher's gain over the anchor that MOPD holds, and the share of greedy
answers that think (``<think>`` followed by work) per stage: the habit each RL stage changes.

    nice -n 5 .venv/bin/python benchmarks/quickstart_seeds.py --out /tmp/qs_seeds
    .venv/bin/python benchmarks/quickstart_seeds.py --seeds 0 1 --config configs/quickstart_ci.yaml
    .venv/bin/python benchmarks/quickstart_seeds.py --from /tmp/qs_seeds   # summarise finished runs again

With ``--from DIR`` nothing is trained: the finished runs ``DIR/seed_<s>`` are read as they are
(wall time from their manifests, CPU time not known).

Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import time
from collections import Counter
from pathlib import Path

import yaml
from local_quickstart_tuning import cpu_seconds  # this folder is on sys.path when run as a script

from cascade_plugins.backends.local.data import load_rows
from cascade_plugins.cascade.loading import load_cascade_config
from cascade_plugins.cascade.manifest import RunManifest, load_manifest
from cascade_plugins.cascade.report import build_report, recoveries, write_report
from cascade_plugins.cascade.resolve import resolve_plan
from cascade_plugins.cascade.sequencer import Sequencer

REPO = Path(__file__).resolve().parents[1]


def max_new_tokens(run_dir: Path) -> int:
    """The answer budget the run's stages generated with (its config snapshot's common hparams)."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8"))
    return int(config["hparams"]["common"]["max_new_tokens"])


def thinking_share(checkpoint: str, data_path: str, max_new_tokens: int) -> float:
    """Share of greedy answers on ``data_path``'s prompts that start thinking (work after ``<think>``)."""
    from transformers.utils import logging

    from cascade_plugins.backends.local.policy import load_policy
    from cascade_plugins.backends.local.rollout import generate

    logging.disable_progress_bar()  # one "Loading weights" bar per checkpoint would bury the table
    policy = load_policy(checkpoint)
    rows = load_rows(data_path)
    out = generate(policy, [policy.encode_prompt(r["prompt"]) for r in rows], max_new_tokens, greedy=True,
                   batch_size=200)
    return sum(text.startswith("<think>") and not text.startswith("<think></think>") for text in out.texts) / len(rows)


def run_seed(config_path: Path, seed: int, run_dir: Path) -> tuple[RunManifest, float, float]:
    config, loaded = load_cascade_config(config_path, [f"seed={seed}"])
    plan = resolve_plan(config, loaded, run_dir=run_dir)
    wall, cpu = time.perf_counter(), cpu_seconds()
    manifest = Sequencer(plan, config_data=loaded.data).run()
    return manifest, time.perf_counter() - wall, cpu_seconds() - cpu


def mean_sd(values: list[float], digits: int = 3) -> str:
    if not values:
        return "–"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO / "configs" / "quickstart.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="/tmp/quickstart_seeds")
    parser.add_argument("--no-modes", action="store_true", help="skip the thinking-share measurement")
    parser.add_argument("--from", dest="from_dir", metavar="DIR",
                        help="summarise the finished runs DIR/seed_<s> instead of training (nothing is written)")
    args = parser.parse_args()

    root = Path(args.from_dir or args.out)
    if not args.from_dir:
        shutil.rmtree(root, ignore_errors=True)
    scores: dict[tuple[str, str], list[float]] = {}
    deltas: dict[tuple[str, str], list[float]] = {}
    teacher: dict[str, list[float]] = {}
    shares: dict[str, list[float]] = {}
    thinking: dict[tuple[str, str], list[float]] = {}
    losses: dict[str, list[tuple[str, float]]] = {}
    walls: list[float] = []
    cpus: list[float] = []
    stages: list[str] = []
    domains: list[str] = []
    for seed in args.seeds:
        run_dir = root / f"seed_{seed}"
        if args.from_dir:
            manifest = load_manifest(run_dir)
            if manifest.status != "finished":
                raise SystemExit(f"{run_dir}: the run is {manifest.status}, not finished")
            wall, cpu = manifest.updated_at - manifest.created_at, None
        else:
            manifest, wall, cpu = run_seed(Path(args.config), seed, run_dir)
            write_report(run_dir)
            cpus.append(cpu)
        walls.append(wall)
        data = build_report(manifest)
        stages, domains = [r.name for r in manifest.stages], data.domains
        anchor = stages[0]
        for domain in domains:
            for stage in stages:
                score = data.cells[domain][stage].score
                if score is None:
                    continue
                scores.setdefault((stage, domain), []).append(score)
                deltas.setdefault((stage, domain), []).append(score - data.cells[domain][anchor].score)  # type: ignore[operator]
        for domain in domains:
            line = [(n, s) for n in data.main_line if (s := data.cells[domain][n].score) is not None]
            worst = min(((b - a, stage) for (_, a), (stage, b) in itertools.pairwise(line)), default=None)
            if worst is not None:
                losses.setdefault(domain, []).append((worst[1], worst[0]))
        for item in recoveries(data):
            teacher.setdefault(item.domain, []).append(item.teacher_score)
            if item.recovered is not None:
                shares.setdefault(item.domain, []).append(item.recovered)
        line = [f"seed {seed}: {wall:.0f} s wall" + (f", {cpu:.0f} s CPU;" if cpu is not None else ";")]
        for stage in stages:
            line.append(f"{stage} " + "/".join(f"{data.cells[d][stage].score:.3f}" for d in domains))
        print(" ".join(line), flush=True)
        if not args.no_modes:
            budget = max_new_tokens(run_dir)
            for record in manifest.stages:
                checkpoint = (record.result or {}).get("checkpoint", {}).get("path")
                for domain in domains:
                    data_path = manifest.datasets[f"{domain}_val"]["path"]
                    thinking.setdefault((record.name, domain), []).append(
                        thinking_share(checkpoint, data_path, budget)
                    )

    seeds = ", ".join(map(str, args.seeds))
    print(f"\nValidation accuracy over seeds {seeds} (mean ± sd; Δ against each run's own `{stages[0]}`):\n")
    header = "| stage | " + " | ".join(f"{d} | Δ {d}" for d in domains)
    if thinking:
        header += " | " + " | ".join(f"thinks on {d}" for d in domains)
    print(header + " |")
    print("|---|" + "---|---|" * len(domains) + ("---|" * len(domains) if thinking else ""))
    for stage in stages:
        cells = []
        for domain in domains:
            cells += [mean_sd(scores.get((stage, domain), [])), mean_sd(deltas.get((stage, domain), []))]
        if thinking:
            cells += [mean_sd(thinking.get((stage, d), []), 2) for d in domains]
        print(f"| {stage} | " + " | ".join(cells) + " |")
    cells = [cell for d in domains for cell in (mean_sd(teacher.get(d, [])), "")]
    cells += [""] * len(domains) * bool(thinking)
    print("| MOPD teacher | " + " | ".join(cells) + " |")
    print("\nShare of each teacher's gain over the anchor that MOPD holds: "
          + ", ".join(f"{d} {mean_sd([100 * s for s in shares.get(d, [])], 0)} %" for d in domains))
    for domain in domains:
        where = Counter(stage for stage, _ in losses.get(domain, []))
        print(f"Largest one-stage change of {domain}: {mean_sd([v for _, v in losses.get(domain, [])])} ("
              + ", ".join(f"in {stage} on {count} of {len(args.seeds)} seeds" for stage, count in where.items()) + ")")
    cpu_text = f"; CPU: {mean_sd(cpus, 0)} s (with reward workers)" if cpus else ""
    print(f"Wall time per run: {mean_sd(walls, 0)} s{cpu_text}")


if __name__ == "__main__":
    main()
