"""Side-by-side benchmark of the ``math`` reward and Math-Verify 0.9.0, in the same run.

Sets:
  (a) labelled pairs: Math-Verify's own 275 (from its sdist, each with its test's settings) and our
      333 labelled pairs across every answer category;
  (b) a realistic stream of long chain-of-thought answers, mostly plain-number final answers, scored
      in GRPO-like groups of 8 samples per question;
  (c) adversarial answers (towers, huge numbers, junk): worst-case latency and hangs.

Math-Verify is not a dependency of this package. Install it into the same environment first:

    pip install "math-verify[antlr4_13_2]==0.9.0"

Run:  python benchmarks/math_bench.py [--stream 800] [--adversarial 120] [--json out.json]
This is a measurement, not a test: the machine is shared and noisy, so both verifiers run in the same
process, interleaved set by set.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "rewards" / "math"
sys.path[:0] = [str(Path(__file__).resolve().parent), str(TESTS)]

import mv_adapter  # noqa: E402
from math_adversarial import adversarial_inputs  # noqa: E402
from math_labelled_pairs import all_pairs  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from cascade_plugins.interfaces import Sample  # noqa: E402
from cascade_plugins.rewards.math import MathOptions, MathReward, verify  # noqa: E402
from cascade_plugins.rewards.workerpool import WorkerPool  # noqa: E402

MV_PAIRS = TESTS / "data" / "math_verify_0.9.0_pairs.jsonl"
#: Labels of Math-Verify's pairs that are wrong: 1 - 1/e is not 1 + 1/e.
LABEL_CORRECTIONS = {("$1 - \\frac{1}{\\mathrm{e}}$", "$1 + \\frac{1}{\\mathrm{e}}$"): 0}
console = Console()


# -- (a) labelled pairs -------------------------------------------------------------------------------


def _our_options(config: dict[str, Any] | None) -> MathOptions:
    if not config or config.get("mode") == "default_parse":
        return MathOptions()
    return MathOptions(
        tolerance=10.0 ** -config.get("precision", 6),
        allow_set_relation_comp=config.get("allow_set_relation_comp", False),
        strict=config.get("strict", True),
    )


def _score_labelled(rows: list[dict[str, Any]], label: str, mv_config_key: str | None) -> dict[str, Any]:
    """Accuracy, false positives and false negatives of both verifiers on labelled rows."""
    result: dict[str, Any] = {"set": label, "pairs": len(rows)}
    verifiers: dict[str, Callable[[dict[str, Any]], bool]] = {
        "ours": lambda r: verify(r["pred"], r["gold"], _our_options(r.get(mv_config_key or ""))).verdict == "correct",
    }
    if mv_adapter.available():
        verifiers["math_verify"] = lambda r: mv_adapter.verify_pair(
            r["gold"], r["pred"], r.get(mv_config_key) if mv_config_key else None
        )
    for name, check in verifiers.items():
        check(rows[0])  # import and warm up outside the timing
        started = time.perf_counter()
        verdicts = [check(r) for r in rows]
        elapsed = time.perf_counter() - started
        labels = [bool(r["expected"]) for r in rows]
        result[name] = {
            "accuracy": sum(v == lab for v, lab in zip(verdicts, labels, strict=True)) / len(rows),
            "false_positives": sum(v and not lab for v, lab in zip(verdicts, labels, strict=True)),
            "false_negatives": sum(lab and not v for v, lab in zip(verdicts, labels, strict=True)),
            "per_second": len(rows) / elapsed,
        }
    return result


def labelled_sets() -> list[dict[str, Any]]:
    mv_rows = [json.loads(line) for line in MV_PAIRS.read_text().splitlines() if line.strip()]
    for row in mv_rows:
        row["expected"] = LABEL_CORRECTIONS.get((row["gold"], row["pred"]), row["expected"])
    ours = [
        {"gold": g, "pred": r, "expected": int(e == "correct"), "category": c}
        for c, g, r, e in all_pairs()
        if e != "no_answer"
    ]
    return [
        _score_labelled(mv_rows, "Math-Verify's own pairs (1 label corrected)", "math_verify_config"),
        _score_labelled(ours, "cascade labelled pairs", None),
    ]


# -- (b) realistic stream ------------------------------------------------------------------------------

_SENTENCES = [
    "Let us denote the unknown quantity by $x$ and write down what we know.",
    "Substituting $a = {a}$ into the second equation gives ${a}b + {b} = {c}$.",
    "We check the boundary case separately: when $n = {a}$, the sum is ${c}$.",
    "Hence the number of valid arrangements is $\\binom{{{a}}}{{2}} = {c}$ so far.",
    "Wait, that does not account for the overlap; subtract the ${b}$ double-counted cases.",
    "By the AM-GM inequality, $\\frac{{a+b}}{{2}} \\geq \\sqrt{{ab}}$, with equality at $a=b$.",
    "So far we have ${a} + {b} = {c}$, which matches the earlier estimate.",
    "Let me double-check this computation: ${a} \\times {b} = {d}$.",
]


def _reasoning(rng: random.Random, length: int) -> str:
    parts = []
    while sum(map(len, parts)) < length:
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        parts.append(rng.choice(_SENTENCES).format(a=a, b=b, c=a + b, d=a * b))
    return " ".join(parts)


def realistic_stream(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (gold, response) pairs in groups of 8 per question: 80% integer answers, 10% fractions,
    10% closed forms; about 60% of responses correct; 2-8 KB of reasoning each."""
    rng = random.Random(seed)
    rows: list[tuple[str, str]] = []
    while len(rows) < n:
        kind = rng.random()
        if kind < 0.8:
            value = rng.randint(0, 100_000)
            gold = str(value)
            right = [str(value), f"{value:,}", f"{value}.0"]
            wrong = [str(value + rng.randint(1, 50)), str(value * 2 + 1)]
        elif kind < 0.9:
            p, q = rng.randint(1, 50), rng.randint(51, 99)
            gold = f"\\frac{{{p}}}{{{q}}}"
            right = [f"\\dfrac{{{p}}}{{{q}}}", f"{p}/{q}", f"\\frac{{{2 * p}}}{{{2 * q}}}"]
            wrong = [f"\\frac{{{q}}}{{{p}}}", f"\\frac{{{p + 1}}}{{{q}}}"]
        else:
            k = rng.randint(2, 9)
            gold = f"{k}\\sqrt{{3}}"
            right = [f"\\sqrt{{{3 * k * k}}}", f"{k} \\sqrt{{3}}"]
            wrong = [f"{k + 1}\\sqrt{{3}}", f"\\sqrt{{{3 * k}}}"]
        for _ in range(8):
            answer = rng.choice(right) if rng.random() < 0.6 else rng.choice(wrong)
            think = _reasoning(rng, rng.randint(2000, 8000))
            response = (
                f"<think>{think}</think>\n{_reasoning(rng, 400)}\n\nTherefore the answer is $\\boxed{{{answer}}}$."
            )
            rows.append((gold, response))
    return rows[:n]


