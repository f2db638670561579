"""Built-in plugin: registers the MOPD losses (``mopd`` and ``mopd_topk``).

Registered lazily so that listing plugins or scoring rewards never imports torch.
"""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.hookspecs import Register
from cascade_plugins.plugins import LazyFactory


@hookimpl
def register_losses(register: Register) -> None:
    register(LazyFactory("mopd", "cascade_plugins.losses.mopd.core:MOPDLoss"))
    register(LazyFactory("mopd_topk", "cascade_plugins.losses.mopd.topk:TopKMOPDLoss"))
