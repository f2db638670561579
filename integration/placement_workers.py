"""A worker that only occupies its slot, for test_teacher_placement.py (imported by Ray workers)."""

from __future__ import annotations

import ray


@ray.remote
class SlotWorker:
    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def ready(self) -> list[str]:
        """The GPUs Ray assigned this worker (a fake one here)."""
        return [str(g) for g in ray.get_gpu_ids()]
