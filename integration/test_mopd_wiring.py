"""The synchronous MOPD path's hooks into upstream ``grpo_train``, on CPU.

Upstream's own advantage-estimator factory is wrapped for one stage process and replaced by our
router, which feeds upstream's ``OPDAdvantageEstimator``; the MOPD stage's ``loss_fn`` keys make
upstream's ``ClippedPGLossFn`` compute Cascade 2's loss (Eq. 2-4, our ``NemoRLMOPDLoss``) on
those advantages. Teachers are NeMo RL ``Policy`` objects, which need GPUs; here they are
stand-ins with the same three methods (the placement of real worker groups is in
test_teacher_placement.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from test_mopd_parity import global_counts, make_batch

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.mopd_loss import NemoRLMOPDLoss
from cascade_plugins.backends.nemo_rl.mopd_runtime import (
    LogprobInputRecorder,
    MOPDAdvantageEstimator,
    plan_teachers,
)
from cascade_plugins.backends.nemo_rl.stage_config import mopd_loss_config
from cascade_plugins.backends.nemo_rl.stage_runner import refuse_unsupported

OPTIONS = {"importance_ratio_min": 0.5, "importance_ratio_max": 2.0, "normalization": "sequence"}


class _Teacher:
    """A teacher ``Policy`` stand-in: returns fixed log-probs for the rows it is given (looked up
    by their input ids), padded to its data-parallel size like a real one."""

    data_parallel_size = 2

    def __init__(self, logprobs_by_first_id: dict[int, torch.Tensor]) -> None:
        self.table = logprobs_by_first_id
        self.batches: list = []

    def prepare_for_lp_inference(self) -> None:
        pass

    def offload_after_refit(self) -> None:
        pass

    def get_logprobs(self, data):
        self.batches.append(data)
        rows = [self.table[int(ids[0])] for ids in data["input_ids"]]
        return {"logprobs": torch.stack(rows)[:, :-1]}  # one position short, as upstream pads per batch


class _Student:
    def __init__(self, prev: torch.Tensor) -> None:
        self.prev = prev

    def get_logprobs(self, data, timer=None):
        return {"logprobs": self.prev}

    def offload_after_refit(self) -> None:
        pass


def _master(nemo_rl_root: Path, overrides: list[str] = ()):
    config = compat.load_config_dict(nemo_rl_root / "examples/configs/grpo_math_1B.yaml", list(overrides))
    keys = mopd_loss_config(OPTIONS)
    config["loss_fn"].update(keys["loss_fn"])
    config["grpo"].update(keys["grpo"])
    return compat.validate_master_config("grpo", config)


def test_upstream_grpo_train_hooks_give_cascade_mopd_advantages_and_loss(nemo_rl_root: Path) -> None:
    from nemo_rl.algorithms import grpo
    from nemo_rl.algorithms.loss import ClippedPGLossFn
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    data, next_lp = make_batch(seed=7)
    rows = data["input_ids"].shape[0]
    data["input_ids"][:, 0] = torch.arange(rows)  # row keys for the stand-in teachers
    tasks = ["math" if r % 3 else "if" for r in range(rows)]
    teacher_lp = data["teacher_logprobs"]
    math_teacher = _Teacher({r: teacher_lp[r] for r in range(rows) if tasks[r] == "math"})
    master = _master(nemo_rl_root)
    plan = plan_teachers({"math": "/ckpt/sft", "if": "/ckpt/md"}, init_model="/ckpt/md", reference_logprobs=True)
    student = LogprobInputRecorder(_Student(data["prev_logprobs"]))
    logprob_batch = BatchedDataDict({k: data[k] for k in ("input_ids", "token_mask", "sample_mask")})
    logprob_batch["input_lengths"] = torch.full((rows,), data["input_ids"].shape[1])
    prev = student.get_logprobs(logprob_batch)["logprobs"]  # grpo_train's prev_logprobs pass
    # the IF teacher is the starting checkpoint: its log-probs are the reference policy's
    is_if = torch.tensor([t == "if" for t in tasks]).unsqueeze(-1)
    reference = torch.where(is_if, teacher_lp, torch.zeros_like(teacher_lp))

    original = grpo._create_advantage_estimator
    built: list[MOPDAdvantageEstimator] = []

    def wrap(inner):
        built.append(MOPDAdvantageEstimator(
            inner=inner, opd=compat.opd_advantage_estimator(master.loss_fn), plan=plan,
            teachers={"/ckpt/sft": math_teacher}, student=student, batch_factory=BatchedDataDict,
            log=lambda _m: None))
        return built[-1]

    mask = data["token_mask"] * data["sample_mask"].unsqueeze(-1)
    with compat.wrapped_advantage_estimator(wrap):
        estimator = grpo._create_advantage_estimator(master)  # what grpo_train calls
        advantages = estimator.compute_advantage(
            prompt_ids=torch.arange(rows), rewards=torch.zeros(rows), mask=mask,
            repeated_batch=BatchedDataDict({"task_name": tasks}), logprobs_policy=prev, logprobs_reference=reference)
    assert grpo._create_advantage_estimator is original  # restored
    assert estimator is built[0]
    assert all(isinstance(b, BatchedDataDict) for b in math_teacher.batches)
    assert math_teacher.batches[0]["input_ids"].shape[0] % 2 == 0  # padded to the DP size
    assert estimator.history == [{"<reference policy>": tasks.count("if"), "/ckpt/sft": tasks.count("math")}]
    # the stand-in's results, one position short, were zero-padded to the training length
    math_rows = [r for r in range(rows) if tasks[r] == "math"]
    routed_teacher = teacher_lp.clone()
    routed_teacher[math_rows, -1] = 0.0
    torch.testing.assert_close(advantages, (routed_teacher - data["prev_logprobs"]) * mask)

    # upstream's loss, configured by the stage config, is Cascade 2's MOPD loss on them
    gvs, gvt = global_counts(data)
    upstream_loss = ClippedPGLossFn(master.loss_fn)
    leaf = next_lp.clone().requires_grad_(True)
    up, _ = upstream_loss(next_token_logprobs=leaf, data=BatchedDataDict({**data, "advantages": advantages}),
                          global_valid_seqs=gvs, global_valid_toks=gvt)
    ours, _ = NemoRLMOPDLoss(OPTIONS, use_prev_logprobs=True)(
        next_lp, {**data, "teacher_logprobs": routed_teacher}, gvs, gvt)
    torch.testing.assert_close(up, ours, rtol=1e-6, atol=1e-7)


def test_setup_hook_and_cluster_sizing_wrap_upstream_and_are_restored(nemo_rl_root: Path) -> None:
    from nemo_rl.algorithms import grpo
    from nemo_rl.distributed.virtual_cluster import RayVirtualCluster

    original_setup, original_cluster = grpo.setup, grpo.RayVirtualCluster
    with compat.extra_training_worker_groups(2) as built, compat.after_grpo_setup(lambda a, k, out: ("hooked", *out)):
        sized = grpo.RayVirtualCluster(bundle_ct_per_node_list=[1], name="grpo_policy_cluster",
                                       max_colocated_worker_groups=2, num_gpus_per_node=1)
        inference = grpo.RayVirtualCluster(bundle_ct_per_node_list=[1], name="grpo_inference_cluster",
                                           max_colocated_worker_groups=1, num_gpus_per_node=1)
        assert isinstance(sized, RayVirtualCluster)
        assert sized.max_colocated_worker_groups == 4 and inference.max_colocated_worker_groups == 1
        assert built == [sized]
        assert grpo.setup is not original_setup
    assert (grpo.setup, grpo.RayVirtualCluster) == (original_setup, original_cluster)
    # the clusters grpo.setup trains on still carry the names the sizing looks for
    import inspect

    source = inspect.getsource(original_setup)
    assert all(f'name="{name}"' in source for name in compat.TRAINING_CLUSTER_NAMES)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"grpo": {"async_grpo": {"enabled": True}}}, "synchronous MOPD path"),
        ({"data_plane": {"enabled": True}}, "data_plane.enabled selects grpo_train_sync"),
        ({"loss_fn": {"force_on_policy_ratio": True}}, "needs prev_logprobs"),
    ],
)
def test_mopd_refuses_trainers_it_does_not_hook(override: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        refuse_unsupported(override, {"teachers": {"math": "/t"}})
    refuse_unsupported(override, None)  # other stages: upstream's own guards apply
