"""The synchronous MOPD path's hooks into upstream ``grpo_train``, on CPU: the advantage
estimator upstream builds is wrapped for one stage process and records each step's task names;
the student wrapper builds per-teacher sub-batches as upstream ``BatchedDataDict``s and puts
``teacher_logprobs`` into the training batch. (Teachers are NeMo RL ``Policy`` objects, which need
GPUs; here they are stand-ins with the same three methods.)"""

from __future__ import annotations

from pathlib import Path

import torch

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.mopd_runtime import RoutingRecorder, StepRouting, TeacherLogprobPolicy


def test_wrapped_upstream_estimator_records_routing_and_keeps_advantages(nemo_rl_root: Path) -> None:
    from nemo_rl.algorithms import grpo
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    config = compat.load_config_dict(nemo_rl_root / "examples/configs/grpo_math_1B.yaml")
    master = compat.validate_master_config("grpo", config)
    original = grpo._create_advantage_estimator
    routing = StepRouting()
    prompt_ids = torch.tensor([[0, 5], [0, 5], [1, 5], [1, 5]])  # prompt tokens per row
    rewards = torch.tensor([1.0, 0.0, 0.5, 0.0])
    mask = torch.ones(4, 3)
    batch = BatchedDataDict({"task_name": ["math", "math", "if", "if"]})
    with compat.wrapped_advantage_estimator(lambda est: RoutingRecorder(est, routing)):
        wrapped = grpo._create_advantage_estimator(master)  # what grpo_train calls
        assert isinstance(wrapped, RoutingRecorder)
        got = wrapped.compute_advantage(prompt_ids=prompt_ids, rewards=rewards, mask=mask, repeated_batch=batch,
                                        logprobs_policy=torch.zeros(4, 3), logprobs_reference=None)
    assert grpo._create_advantage_estimator is original  # restored
    assert routing.task_names == ["math", "math", "if", "if"]
    expected = original(master).compute_advantage(prompt_ids=prompt_ids, rewards=rewards, mask=mask,
                                                  repeated_batch=batch, logprobs_policy=torch.zeros(4, 3),
                                                  logprobs_reference=None)
    torch.testing.assert_close(got, expected)


class _Teacher:
    data_parallel_size = 2

    def __init__(self, shift: float) -> None:
        self.shift = shift
        self.batches: list = []

    def prepare_for_lp_inference(self) -> None:
        pass

    def offload_after_refit(self) -> None:
        pass

    def get_logprobs(self, data):
        self.batches.append(data)
        return {"logprobs": data["input_ids"].float() + self.shift}


class _Student:
    def prepare_for_training(self) -> None:
        pass

    def train(self, data, loss_fn, timer=None):
        return data


def test_teacher_logprobs_join_an_upstream_training_batch() -> None:
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    routing = StepRouting(task_names=["math", "rlhf", "math"])
    teachers = {"/sft": _Teacher(0.0), "/rlhf": _Teacher(100.0)}
    policy = TeacherLogprobPolicy(_Student(), teachers, {"math": "/sft", "rlhf": "/rlhf"}, routing)
    data = BatchedDataDict({
        "input_ids": torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]]),
        "input_lengths": torch.tensor([3, 3, 3]),
        "token_mask": torch.ones(3, 3),
        "sample_mask": torch.ones(3),
    })
    trained = policy.train(data, loss_fn=None)
    assert trained["teacher_logprobs"].tolist() == [[1, 2, 3], [104, 105, 106], [7, 8, 9]]
    assert all(isinstance(b, BatchedDataDict) for t in teachers.values() for b in t.batches)
    assert teachers["/rlhf"].batches[0]["input_ids"].shape[0] == 2  # padded to the DP size
