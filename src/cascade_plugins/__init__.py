"""cascade-plugins: Nemotron-Cascade 2's Cascade RL and multi-domain on-policy distillation
(MOPD) as plugins for NeMo RL, with an embedded CPU host for quickstarts, CI and plugin work."""

from cascade_plugins.hookspecs import hookimpl
from cascade_plugins.interfaces import CheckpointRef, Reward, RewardResult, Sample, StageResult, StageSpec

__version__ = "0.1.0"

__all__ = [
    "CheckpointRef",
    "Reward",
    "RewardResult",
    "Sample",
    "StageResult",
    "StageSpec",
    "__version__",
    "hookimpl",
]
