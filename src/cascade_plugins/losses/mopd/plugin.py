"""Built-in plugin: registers the MOPD losses (``mopd`` and ``mopd_topk``)."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.hookspecs import Register
from cascade_plugins.losses.mopd.core import MOPDLoss
from cascade_plugins.losses.mopd.topk import TopKMOPDLoss


@hookimpl
def register_losses(register: Register) -> None:
    register(MOPDLoss)
    register(TopKMOPDLoss)
