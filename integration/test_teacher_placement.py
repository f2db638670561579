"""Sync MOPD teacher placement with upstream's RayVirtualCluster / RayWorkerGroup on a fake GPU.

``grpo.setup`` sizes its colocated training cluster for two worker groups (student + vLLM), so a
teacher ``Policy`` placed next to them stays pending and the stage hangs at setup. The MOPD path
builds that cluster through :func:`compat.extra_training_worker_groups` with one more group per
teacher policy (Cascade 2: student + vLLM + 2 teachers; the third teacher is the reference
policy). Each case runs in its own process with a Ray of one fake GPU."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).with_name("placement_probe.py")


def _probe(mode: str, teachers: int) -> dict:
    done = subprocess.run([sys.executable, str(PROBE), mode, str(teachers)], capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_upstream_sizing_leaves_no_room_for_a_teacher() -> None:
    """The bug, reproduced: after the student and the generation engine the GPU is full."""
    out = _probe("upstream", 1)
    assert out["max_colocated_worker_groups"] == 2
    assert out["free_gpu_after_student_and_generation"] < out["gpu_per_worker"]
    assert out["teachers_ready"] == 0


@pytest.mark.parametrize("teachers", [2])
def test_sized_training_cluster_places_every_teacher(teachers: int) -> None:
    out = _probe("sized", teachers)
    assert out["max_colocated_worker_groups"] == 2 + teachers
    assert out["free_gpu_after_student_and_generation"] == pytest.approx(teachers * out["gpu_per_worker"])
    assert out["teachers_ready"] == teachers
    assert out["gpu_ids"] == ["0"]  # all on the one (fake) GPU