def stream_throughput(rows: list[tuple[str, str]]) -> dict[str, Any]:
    result: dict[str, Any] = {"set": "realistic CoT stream", "samples": len(rows)}
    reward = MathReward(workers=1)
    reward.score([Sample(response=r"\boxed{\sqrt{2}}", ground_truth="1")])  # start the worker outside timing
    started = time.perf_counter()
    verdicts = []
    for i in range(0, len(rows), 8):
        batch = [Sample(response=r, ground_truth=g) for g, r in rows[i : i + 8]]
        verdicts += [res.verdict for res in reward.score(batch)]
    elapsed = time.perf_counter() - started
    reward.close()
    result["ours"] = {"per_second": len(rows) / elapsed, "correct": verdicts.count("correct")}
    if mv_adapter.available():
        mv_adapter.verify_pair("1", "1")
        started = time.perf_counter()
        mv_correct = sum(mv_adapter.verify_pair(g, r) for g, r in rows)
        elapsed = time.perf_counter() - started
        result["math_verify"] = {"per_second": len(rows) / elapsed, "correct": mv_correct}
        result["agreement"] = sum(
            (v == "correct") == mv_adapter.verify_pair(g, r)
            for (g, r), v in zip(rows[:200], verdicts[:200], strict=True)
        ) / min(200, len(rows))
    return result


# -- (c) adversarial ---------------------------------------------------------------------------------------


#: Known Math-Verify hazards (rewards.md A3): a parse that hangs for good (issue #65) and two
#: compares that burn its full 5 s timeout.
KNOWN_PROBES = [
    ("probe", "3", r"\boxed{\dfrac{5^{(5^{(5^{(5^5)})} - 4)} - 5}{16}}"),
    ("probe", "2", r"\boxed{9^{9^{9^9}}}"),
    ("probe", "2", r"\boxed{10^{10^{10}}-10^{10^{10}}+2}"),
]


