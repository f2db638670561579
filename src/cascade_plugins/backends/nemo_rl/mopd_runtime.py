"""The synchronous MOPD path inside upstream ``grpo_train``: teacher log-probs routed per sample.

``grpo_train`` computes, every step and in this order: the student's ``prev_logprobs`` and the
reference policy's log-probs (the student in log-prob mode, its optimizer state off the GPU),
then the advantages (``adv_estimator.compute_advantage``), then it reloads the optimizer and
trains. The teachers run inside the advantage step, where no optimizer state is on the GPU:

1. :class:`LogprobInputRecorder` wraps the student ``Policy`` and keeps the batch of its latest
   log-prob pass (``input_ids``, ``input_lengths``, ``token_mask``, ``sample_mask``: the training
   rows, in training order).
2. :class:`MOPDAdvantageEstimator` replaces the estimator ``grpo_train`` builds. It reads each
   row's ``task_name`` from ``repeated_batch``, offloads the student, runs every routed teacher's
   ``get_logprobs`` on its rows, scatters the results into ``[B, S]`` (zero-padded to the training
   sequence length) and hands them with ``prev_logprobs`` to upstream's
   ``OPDAdvantageEstimator``: ``A_t = sg[log pi_teacher - log pi_student] * mask`` (Cascade 2
   Eq. 2). The loss is upstream's ``ClippedPGLossFn`` configured as REINFORCE with ICE-POP
   (Eq. 3-4; the stage config sets it, see :func:`~.stage_config.mopd_loss_config`), so the policy
   workers run only upstream code.

A teacher that is the stage's own starting checkpoint (Cascade 2's IF / multi-domain teacher) is
the reference policy ``grpo_train`` already evaluates: its rows take ``logprobs_reference`` and it
needs no ``Policy`` of its own. The routing and scattering are plain torch (:func:`rows_by_teacher`,
:func:`scatter_rows`, :func:`fit_to_length`) and unit-tested.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

#: the teacher alias whose log-probs are ``grpo_train``'s reference-policy log-probs
REFERENCE_TEACHER = "<reference policy>"


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


def fit_to_length(logprobs: torch.Tensor, length: int) -> torch.Tensor:
    """Right-zero-pad ``[B, S_t]`` teacher log-probs to the training length ``length``.

    A teacher's results are padded to its own longest row, while the training batch is padded
    further (``make_sequence_length_divisible_by``); the padding is masked out of the advantage.
    A teacher result longer than the training batch means the rows do not match: an error."""
    width = int(logprobs.shape[1])
    if width > length:
        raise ValueError(
            f"MOPD: teacher log-probs have {width} positions but the training batch has {length}; "
            "the teachers must score the training rows exactly"
        )
    if width < length:
        logprobs = torch.nn.functional.pad(logprobs, (0, length - width), value=0.0)
    return logprobs


def _same_checkpoint(a: str, b: str) -> bool:
    return os.path.realpath(os.path.expanduser(a)) == os.path.realpath(os.path.expanduser(b))


@dataclass(frozen=True)
class TeacherPlan:
    """Who scores which task: a teacher checkpoint per task, and the checkpoints that need their
    own ``Policy`` (the stage's starting checkpoint is served by the reference policy)."""

    #: task -> teacher alias (a checkpoint path, or :data:`REFERENCE_TEACHER`)
    teacher_for_task: dict[str, str]
    #: distinct checkpoints loaded as inference-only ``Policy`` objects, in first-use order
    policies: tuple[str, ...] = field(default_factory=tuple)

    @property
    def uses_reference(self) -> bool:
        return REFERENCE_TEACHER in self.teacher_for_task.values()


def plan_teachers(teachers: Mapping[str, str], init_model: str, reference_logprobs: bool) -> TeacherPlan:
    """Route each task to its teacher. With ``reference_logprobs`` (``grpo_train`` computes the
    reference policy's log-probs, i.e. ``grpo.skip_reference_policy_logprobs_calculation`` is off),
    teachers that are the stage's starting checkpoint ``init_model`` reuse them."""
    routed: dict[str, str] = {}
    for task, path in teachers.items():
        is_init = reference_logprobs and _same_checkpoint(str(path), init_model)
        routed[str(task)] = REFERENCE_TEACHER if is_init else str(path)
    policies = tuple(dict.fromkeys(p for p in routed.values() if p != REFERENCE_TEACHER))
    return TeacherPlan(routed, policies)


class LogprobInputRecorder:
    """The student policy; remembers the batch of its latest log-prob pass (the training rows)."""

    def __init__(self, student: Any) -> None:
        self._student = student
        self.latest: Any = None

    def get_logprobs(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        self.latest = data
        return self._student.get_logprobs(data, *args, **kwargs)

    def get_reference_policy_logprobs(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        self.latest = data
        return self._student.get_reference_policy_logprobs(data, *args, **kwargs)

    @property
    def student(self) -> Any:
        return self._student

    def __getattr__(self, name: str) -> Any:
        return getattr(self._student, name)


#: the batch keys a teacher's ``get_logprobs`` reads
TEACHER_INPUT_KEYS = ("input_ids", "input_lengths", "token_mask", "sample_mask")


class MOPDAdvantageEstimator:
    """``grpo_train``'s advantage estimator for MOPD stages (see the module docstring).

    ``opd`` is upstream's ``OPDAdvantageEstimator``; ``inner`` the estimator upstream built from
    the config, used only for ``outcome_weight != 0`` (MiMo's ``A + alpha * A_ORM``)."""

    def __init__(
        self,
        *,
        inner: Any,
        opd: Any,
        plan: TeacherPlan,
        teachers: Mapping[str, Any],
        student: LogprobInputRecorder,
        batch_factory: Callable[[dict[str, Any]], Any],
        outcome_weight: float = 0.0,
        log: Callable[[str], None] = print,
    ) -> None:
        missing = sorted(set(plan.policies) - set(teachers))
        if missing:
            raise ValueError(f"MOPD: no teacher policy built for {missing}")
        self._inner = inner
        self._opd = opd
        self._plan = plan
        self._teachers = dict(teachers)
        self._student = student
        self._batch_factory = batch_factory
        self._outcome_weight = float(outcome_weight)
        self._log = log
        #: rows per teacher alias, one entry per step
        self.history: list[dict[str, int]] = []
        self.last_metrics: dict[str, float] = {}

    def teacher_logprobs(self, task_names: Sequence[str], reference: torch.Tensor | None, length: int) -> torch.Tensor:
        """``[B, length]`` log-probs of the sampled tokens under each row's teacher."""
        data = self._student.latest
        if data is None:
            raise RuntimeError(
                "MOPD: the student computed no log-probs before the advantages; this needs "
                "prev_logprobs (leave loss_fn.force_on_policy_ratio off)"
            )
        rows = int(data["input_ids"].shape[0])
        if rows != len(task_names):
            raise RuntimeError(f"MOPD: {len(task_names)} task names for a training batch of {rows} rows")
        routed = rows_by_teacher(task_names, self._plan.teacher_for_task)
        parts: list[tuple[list[int], torch.Tensor]] = []
        if REFERENCE_TEACHER in routed:
            if reference is None:
                raise RuntimeError("MOPD: grpo_train passed no reference-policy log-probs for the init teacher")
            index = torch.as_tensor(routed[REFERENCE_TEACHER], dtype=torch.long)
            parts.append((routed[REFERENCE_TEACHER], reference[index].detach().to("cpu")))
        policy_teachers = [alias for alias in routed if alias != REFERENCE_TEACHER]
        if policy_teachers:
            # the teachers share the student's GPUs: move the student's weights out first (upstream
            # distillation does the same); grpo_train reloads it for training right after this step
            self._student.offload_after_refit()
        for alias in policy_teachers:
            teacher = self._teachers[alias]
            indices = routed[alias]
            padded = padded_indices(indices, int(getattr(teacher, "data_parallel_size", 1) or 1))
            index = torch.as_tensor(padded, dtype=torch.long)
            subset = self._batch_factory({key: data[key][index] for key in TEACHER_INPUT_KEYS})
            teacher.prepare_for_lp_inference()
            logprobs = teacher.get_logprobs(subset)["logprobs"][: len(indices)]
            teacher.offload_after_refit()
            parts.append((indices, logprobs.detach().to("cpu")))
        counts = {alias: len(indices) for alias, indices in routed.items()}
        self.history.append(counts)
        self._log(f"MOPD teacher rows: {counts}")
        return fit_to_length(scatter_rows(rows, parts), length)

    def compute_advantage(
        self,
        prompt_ids: Any,
        rewards: Any,
        mask: torch.Tensor,
        repeated_batch: Any = None,
        logprobs_policy: torch.Tensor | None = None,
        logprobs_reference: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        if repeated_batch is None or "task_name" not in repeated_batch:
            raise RuntimeError(
                "MOPD: grpo_train did not pass repeated_batch with task_name to the advantage "
                "estimator; this NeMo RL version is not supported by the synchronous MOPD path"
            )
        if logprobs_policy is None:
            raise RuntimeError("MOPD: grpo_train passed no prev_logprobs to the advantage estimator")
        task_names = [str(t) for t in repeated_batch["task_name"]]
        teacher = self.teacher_logprobs(task_names, logprobs_reference, int(mask.shape[1]))
        advantages = self._opd.compute_advantage(
            prompt_ids=prompt_ids, rewards=rewards, mask=mask,
            teacher_logprobs=teacher.to(device=logprobs_policy.device, dtype=logprobs_policy.dtype),
            prev_logprobs=logprobs_policy,
        )
        self.last_metrics = dict(getattr(self._opd, "last_metrics", {}) or {})
        if self._outcome_weight:
            outcome = self._inner.compute_advantage(
                prompt_ids, rewards, mask, repeated_batch=repeated_batch, logprobs_policy=logprobs_policy,
                logprobs_reference=logprobs_reference, **kwargs,
            )
            advantages = advantages + self._outcome_weight * outcome * mask
        return advantages

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
