"""Loading a cascade config file into :class:`CascadeConfig` (with its source lines for errors)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cascade_plugins.config import LoadedConfig, load_yaml, validate
from cascade_plugins.config.schema import CascadeConfig

__all__ = ["default_run_dir", "load_cascade_config"]


def load_cascade_config(path: str | Path, overrides: Sequence[str] = ()) -> tuple[CascadeConfig, LoadedConfig]:
    """Load and validate; raises ``ConfigError`` listing every problem with file, line and key.

    A config without ``name`` is named after its file, and the name is written into the loaded data
    so that the run's config snapshot (and its hash) keeps it.
    """
    loaded = load_yaml(path, overrides)
    if not loaded.data.get("name"):
        loaded.data["name"] = Path(path).stem
    return validate(CascadeConfig, loaded), loaded


def default_run_dir(config: CascadeConfig) -> Path:
    """``run_dir`` from the config, else ``runs/<name>``."""
    return Path(config.run_dir) if config.run_dir else Path("runs") / (config.name or "cascade")