def adversarial(n: int, deadline: float) -> dict[str, Any]:
    rows = KNOWN_PROBES + adversarial_inputs(n, seed=1)
    result: dict[str, Any] = {"set": "adversarial", "samples": len(rows), "deadline_s": deadline}
    reward = MathReward(timeout=deadline, workers=1)
    reward.score([Sample(response=r"\boxed{\sqrt{2}}", ground_truth="1")])
    latencies, verdicts = [], []
    for _, gold, response in rows:
        started = time.perf_counter()
        [res] = reward.score([Sample(response=response, ground_truth=gold)])
        latencies.append(time.perf_counter() - started)
        verdicts.append(res.verdict)
    reward.close()
    result["ours"] = {
        "max_latency_s": max(latencies),
        "total_s": sum(latencies),
        "timeouts": verdicts.count("timeout"),
        "errors": verdicts.count("error"),
    }
    if mv_adapter.available():
        # Math-Verify's own 5 s SIGALRM timeouts apply; our pool only kills what they cannot stop.
        guard = 3 * deadline + 10
        pool = WorkerPool(size=1)
        pool.run(mv_adapter.verify_pair, ("1", "1"), timeout=120)
        mv_latencies, hangs = [], 0
        for _, gold, response in rows:
            outcome = pool.run(mv_adapter.verify_pair, (gold, response), timeout=guard)
            mv_latencies.append(outcome.elapsed_s)
            hangs += outcome.status in ("timeout", "died")
        pool.close()
        result["math_verify"] = {
            "max_latency_s": max(mv_latencies),
            "total_s": sum(mv_latencies),
            f"killed_after_{guard:g}s": hangs,
        }
    return result


# -- report ----------------------------------------------------------------------------------------------------


def _print(results: dict[str, Any]) -> None:
    table = Table(title="(a) labelled pairs: accuracy, false positives / negatives, pairs per second")
    for column in ("set", "pairs", "verifier", "accuracy", "FP", "FN", "pairs/s"):
        table.add_column(column)
    for row in results["labelled"]:
        for name in ("ours", "math_verify"):
            if name in row:
                s = row[name]
                table.add_row(
                    row["set"],
                    str(row["pairs"]),
                    name,
                    f"{s['accuracy']:.1%}",
                    str(s["false_positives"]),
                    str(s["false_negatives"]),
                    f"{s['per_second']:.0f}",
                )
    console.print(table)
    stream = results["stream"]
    table = Table(title=f"(b) realistic CoT stream ({stream['samples']} samples, groups of 8)")
    for column in ("verifier", "samples/s", "correct"):
        table.add_column(column)
    for name in ("ours", "math_verify"):
        if name in stream:
            table.add_row(name, f"{stream[name]['per_second']:.0f}", str(stream[name]["correct"]))
    console.print(table)
    if "math_verify" in stream:
        ratio = stream["ours"]["per_second"] / stream["math_verify"]["per_second"]
        console.print(
            f"throughput ratio ours / Math-Verify: [bold]{ratio:.1f}x[/bold]; "
            f"verdict agreement on the first 200: {stream['agreement']:.1%}"
        )
    adv = results["adversarial"]
    table = Table(title=f"(c) adversarial ({adv['samples']} samples, our deadline {adv['deadline_s']:g} s)")
    table.add_column("verifier")
    table.add_column("numbers")
    for name in ("ours", "math_verify"):
        if name in adv:
            table.add_row(
                name, ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in adv[name].items())
            )
    console.print(table)
    if not mv_adapter.available():
        console.print('[yellow]Math-Verify is not installed: pip install "math-verify[antlr4_13_2]==0.9.0"[/yellow]')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stream", type=int, default=800, help="samples in the realistic stream")
    parser.add_argument("--adversarial", type=int, default=120, help="adversarial samples")
    parser.add_argument("--deadline", type=float, default=5.0, help="our per-sample deadline in seconds")
    parser.add_argument("--json", type=Path, help="also write the numbers to this file")
    args = parser.parse_args()
    if not mv_adapter.available():
        console.print(
            "[yellow]Math-Verify not found; only our numbers will be shown. Install it with: "
            'pip install "math-verify[antlr4_13_2]==0.9.0"[/yellow]'
        )
    results = {
        "labelled": labelled_sets(),
        "stream": stream_throughput(realistic_stream(args.stream)),
        "adversarial": adversarial(args.adversarial, args.deadline),
    }
    _print(results)
    if args.json:
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(results, indent=2))
        tmp.replace(args.json)


if __name__ == "__main__":
    main()
