"""The embedded host (backend ``local``): real sft, grpo and mopd stages on torch + transformers."""

from cascade_plugins.backends.local.backend import LocalBackend, evaluate, lr_at
from cascade_plugins.backends.local.config import (
    HPARAMS_BY_KIND,
    GRPOHparams,
    ModelConfig,
    MOPDHparams,
    SFTHparams,
    parse_hparams,
    parse_model_config,
)

__all__ = [
    "HPARAMS_BY_KIND",
    "GRPOHparams",
    "LocalBackend",
    "MOPDHparams",
    "ModelConfig",
    "SFTHparams",
    "evaluate",
    "lr_at",
    "parse_hparams",
    "parse_model_config",
]
