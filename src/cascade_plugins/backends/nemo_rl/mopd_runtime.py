"""The synchronous MOPD path inside ``grpo_train``: teacher log-probs routed per sample.

``grpo_train`` has no hook between its rollouts and ``policy.train``, so two thin wrappers carry
the information across, within one stage process:

1. :class:`RoutingRecorder` wraps the advantage estimator ``grpo_train`` builds; its
   ``compute_advantage`` receives the step's ``repeated_batch`` (rows in training order, with
   their ``task_name``) and records the task names.
2. :class:`TeacherLogprobPolicy` wraps the student ``Policy``; its ``train`` computes, for each
   teacher, the log-probs of the sampled tokens on the rows routed to it (``task -> teacher``),
   scatters them into a ``[B, S]`` tensor under ``teacher_logprobs`` and then trains the student
   with the MOPD loss. Rollouts come from the current student and every step trains once on
   them, so the teacher signal is strictly on-policy.

The routing and scattering are plain torch (:func:`rows_by_teacher`, :func:`scatter_rows`) and
unit-tested; the teachers are NeMo RL ``Policy`` objects (GPU only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

TEACHER_KEY = "teacher_logprobs"


@dataclass
class StepRouting:
    """The task name of every training row of the current step (set by :class:`RoutingRecorder`)."""

    task_names: list[str] | None = None
    history: list[dict[str, int]] = field(default_factory=list)


def rows_by_teacher(task_names: Sequence[str], teacher_for_task: Mapping[str, str]) -> dict[str, list[int]]:
    """teacher alias -> row indices routed to it, in row order; an unrouted task is an error."""
    missing = sorted({t for t in task_names if t not in teacher_for_task})
    if missing:
        raise KeyError(
            f"MOPD: no teacher for task(s) {missing}; teachers are configured for {sorted(teacher_for_task)}"
        )
    out: dict[str, list[int]] = {}
    for row, task in enumerate(task_names):
        out.setdefault(teacher_for_task[task], []).append(row)
    return out


def padded_indices(indices: Sequence[int], multiple: int) -> list[int]:
    """``indices`` repeated cyclically up to a multiple of ``multiple`` (data-parallel sharding
    needs equal shards); the extra rows are dropped again after the forward pass."""
    if multiple <= 1 or len(indices) % multiple == 0:
        return list(indices)
    extra = multiple - len(indices) % multiple
    return [*indices, *(indices[i % len(indices)] for i in range(extra))]


def scatter_rows(total_rows: int, parts: Sequence[tuple[Sequence[int], torch.Tensor]]) -> torch.Tensor:
    """Assemble ``[total_rows, S]`` from per-teacher ``(row_indices, [len, S_i])`` blocks; shorter
    blocks are zero-padded on the right, every row must be covered exactly once."""
    if not parts:
        raise ValueError("no teacher log-probs to assemble")
    width = max(int(t.shape[1]) for _, t in parts)
    dtype = parts[0][1].dtype
    out = torch.zeros(total_rows, width, dtype=dtype)
    covered = torch.zeros(total_rows, dtype=torch.long)
    for rows, block in parts:
        if block.shape[0] != len(rows):
            raise ValueError(f"teacher block has {block.shape[0]} rows for {len(rows)} indices")
        index = torch.as_tensor(list(rows), dtype=torch.long)
        out[index, : block.shape[1]] = block.to(dtype=dtype, device="cpu")
        covered[index] += 1
    if not bool((covered == 1).all()):
        bad = torch.nonzero(covered != 1).flatten().tolist()
        raise ValueError(f"rows {bad[:10]} are covered {covered[bad[:10]].tolist()} times (want once)")
    return out


class RoutingRecorder:
    """Wraps a NeMo RL advantage estimator; records each step's task names, then delegates."""

    def __init__(self, inner: Any, routing: StepRouting) -> None:
        self._inner = inner
        self._routing = routing

    def compute_advantage(self, *args: Any, **kwargs: Any) -> Any:
        batch = kwargs.get("repeated_batch")
        if batch is None or "task_name" not in batch:
            raise RuntimeError(
                "MOPD: grpo_train did not pass repeated_batch with task_name to the advantage "
                "estimator; this NeMo RL version is not supported by the synchronous MOPD path"
            )
        self._routing.task_names = [str(t) for t in batch["task_name"]]
        return self._inner.compute_advantage(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class TeacherLogprobPolicy:
    """The student policy, with ``teacher_logprobs`` added to every training batch."""

    def __init__(
        self,
        student: Any,
        teachers: Mapping[str, Any],
        teacher_for_task: Mapping[str, str],
        routing: StepRouting,
        key: str = TEACHER_KEY,
        batch_factory: Any = None,
    ) -> None:
        #: builds the per-teacher sub-batch (NeMo RL's ``BatchedDataDict`` unless given)
        self._batch_factory = batch_factory
        self._student = student
        self._teachers = dict(teachers)
        self._teacher_for_task = dict(teacher_for_task)
        self._routing = routing
        self._key = key

    def _teacher_logprobs(self, data: Any) -> torch.Tensor:
        batched_data_dict = self._batch_factory
        if batched_data_dict is None:
            from cascade_plugins.backends.nemo_rl import compat

            batched_data_dict = compat.batched_data_dict_class()
        task_names = self._routing.task_names
        if task_names is None or len(task_names) != int(data["input_ids"].shape[0]):
            raise RuntimeError(
                f"MOPD: routing for {None if task_names is None else len(task_names)} rows but the "
                f"training batch has {int(data['input_ids'].shape[0])}"
            )
        parts = []
        routed = rows_by_teacher(task_names, self._teacher_for_task)
        for alias, rows in routed.items():
            teacher = self._teachers[alias]
            padded = padded_indices(rows, int(getattr(teacher, "data_parallel_size", 1) or 1))
            index = torch.as_tensor(padded, dtype=torch.long)
            subset = batched_data_dict(
                {key: data[key][index] for key in ("input_ids", "input_lengths", "token_mask", "sample_mask")}
            )
            teacher.prepare_for_lp_inference()
            logprobs = teacher.get_logprobs(subset)["logprobs"][: len(rows)]
            teacher.offload_after_refit()
            parts.append((rows, logprobs))
        self._routing.history.append({alias: len(rows) for alias, rows in routed.items()})
        return scatter_rows(len(task_names), parts)

    def train(self, data: Any, loss_fn: Any, *args: Any, **kwargs: Any) -> Any:
        data[self._key] = self._teacher_logprobs(data)
        self._student.prepare_for_training()  # teachers ran in between: reload the student
        return self._student.train(data, loss_fn, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._student, name)
