"""Places worker groups on one fake-GPU node the way a synchronous MOPD stage's ``grpo.setup`` does
(run as a script by test_teacher_placement.py, so it gets a Ray of its own).

    python placement_probe.py upstream|sized TEACHERS

``upstream``: the training cluster exactly as ``grpo.setup`` builds it for colocated vLLM
generation; ``sized``: the same call inside :func:`compat.extra_training_worker_groups`. The
student and the generation engine are placed first, then ``TEACHERS`` teacher groups, all with
upstream's ``RayWorkerGroup``. Prints one JSON line with what was placed."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path

import ray

from cascade_plugins.backends.nemo_rl import compat

WORKER_FQN = "placement_workers.SlotWorker"


def _free_gpu(pg) -> float:
    return float(ray.available_resources().get(f"GPU_group_{pg.id.hex()}", 0.0))


def main(mode: str, teachers: int) -> dict:
    compat.apply_python_shims()
    from nemo_rl.algorithms import grpo
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.distributed.virtual_cluster import PY_EXECUTABLES
    from nemo_rl.distributed.worker_groups import RayWorkerBuilder, RayWorkerGroup

    here = str(Path(__file__).resolve().parent)
    pythonpath = os.pathsep.join([here, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    os.environ["PYTHONPATH"] = pythonpath
    ray.init(num_cpus=16, num_gpus=1, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": pythonpath}})
    ACTOR_ENVIRONMENT_REGISTRY[WORKER_FQN] = PY_EXECUTABLES.SYSTEM
    sizing = compat.extra_training_worker_groups(teachers) if mode == "sized" else contextlib.nullcontext([])
    with sizing:
        # grpo.setup, colocated inference on one node (nemo_rl/algorithms/grpo.py, "grpo_policy_cluster")
        cluster = grpo.RayVirtualCluster(
            name="grpo_policy_cluster", bundle_ct_per_node_list=[1], use_gpus=True, num_gpus_per_node=1,
            max_colocated_worker_groups=2,
        )
    groups = {name: RayWorkerGroup(cluster, RayWorkerBuilder(WORKER_FQN), name_prefix=name)
              for name in ("student", "generation")}
    ray.get([w.ready.remote() for g in groups.values() for w in g.workers], timeout=300)
    pg = cluster.get_placement_groups()[0]
    out = {
        "max_colocated_worker_groups": cluster.max_colocated_worker_groups,
        "free_gpu_after_student_and_generation": _free_gpu(pg),
        "gpu_per_worker": 1 / cluster.max_colocated_worker_groups,
        "teachers_ready": 0,
    }
    teacher_groups = [RayWorkerGroup(cluster, RayWorkerBuilder(WORKER_FQN), name_prefix=f"teacher_{i}")
                      for i in range(teachers)]
    refs = [w.ready.remote() for g in teacher_groups for w in g.workers]
    # a worker that cannot be placed never becomes ready: grpo.setup would wait forever
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=60 if mode == "sized" else 15)
    out["teachers_ready"] = len(ready)
    out["gpu_ids"] = sorted({str(x) for g in groups.values() for w in g.workers for x in ray.get(w.ready.remote())})
    return out


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))), flush=True)
    ray.shutdown()
