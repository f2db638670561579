from __future__ import annotations

import pytest
import torch

from cascade_plugins.backends.nemo_rl.mopd_runtime import (
    REFERENCE_TEACHER,
    LogprobInputRecorder,
    MOPDAdvantageEstimator,
    fit_to_length,
    padded_indices,
    plan_teachers,
    rows_by_teacher,
    scatter_rows,
)


def test_rows_are_routed_by_task_and_unrouted_tasks_fail() -> None:
    assert rows_by_teacher(["m", "c", "m", "i"], {"m": "A", "c": "B", "i": "B"}) == {"A": [0, 2], "B": [1, 3]}
    with pytest.raises(KeyError, match=r"no teacher for task\(s\) \['x'\]"):
        rows_by_teacher(["m", "x"], {"m": "A"})


def test_padding_repeats_rows_to_a_multiple() -> None:
    assert padded_indices([4, 7, 9], 2) == [4, 7, 9, 4]
    assert padded_indices([4, 7], 2) == [4, 7]
    assert padded_indices([1, 2, 3], 1) == [1, 2, 3]


def test_scatter_assembles_rows_and_pads_short_blocks() -> None:
    out = scatter_rows(3, [([0, 2], torch.tensor([[1.0, 2.0], [3.0, 4.0]])), ([1], torch.tensor([[5.0]]))])
    assert out.tolist() == [[1.0, 2.0], [5.0, 0.0], [3.0, 4.0]]
    with pytest.raises(ValueError, match=r"rows \[1\] are covered \[0\] times"):
        scatter_rows(2, [([0], torch.zeros(1, 2))])


class FakeTeacher:
    """Stands in for a NeMo RL Policy (GPU only): log-prob = token id * scale."""

    data_parallel_size = 2

    def __init__(self, name: str, scale: float, events: list[str]) -> None:
        self.name = name
        self.scale = scale
        self.events = events
        self.rows: list[int] = []

    def prepare_for_lp_inference(self) -> None:
        self.events.append(f"{self.name}.load")

    def offload_after_refit(self) -> None:
        self.events.append(f"{self.name}.offload")

    def get_logprobs(self, batch):
        self.events.append(f"{self.name}.logprobs")
        self.rows.append(batch["input_ids"].shape[0])
        return {"logprobs": batch["input_ids"].float() * self.scale}


class FakeStudent:
    def __init__(self, events: list[str]) -> None:
        self.events = events

    def get_logprobs(self, data, timer=None):
        self.events.append("student.logprobs")
        return {"logprobs": torch.zeros_like(data["input_ids"], dtype=torch.float32)}

    def get_reference_policy_logprobs(self, data, timer=None):
        self.events.append("student.reference")
        return {"reference_logprobs": torch.full(data["input_ids"].shape, -7.0)}

    def offload_after_refit(self) -> None:
        self.events.append("student.offload")

    def other(self) -> str:
        return "delegated"


class OPDMaths:
    """Upstream OPDAdvantageEstimator's formula, sg[teacher - prev] * mask (the real one runs in
    integration/test_mopd_wiring.py)."""

    def compute_advantage(self, prompt_ids, rewards, mask, teacher_logprobs=None, prev_logprobs=None, **_):
        return (teacher_logprobs - prev_logprobs).detach() * mask


class OutcomeEstimator:
    def compute_advantage(self, prompt_ids, rewards, mask, **_):
        return rewards.unsqueeze(-1).expand_as(mask)


def _step(tasks: list[str], width: int = 3):
    """What grpo_train holds at the advantage step: the log-prob batch (input ids narrower than the
    padded training length ``width + 1``), prev_logprobs and the mask."""
    ids = torch.arange(1, 1 + len(tasks) * width, dtype=torch.long).reshape(len(tasks), width)
    data = {"input_ids": ids, "input_lengths": torch.full((len(tasks),), width), "token_mask": torch.ones_like(ids),
            "sample_mask": torch.ones(len(tasks))}
    mask = torch.ones(len(tasks), width + 1)
    mask[:, -1] = 0  # padding of the training batch
    return data, {"task_name": tasks}, mask


def _estimator(plan, teachers, student, **kw):
    return MOPDAdvantageEstimator(inner=OutcomeEstimator(), opd=OPDMaths(), plan=plan, teachers=teachers,
                                  student=student, batch_factory=dict, log=lambda _m: None, **kw)


