"""Time and peak memory of the MOPD losses, forward + backward, side by side in one process.

1. Sampled-token MOPD on ``[B, T]`` log-probs: our NeMo RL face (``NemoRLMOPDLoss``) against
   NeMo RL's own MOPD path (``OPDAdvantageEstimator`` + ``ClippedPGLossFn`` as REINFORCE + ICE-POP
   [0.5, 2.0], sequence-level) when NeMo RL is importable, and always against a direct torch
   transcription of Eq. 4 (float32 and float64).
2. The top-k variant (``gather_student_logprobs`` + ``topk_reverse_kl_loss``) against a naive
   full-vocabulary implementation, from ``[N, V]`` student logits (V = 131072 by default).

Peak memory is the process's peak resident set above the resident set before the call (Linux
``VmHWM`` after resetting it through ``/proc/self/clear_refs``), so it covers every temporary of
forward + backward and the gradient. Large allocations are forced onto mmap so freed memory leaves
the process; timings therefore include the page faults of fresh allocations. Each timing is the
best of several interleaved runs (the least disturbed on a shared machine).

Run:  python benchmarks/mopd_bench.py [--sizes 8x4096,64x32768] [--vocab 131072 --topk-tokens 512]
With NeMo RL: the NeMo RL venv's python, with ``src`` on PYTHONPATH (Python < 3.12 gets the
TypedDict shim automatically).
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if "MALLOC_MMAP_THRESHOLD_" not in os.environ:  # fixed mmap threshold: freed tensors leave the RSS
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "131072"
    os.execv(sys.executable, [sys.executable, *sys.argv])

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from cascade_plugins.backends.nemo_rl.mopd_loss import NemoRLMOPDLoss
from cascade_plugins.losses.mopd import gather_student_logprobs, topk_reverse_kl_loss

Step = Callable[[], None]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"{field}:\s+(\d+)", f.read())
    assert match is not None
    return int(match.group(1))


def peak_memory_mib(step: Step, leaf: torch.Tensor) -> float:
    """Peak resident memory of one ``step`` above the resident set before it (inputs only, no
    gradient yet), in MiB; the gradient of ``leaf`` the step creates is part of the peak."""
    step()  # warm-up
    leaf.grad = None
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _status_kib("VmRSS")
    step()
    return (_status_kib("VmHWM") - before) / 1024


def measure(candidates: list[tuple[str, Step]], leaf: torch.Tensor, repeats: int) -> list[tuple[str, float, float]]:
    """``(name, best seconds, peak MiB)`` per candidate. Timings interleave the candidates, round
    after round, and keep the best of ``repeats``: the least disturbed run on a shared machine."""
    peaks = {name: peak_memory_mib(step, leaf) for name, step in candidates}
    best = dict.fromkeys(peaks, math.inf)
    for _ in range(repeats):
        for name, step in candidates:
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    return [(name, best[name], peaks[name]) for name, _ in candidates]


# -- sampled-token MOPD --------------------------------------------------------------------------


def nemo_batch(batch: int, length: int, seed: int = 0) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    seq = length + 1
    lengths = torch.randint(length // 4, length + 1, (batch,), generator=gen)
    token_mask = (torch.arange(seq).unsqueeze(0) <= lengths.unsqueeze(1)).float()
    token_mask[:, :1] = 0.0
    next_lp = -torch.rand(batch, length, generator=gen) * 4

    def aligned(values: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(values, (1, 0))

    data = {
        "token_mask": token_mask,
        "sample_mask": torch.ones(batch),
        "generation_logprobs": aligned(next_lp + torch.randn(batch, length, generator=gen) * 0.3),
        "prev_logprobs": aligned(next_lp),
        "teacher_logprobs": aligned(-torch.rand(batch, length, generator=gen) * 4),
    }
    return data, next_lp


def eq4_direct(data: dict[str, torch.Tensor], student: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Eq. 2-4 written the direct way, in ``dtype``."""
    s = student.to(dtype)
    mask = (data["token_mask"][:, 1:] * data["sample_mask"].unsqueeze(-1)).to(dtype)
    advantage = (data["teacher_logprobs"][:, 1:].to(dtype) - s).detach()
    ratio = torch.exp(s.detach() - data["generation_logprobs"][:, 1:].to(dtype))
    weight = ratio * ((ratio >= 0.5) & (ratio <= 2.0)).to(dtype)
    per_sequence = (weight * advantage * s * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return -(per_sequence.sum() / (mask.sum(-1) > 0).sum())


def load_upstream() -> tuple[Callable[..., torch.Tensor], str] | None:
    try:
        if sys.version_info < (3, 12):
            import typing

            import typing_extensions

            typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]
        from nemo_rl import package_info
        from nemo_rl.algorithms.advantage_estimator import OPDAdvantageEstimator
        from nemo_rl.algorithms.loss import ClippedPGLossConfig, ClippedPGLossFn
        from nemo_rl.distributed.batched_data_dict import BatchedDataDict
    except ImportError:
        return None
    loss_fn = ClippedPGLossFn(
        ClippedPGLossConfig(
            disable_ppo_ratio=True,
            token_level_loss=False,
            reference_policy_kl_penalty=0.0,
            use_importance_sampling_correction=True,
            truncated_importance_sampling_type="icepop",
            truncated_importance_sampling_ratio_min=0.5,
            truncated_importance_sampling_ratio=2.0,
        )
    )
    estimator = OPDAdvantageEstimator({"name": "opd"}, {})

    def upstream(
        data: dict[str, torch.Tensor], student: torch.Tensor, gvs: torch.Tensor, gvt: torch.Tensor
    ) -> torch.Tensor:
        mask = data["token_mask"] * data["sample_mask"].unsqueeze(-1)
        advantages = estimator.compute_advantage(
            prompt_ids=None,
            rewards=None,
            mask=mask,
            teacher_logprobs=data["teacher_logprobs"],
            prev_logprobs=data["prev_logprobs"],
        )
        batch = BatchedDataDict({**data, "advantages": advantages})
        return loss_fn(next_token_logprobs=student, data=batch, global_valid_seqs=gvs, global_valid_toks=gvt)[0]

    return upstream, str(package_info.__version__)


