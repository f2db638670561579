"""Recall on hard-to-verify answers: the ``math`` reward beside Math-Verify 0.9.0 on the same pairs.

The set is HardVerify-Math (TinyV, arXiv:2505.14625): 250 questions, each with a gold answer, a
*correct* answer that rule-based verifiers tend to reject (``fn_output``) and a *wrong* one
(``tn_output``). It is public but not part of this project: pass the path of its JSON file
(``benchmarks/HardVerify-Math.json`` in github.com/uw-nsl/TinyV); nothing of it is stored here.

Rows: the rules with default options; the rules with ``allow_set_relation_comp`` (a gold interval
also accepts the inequality describing it); with ``--judge-url``, the rules plus the model-verifier
fallback through that OpenAI-compatible endpoint; Math-Verify when installed
(``pip install "math-verify[antlr4_13_2]==0.9.0"``), called as NeMo RL's math environment calls it.

Run:  python benchmarks/hard_verify_bench.py PATH/HardVerify-Math.json [--judge-url URL --judge-model NAME]
      [--misses] [--json out.json]
Throughput is pairs per second in one process on a shared machine: compare the ratio, not the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import mv_adapter
from rich.console import Console
from rich.table import Table

from cascade_plugins.interfaces import Sample
from cascade_plugins.rewards.math import MathOptions, MathReward, verify

console = Console()


def load_pairs(path: Path) -> list[dict[str, str]]:
    rows = json.loads(path.read_text())
    if not isinstance(rows, list) or not rows:
        raise SystemExit(f"{path}: expected a JSON list of HardVerify-Math rows")
    for index, row in enumerate(rows):
        missing = {"question", "ground_truth", "fn_output", "tn_output"} - set(row)
        if missing:
            raise SystemExit(f"{path}: row {index} lacks {', '.join(sorted(missing))}")
    return rows


def _rules(options: MathOptions) -> Callable[[dict[str, str], str], bool]:
    return lambda row, answer: verify(f"\\boxed{{{answer}}}", row["ground_truth"], options).verdict == "correct"


def _math_verify(row: dict[str, str], answer: str) -> bool:
    try:
        # both boxed, as our reward gets them; the gold without its $ delimiters so that it sits in the box
        return mv_adapter.verify_pair(row["ground_truth"].strip().strip("$"), f"\\boxed{{{answer}}}")
    except Exception:
        return False


def measure(name: str, check: Callable[[dict[str, str], str], bool], rows: list[dict[str, str]]) -> dict[str, Any]:
    check(rows[0], rows[0]["fn_output"])  # imports and caches outside the timing
    started = time.perf_counter()
    accepted = [check(row, row["fn_output"]) for row in rows]
    false_positive = [check(row, row["tn_output"]) for row in rows]
    elapsed = time.perf_counter() - started
    return {
        "verifier": name,
        "recall": sum(accepted),
        "false_positives": sum(false_positive),
        "pairs_per_s": 2 * len(rows) / elapsed,
        "missed": [row["id"] for row, ok in zip(rows, accepted, strict=True) if not ok],
        "accepted_wrong": [row["id"] for row, bad in zip(rows, false_positive, strict=True) if bad],
    }


def measure_with_judge(rows: list[dict[str, str]], url: str, model: str) -> dict[str, Any]:
    reward = MathReward(judge={"url": url, "model": model, "deadline": 600, "request_timeout": 60})
    try:
        started = time.perf_counter()
        results = {
            kind: reward.score(
                [
                    Sample(f"\\boxed{{{row[kind]}}}", prompt=row["question"], ground_truth=row["ground_truth"])
                    for row in rows
                ]
            )
            for kind in ("fn_output", "tn_output")
        }
        elapsed = time.perf_counter() - started
    finally:
        reward.close()
    return {
        "verifier": f"math reward + judge ({model})",
        "recall": sum(r.verdict == "correct" for r in results["fn_output"]),
        "false_positives": sum(r.verdict == "correct" for r in results["tn_output"]),
        "pairs_per_s": 2 * len(rows) / elapsed,
        "judge_metrics": dict(reward.judge_metrics),
        "missed": [row["id"] for row, r in zip(rows, results["fn_output"], strict=True) if r.verdict != "correct"],
        "accepted_wrong": [
            row["id"] for row, r in zip(rows, results["tn_output"], strict=True) if r.verdict == "correct"
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pairs", type=Path, help="HardVerify-Math.json")
    parser.add_argument(
        "--judge-url", help="OpenAI-compatible base URL of a judge model (e.g. http://127.0.0.1:8000/v1)"
    )
    parser.add_argument("--judge-model", default="judge")
    parser.add_argument("--misses", action="store_true", help="print the ids each verifier gets wrong")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    rows = load_pairs(args.pairs)
    results = [
        measure("math reward, rules (defaults)", _rules(MathOptions()), rows),
        measure("math reward, rules, allow_set_relation_comp", _rules(MathOptions(allow_set_relation_comp=True)), rows),
    ]
    if args.judge_url:
        results.append(measure_with_judge(rows, args.judge_url, args.judge_model))
    if mv_adapter.available():
        results.append(measure("Math-Verify 0.9.0", _math_verify, rows))
    else:
        console.print("Math-Verify is not installed: its row is left out")
    table = Table(title=f"HardVerify-Math: {len(rows)} correct and {len(rows)} wrong answers")
    for column in ("verifier", "recall (correct accepted)", "false positives (wrong accepted)", "pairs/s"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r["verifier"],
            f"{r['recall']} ({100 * r['recall'] / len(rows):.1f}%)",
            str(r["false_positives"]),
            f"{r['pairs_per_s']:.0f}",
        )
    console.print(table)
    if args.misses:
        for r in results:
            console.print(f"{r['verifier']}: missed {r['missed']}; accepted wrong {r['accepted_wrong']}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
