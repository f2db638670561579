"""Configs in NeMo RL's style: YAML with ``defaults:`` inheritance, ``_override_`` sections,
``${...}`` interpolation and Hydra-style overrides, validated into pydantic models. Every error
names the file, the key path and the line."""

from cascade_plugins.config.errors import ConfigError, ConfigProblem, format_key_path
from cascade_plugins.config.loader import LoadedConfig, load_mapping, load_yaml
from cascade_plugins.config.validate import error_lines, load_config, validate, validation_problems

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "error_lines",
    "format_key_path",
    "load_config",
    "load_mapping",
    "load_yaml",
    "validate",
    "validation_problems",
]