@dataclass
class Row:
    case: str
    implementation: str
    seconds: float
    peak_mib: float


def bench_sampled_case(
    batch: int, length: int, upstream: tuple[Callable[..., torch.Tensor], str] | None, repeats: int
) -> list[Row]:
    data, next_lp = nemo_batch(batch, length)
    gvs = data["sample_mask"].sum()
    gvt = (data["token_mask"][:, 1:] * data["sample_mask"].unsqueeze(-1)).sum()
    student = next_lp.clone().requires_grad_(True)
    ours = NemoRLMOPDLoss()

    def run(fn: Callable[[], torch.Tensor]) -> Step:
        def step() -> None:
            student.grad = None
            fn().backward()

        return step

    candidates: list[tuple[str, Step]] = [("ours (float32)", run(lambda: ours(student, data, gvs, gvt)[0]))]
    if upstream is not None:
        upstream_fn, version = upstream
        name = f"NeMo RL {version} OPD + ClippedPGLossFn"
        candidates.append((name, run(lambda: upstream_fn(data, student, gvs, gvt))))
    candidates += [
        ("direct Eq. 4, float32", run(lambda: eq4_direct(data, student, torch.float32))),
        ("direct Eq. 4, float64", run(lambda: eq4_direct(data, student, torch.float64))),
    ]
    return [
        Row(f"{batch}x{length}", name, seconds, peak) for name, seconds, peak in measure(candidates, student, repeats)
    ]


def bench_sampled(sizes: list[tuple[int, int]], repeats: int) -> list[Row]:
    upstream = load_upstream()
    rows: list[Row] = []
    for batch, length in sizes:
        rows += bench_sampled_case(batch, length, upstream, repeats)
        gc.collect()
    return rows


# -- top-k ----------------------------------------------------------------------------------------


