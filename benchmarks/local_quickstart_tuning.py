"""Tune the quickstart cascade on the embedded host: sft -> grpo(math) -> grpo(code) -> mopd.

Runs the four stages through backend ``local`` with the real ``math`` and ``code`` rewards and the
``mopd`` loss, picks MOPD teachers by validation score (the best final checkpoint per domain; the
cascade's registry also considers mid-stage evaluations), then scores every stage's checkpoint on
held-out *test* prompts and prints a table: the SFT baseline is the anchor
each later stage is compared with, in the same run. Wall and CPU seconds per stage are printed too
(the CPU seconds are what to compare on a shared machine).

    nice -n 5 .venv/bin/python benchmarks/local_quickstart_tuning.py --out /tmp/qs
    .venv/bin/python benchmarks/local_quickstart_tuning.py --sft-steps 300 --set grpo_math.lr=3e-4

Not a pass/fail test.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import yaml

from cascade_plugins.backends.local import LocalBackend
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageResult, StageSpec
from cascade_plugins.plugins import get_registry

#: the recommended quickstart settings (docs/local-backend.md)
MODEL: dict[str, Any] = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 256,
    "max_position_embeddings": 96,
    "tokenizer": {"type": "char", "words": ["<think>", "</think>"]},
}
DATA = {
    "math": ("arithmetic", {"max_operand": 49, "thinking": 0.5}, 2500),
    "code": ("string_functions", {"thinking": 0.7}, 3000),
}
EVAL_ROWS = 300
REWARDS = {"math": RewardSpec("math"), "code": RewardSpec("code", {"require_fence": False})}
COMMON: dict[str, Any] = {"max_new_tokens": 28, "save_every": 50}
STAGES: dict[str, dict[str, Any]] = {
    "sft": {
        "steps": 600,
        "lr": 5e-3,
        "warmup_steps": 20,
        "lr_schedule": "cosine",
        "batch_size": 64,
        "domain_weights": {"math": 0.6, "code": 0.4},
    },
    "grpo_math": {
        "steps": 40, "lr": 1e-4, "prompts_per_step": 32, "samples_per_prompt": 8, "temperature": 0.6, "eval_every": 10,
    },
    "grpo_code": {
        "steps": 40, "lr": 5e-4, "prompts_per_step": 16, "samples_per_prompt": 8, "temperature": 1.0, "eval_every": 10,
    },
    "mopd": {"steps": 40, "lr": 1e-4, "prompts_per_domain": 32, "warmup_steps": 5},
}


class PrintReporter:
    def __init__(self, every: int) -> None:
        self.every = every
        self.name = ""

    def start(self, total_steps: int, description: str = "") -> None:
        self.name = description
        print(f"  {description}: {total_steps} steps", flush=True)

    def step(self, step: int, metrics: dict[str, Any]) -> None:
        if step % self.every == 0:
            shown = {k: round(v, 3) for k, v in metrics.items() if isinstance(v, float) and k != "lr"}
            print(f"    {step}: {shown}", flush=True)

    def log(self, message: str) -> None:
        print(f"    {message}", flush=True)


def write_rows(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def make_data(root: Path, seed: int) -> dict[str, dict[str, str]]:
    registry = get_registry()
    files: dict[str, dict[str, str]] = {}
    for domain, (generator, options, n) in DATA.items():
        files[domain] = {}
        for split, count in (("train", n), ("validation", EVAL_ROWS), ("test", EVAL_ROWS)):
            rows = list(registry.make_dataset(generator, n=count, seed=seed, split=split, **options))
            files[domain][split] = write_rows(root / f"{domain}_{split}.jsonl", rows)
    return files


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children (reward sandboxes, worker pools)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def set_override(stages: dict[str, dict[str, Any]], assignment: str) -> None:
    key, _, value = assignment.partition("=")
    stage, _, field = key.partition(".")
    if stage not in stages or not field:
        raise SystemExit(f"--set {assignment}: expected <stage>.<key>=<value> with stage in {list(stages)}")
    stages[stage][field] = yaml.safe_load(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="/tmp/local_quickstart_tuning")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sft-steps", type=int)
    parser.add_argument("--set", action="append", default=[], help="<stage>.<key>=<yaml value>")
    parser.add_argument("--mopd-init", choices=["previous", "sft"], default="previous")
    parser.add_argument("--every", type=int, default=50, help="print metrics every N steps")
    parser.add_argument(
        "--reuse-sft",
        help="the output folder of an earlier run with the same data, seed and sft settings: its finished "
        "sft stage is reused (stages are deterministic per seed), so only the RL stages run again",
    )
    args = parser.parse_args()

    stages = {name: dict(COMMON, **hp) for name, hp in STAGES.items()}
    if args.sft_steps:
        stages["sft"]["steps"] = args.sft_steps
    for assignment in args.set:
        set_override(stages, assignment)

    root = Path(args.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    files = make_data(root, args.seed)
    if args.reuse_sft:
        shutil.copytree(Path(args.reuse_sft) / "sft", root / "sft")
    validation = {d: (files[d]["validation"], REWARDS[d]) for d in files}
    backend = LocalBackend(get_registry(["local", "math", "code", "mopd"]))
    reporter = PrintReporter(args.every)
    results: dict[str, StageResult] = {}
    timing: dict[str, tuple[float, float]] = {}

    def run(name: str, kind: str, domains: list[str], init: CheckpointRef | None, **extra: Any) -> StageResult:
        spec = StageSpec(
            name=name,
            kind=kind,  # type: ignore[arg-type]
            data={d: files[d]["train"] for d in domains},
            rewards={d: REWARDS[d] for d in domains},
            hparams=stages[name],
            output_dir=str(root / name),
            init=init,
            eval=validation,
            model=MODEL,
            seed=args.seed,
            **extra,
        )
        problems = [p for p in backend.check(spec) if p.is_error]
        if problems:
            raise SystemExit("\n".join(map(str, problems)))
        wall, cpu = time.perf_counter(), cpu_seconds()
        result = backend.run_stage(spec, reporter)
        timing[name] = (time.perf_counter() - wall, cpu_seconds() - cpu)
        results[name] = result
        return result

    started = time.perf_counter(), cpu_seconds()
    sft = run("sft", "sft", ["math", "code"], None)
    math_rl = run("grpo_math", "grpo", ["math"], sft.checkpoint)
    code_rl = run("grpo_code", "grpo", ["code"], math_rl.checkpoint)
    teachers = {}
    for domain in ("math", "code"):
        best = max(results.values(), key=lambda r: r.validation[domain])  # ties: the earlier stage
        teachers[domain] = best.checkpoint
        print(f"  teacher for {domain}: {best.stage} (validation {best.validation[domain]:.3f})")
    mopd_init = code_rl.checkpoint if args.mopd_init == "previous" else sft.checkpoint
    run("mopd", "mopd", ["math", "code"], mopd_init, teachers=teachers)
    total_wall, total_cpu = time.perf_counter() - started[0], cpu_seconds() - started[1]

    # held-out test scores of every stage's checkpoint (not used for any choice above)
    test_sets = {d: (files[d]["test"], REWARDS[d]) for d in files}
    test_scores: dict[str, dict[str, float]] = {}
    for name, result in results.items():
        spec = StageSpec(
            name=f"test_{name}",
            kind="sft",
            data={"math": files["math"]["train"]},
            rewards={},
            hparams={"steps": 1, "lr": 1e-9, "max_new_tokens": COMMON["max_new_tokens"]},
            output_dir=str(root / f"test_{name}"),
            init=result.checkpoint,
            eval=test_sets,
        )
        scored = _score_checkpoint(backend, spec)
        test_scores[name] = scored

    anchor = test_scores["sft"]
    print("\n| stage | wall s | cpu s | math val | code val | math test | code test | Δ math | Δ code |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        wall, cpu = timing[name]
        t, v = test_scores[name], result.validation
        print(
            f"| {name} | {wall:.0f} | {cpu:.0f} | {v['math']:.3f} | {v['code']:.3f} | {t['math']:.3f} "
            f"| {t['code']:.3f} | {t['math'] - anchor['math']:+.3f} | {t['code'] - anchor['code']:+.3f} |"
        )
    print(f"\ncascade total: {total_wall:.0f} s wall, {total_cpu:.0f} s CPU (with reward workers)")
    print("stage hparams:\n" + yaml.safe_dump(stages, sort_keys=False))


def _score_checkpoint(backend: LocalBackend, spec: StageSpec) -> dict[str, float]:
    """Greedy test accuracy of ``spec.init`` without training it (evaluation of a one-step stage
    would change the weights, so evaluate the checkpoint directly)."""
    from cascade_plugins.backends.local.backend import _StageRun
    from cascade_plugins.backends.local.policy import load_policy

    run = _StageRun(backend, spec, PrintReporter(10**9))
    assert spec.init is not None
    try:
        return run.evaluate(load_policy(spec.init.path), run._eval_sets())
    finally:
        for reward in run.rewards.values():
            reward.close()


if __name__ == "__main__":
    main()
