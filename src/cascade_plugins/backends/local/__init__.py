"""The embedded host (backend ``local``): real sft, grpo and mopd stages on torch + transformers."""

from __future__ import annotations

import importlib
from typing import Any

# Names resolve lazily (PEP 562) so that importing this package does not import torch.
_EXPORTS = {
    "LocalBackend": "backend",
    "evaluate": "backend",
    "lr_at": "backend",
    "HPARAMS_BY_KIND": "config",
    "GRPOHparams": "config",
    "ModelConfig": "config",
    "MOPDHparams": "config",
    "SFTHparams": "config",
    "parse_hparams": "config",
    "parse_model_config": "config",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)


__all__ = sorted(_EXPORTS)