def naive_topk(
    logits: torch.Tensor, indices: torch.Tensor, teacher_top: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """The same truncated reverse KL over the full vocabulary: full log-softmax, a full teacher
    tensor and a support mask."""
    logp = torch.log_softmax(logits.float(), dim=-1)
    support = torch.zeros_like(logp, dtype=torch.bool).scatter_(-1, indices, True)
    teacher_full = torch.zeros_like(logp).scatter_(-1, indices, teacher_top)
    p_student = logp.exp()
    per_entry = p_student * (logp - teacher_full) - p_student + torch.where(support, teacher_full.exp(), 0.0)
    per_token = torch.where(support, per_entry, 0.0).sum(-1)
    counts = mask.sum(-1)
    return ((per_token * mask).sum(-1) / counts.clamp(min=1)).sum() / (counts > 0).sum()


def bench_topk(tokens: int, vocab: int, k: int, repeats: int) -> list[Row]:
    gen = torch.Generator().manual_seed(0)
    batch = 4
    length = tokens // batch
    logits = torch.randn(batch, length, vocab, generator=gen).requires_grad_(True)
    teacher_top, indices = torch.log_softmax(torch.randn(batch, length, vocab, generator=gen), -1).topk(k, -1)
    mask = torch.ones(batch, length)
    gc.collect()
    case = f"{batch}x{length}, V={vocab}, k={k}"

    def ours() -> None:
        logits.grad = None
        topk_reverse_kl_loss(gather_student_logprobs(logits, indices, 1024), teacher_top, mask).loss.backward()

    def naive() -> None:
        logits.grad = None
        naive_topk(logits, indices, teacher_top, mask).backward()

    with torch.no_grad():
        ours_value = topk_reverse_kl_loss(gather_student_logprobs(logits, indices), teacher_top, mask).loss
        naive_value = naive_topk(logits, indices, teacher_top, mask)
    assert math.isclose(float(ours_value), float(naive_value), rel_tol=1e-4), (float(ours_value), float(naive_value))
    logits_mib = logits.numel() * logits.element_size() / 2**20
    candidates = [("ours: chunked gather + top-k", ours), ("naive full vocabulary", naive)]
    rows = [Row(case, name, seconds, peak) for name, seconds, peak in measure(candidates, logits, repeats)]
    print(f"(top-k: the logits gradient alone is {logits_mib:.0f} MiB and is part of both peaks)")
    return rows


def print_table(title: str, rows: list[Row], anchor_prefix: str) -> None:
    print(f"\n{title}")
    print(f"{'case':<28} {'implementation':<42} {'ms':>9} {'peak MiB':>9} {'time x':>7} {'mem x':>7}")
    by_case: dict[str, list[Row]] = {}
    for row in rows:
        by_case.setdefault(row.case, []).append(row)
    for case, case_rows in by_case.items():
        anchor = next((r for r in case_rows if r.implementation.startswith(anchor_prefix)), case_rows[-1])
        for row in case_rows:
            print(
                f"{case:<28} {row.implementation:<42} {row.seconds * 1e3:9.2f} {row.peak_mib:9.1f} "
                f"{row.seconds / anchor.seconds:7.2f} {row.peak_mib / max(anchor.peak_mib, 1e-9):7.2f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="8x4096,32x16384,64x32768", help="BxT list for the sampled-token loss")
    parser.add_argument("--vocab", type=int, default=131072)
    parser.add_argument("--topk", type=int, default=64)
    parser.add_argument("--topk-tokens", type=int, default=512, help="B*T for the top-k comparison")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--topk-repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sizes = [tuple(int(x) for x in size.split("x")) for size in args.sizes.split(",")]
    print(
        f"torch {torch.__version__}, {args.threads} thread(s), best of {args.repeats} "
        f"({args.topk_repeats} for top-k) interleaved runs"
    )
    sampled = bench_sampled(sizes, args.repeats)  # type: ignore[arg-type]
    upstream_available = any(r.implementation.startswith("NeMo RL") for r in sampled)
    print_table(
        "Sampled-token MOPD, forward + backward (x: relative to "
        + ("NeMo RL" if upstream_available else "direct Eq. 4, float32")
        + ")",
        sampled,
        "NeMo RL" if upstream_available else "direct Eq. 4, float32",
    )
    topk = bench_topk(args.topk_tokens, args.vocab, args.topk, args.topk_repeats)
    print_table("Top-k reverse KL, forward + backward from logits (x: relative to naive)", topk, "naive")


if __name__ == "__main__":
    main()
