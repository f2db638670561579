from __future__ import annotations

import pytest
import torch

from cascade_plugins.backends.nemo_rl.mopd_runtime import (
    RoutingRecorder,
    StepRouting,
    TeacherLogprobPolicy,
    padded_indices,
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

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.calls: list[int] = []

    def prepare_for_lp_inference(self) -> None:
        pass

    def offload_after_refit(self) -> None:
        pass

    def get_logprobs(self, batch):
        self.calls.append(batch["input_ids"].shape[0])
        return {"logprobs": batch["input_ids"].float() * self.scale}


class FakeStudent:
    def __init__(self) -> None:
        self.trained: dict | None = None

    def prepare_for_training(self) -> None:
        pass

    def train(self, data, loss_fn, timer=None):
        self.trained = dict(data)
        return {"loss": 1.0}

    def other(self) -> str:
        return "delegated"


class FakeEstimator:
    def compute_advantage(self, prompt_ids, rewards, mask, repeated_batch=None, **_):
        return torch.zeros_like(mask)


def test_teacher_logprobs_reach_the_training_batch_per_routed_teacher() -> None:
    routing = StepRouting()
    estimator = RoutingRecorder(FakeEstimator(), routing)
    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])
    estimator.compute_advantage(None, None, torch.ones(3, 2), repeated_batch={"task_name": ["math", "if", "math"]})
    assert routing.task_names == ["math", "if", "math"]
    teachers = {"sft": FakeTeacher(1.0), "md": FakeTeacher(-1.0)}
    student = FakeStudent()
    policy = TeacherLogprobPolicy(student, teachers, {"math": "sft", "if": "md"}, routing, batch_factory=dict)
    data = {"input_ids": ids, "input_lengths": torch.tensor([2, 2, 2]), "token_mask": torch.ones(3, 2),
            "sample_mask": torch.ones(3)}
    assert policy.train(data, loss_fn=None) == {"loss": 1.0}
    assert student.trained["teacher_logprobs"].tolist() == [[1, 2], [-3, -4], [5, 6]]
    assert teachers["md"].calls == [2]  # one row padded to the data-parallel size
    assert routing.history == [{"sft": 2, "md": 1}]
    assert policy.other() == "delegated"


def test_missing_routing_is_an_error() -> None:
    routing = StepRouting()
    with pytest.raises(RuntimeError, match="repeated_batch with task_name"):
        RoutingRecorder(FakeEstimator(), routing).compute_advantage(None, None, None)
    policy = TeacherLogprobPolicy(FakeStudent(), {}, {}, routing, batch_factory=dict)
    with pytest.raises(RuntimeError, match="routing for None rows"):
        policy.train({"input_ids": torch.zeros(2, 2)}, None)