def test_teachers_score_their_rows_with_the_student_offloaded_first() -> None:
    events: list[str] = []
    plan = plan_teachers({"math": "/ckpt/sft", "if": "/ckpt/rlhf"}, init_model="/ckpt/md", reference_logprobs=True)
    assert plan.policies == ("/ckpt/sft", "/ckpt/rlhf") and not plan.uses_reference
    teachers = {"/ckpt/sft": FakeTeacher("sft", 1.0, events), "/ckpt/rlhf": FakeTeacher("rlhf", -1.0, events)}
    student = LogprobInputRecorder(FakeStudent(events))
    data, batch, mask = _step(["math", "if", "math"])
    prev = student.get_logprobs(data)["logprobs"]  # what grpo_train does first
    prev = torch.nn.functional.pad(prev, (0, 1))
    estimator = _estimator(plan, teachers, student)
    advantages = estimator.compute_advantage(None, torch.zeros(3), mask, repeated_batch=batch, logprobs_policy=prev)
    # padded to the training length, the padding masked out
    assert advantages.tolist() == [[1, 2, 3, 0], [-4, -5, -6, 0], [7, 8, 9, 0]]
    assert events == ["student.logprobs", "student.offload", "sft.load", "sft.logprobs", "sft.offload",
                      "rlhf.load", "rlhf.logprobs", "rlhf.offload"]
    assert teachers["/ckpt/rlhf"].rows == [2]  # one row, padded to the data-parallel size
    assert estimator.history == [{"/ckpt/sft": 2, "/ckpt/rlhf": 1}]
    assert student.other() == "delegated"


def test_the_starting_checkpoint_teacher_reuses_reference_logprobs(tmp_path) -> None:
    events: list[str] = []
    init = tmp_path / "md"
    init.mkdir()
    plan = plan_teachers({"if": str(init) + "/", "math": "/ckpt/sft"}, init_model=str(init), reference_logprobs=True)
    assert plan.teacher_for_task["if"] == REFERENCE_TEACHER and plan.policies == ("/ckpt/sft",)
    # without reference log-probs in grpo_train, that teacher needs a policy of its own
    assert plan_teachers({"if": str(init)}, init_model=str(init), reference_logprobs=False).policies == (str(init),)
    teachers = {"/ckpt/sft": FakeTeacher("sft", 1.0, events)}
    student = LogprobInputRecorder(FakeStudent(events))
    data, batch, mask = _step(["if", "math"])
    student.get_logprobs(data)
    reference = torch.nn.functional.pad(student.get_reference_policy_logprobs(data)["reference_logprobs"], (0, 1))
    out = _estimator(plan, teachers, student).compute_advantage(
        None, torch.zeros(2), mask, repeated_batch=batch, logprobs_policy=torch.zeros(2, 4),
        logprobs_reference=reference)
    assert out.tolist() == [[-7, -7, -7, 0], [4, 5, 6, 0]]
    # only reference rows: the student stays loaded
    events.clear()
    only_if = _estimator(plan, teachers, student)
    only_if.compute_advantage(None, torch.zeros(2), mask, repeated_batch={"task_name": ["if", "if"]},
                              logprobs_policy=torch.zeros(2, 4), logprobs_reference=reference)
    assert events == []


def test_outcome_weight_adds_the_outcome_advantage() -> None:
    events: list[str] = []
    plan = plan_teachers({"math": "/t"}, init_model="/s", reference_logprobs=True)
    student = LogprobInputRecorder(FakeStudent(events))
    data, batch, mask = _step(["math"])
    student.get_logprobs(data)
    out = _estimator(plan, {"/t": FakeTeacher("t", 0.0, events)}, student, outcome_weight=0.5).compute_advantage(
        None, torch.tensor([2.0]), mask, repeated_batch=batch, logprobs_policy=torch.zeros(1, 4))
    assert out.tolist() == [[1.0, 1.0, 1.0, 0.0]]


def test_fit_to_length_pads_and_refuses_longer_rows() -> None:
    assert fit_to_length(torch.ones(1, 2), 4).tolist() == [[1, 1, 0, 0]]
    with pytest.raises(ValueError, match="teacher log-probs have 5 positions but the training batch has 4"):
        fit_to_length(torch.ones(1, 5), 4)


def test_missing_inputs_are_errors() -> None:
    plan = plan_teachers({"math": "/t"}, init_model="/s", reference_logprobs=True)
    student = LogprobInputRecorder(FakeStudent([]))
    estimator = _estimator(plan, {"/t": FakeTeacher("t", 1.0, [])}, student)
    with pytest.raises(RuntimeError, match="repeated_batch with task_name"):
        estimator.compute_advantage(None, None, torch.ones(1, 2))
    with pytest.raises(RuntimeError, match="computed no log-probs"):
        estimator.compute_advantage(None, None, torch.ones(1, 2), repeated_batch={"task_name": ["math"]},
                                    logprobs_policy=torch.zeros(1, 2))
    data, _, mask = _step(["math"])
    student.get_logprobs(data)
    with pytest.raises(RuntimeError, match="2 task names for a training batch of 1 rows"):
        estimator.compute_advantage(None, None, mask, repeated_batch={"task_name": ["math", "math"]},
                                    logprobs_policy=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"no teacher policy built for \['/t'\]"):
        _estimator(plan, {}, student)
