"""Configs in NeMo RL's style: YAML with ``defaults:`` inheritance, ``_override_`` sections,
``${...}`` interpolation and Hydra-style overrides, validated into pydantic models. Every error
names the file, the key path and the line."""

from cascade_plugins.config.errors import ConfigError, ConfigProblem, format_key_path
from cascade_plugins.config.loader import LoadedConfig, load_mapping, load_yaml
from cascade_plugins.config.validate import (
    SectionError,
    SectionIssue,
    error_lines,
    load_config,
    section_error,
    section_issues,
    validate,
    validation_problems,
)

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "LoadedConfig",
    "SectionError",
    "SectionIssue",
    "error_lines",
    "format_key_path",
    "load_config",
    "load_mapping",
    "load_yaml",
    "section_error",
    "section_issues",
    "validate",
    "validation_problems",
]
