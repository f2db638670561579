"""YAML configs in NeMo RL's style, with every key traced back to its file and line.

- ``defaults:`` (a path or a list of paths, relative to the file that names them) is merged
  depth-first before the file itself; later defaults and the child win.
- A mapping with ``_override_: true`` replaces what it inherits instead of merging into it.
- ``${a.b}`` interpolation is resolved by OmegaConf after merging and overrides.
- Hydra-style overrides: ``a.b=1`` (key must exist), ``+a.new=2`` (key must not exist),
  ``++a.b=1`` (set either way), ``~a.b`` (delete). Values are parsed as YAML scalars/flow.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from cascade_plugins.config.errors import ConfigError, ConfigProblem, KeyPath, format_key_path

OVERRIDE_MARKER = "_override_"

Location = tuple[str, int | None]
Sources = dict[KeyPath, Location]
DEFAULTS_KEY = "defaults"


@dataclass
class LoadedConfig:
    """A merged, interpolated config plus where each key came from."""

    data: dict[str, Any]
    path: Path | None
    sources: Sources = field(default_factory=dict)

    def where(self, key_path: Sequence[str | int]) -> str:
        """``"file:line"`` of ``key_path`` (or of its nearest traced parent)."""
        file, line = self.locate(key_path)
        if file is None:
            return "<config>"
        return f"{file}:{line}" if line is not None else file

    def locate(self, key_path: Sequence[str | int]) -> tuple[str | None, int | None]:
        path = tuple(key_path)
        while True:
            if path in self.sources:
                return self.sources[path]
            if not path:
                return (str(self.path) if self.path else None, None)
            path = path[:-1]

    def problem(self, key_path: Sequence[str | int], message: str) -> ConfigProblem:
        file, line = self.locate(key_path)
        return ConfigProblem(file, format_key_path(key_path), line, message)


# ------------------------------------------------------------------------------------------
# Reading one file with line numbers
# ------------------------------------------------------------------------------------------


def _node_lines(node: yaml.Node, prefix: KeyPath, file: str, out: Sources) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            path = (*prefix, key)
            out[path] = (file, key_node.start_mark.line + 1)
            _node_lines(value_node, path, file, out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            path = (*prefix, index)
            out[path] = (file, item.start_mark.line + 1)
            _node_lines(item, path, file, out)


def _read_yaml(path: Path, referenced_from: ConfigProblem | None) -> tuple[dict[str, Any], Sources]:
    if not path.is_file():
        if referenced_from is not None:
            raise ConfigError(
                ConfigProblem(
                    referenced_from.file,
                    referenced_from.key_path,
                    referenced_from.line,
                    f"defaults file not found: {path}",
                )
            )
        raise ConfigError(ConfigProblem(str(path), "<root>", None, "config file not found"))
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(ConfigProblem(str(path), "<root>", line, f"invalid YAML: {reason}")) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(ConfigProblem(str(path), "<root>", 1, "the top level must be a mapping"))
    lines: Sources = {}
    if node is not None:
        _node_lines(node, (), str(path), lines)
    return data, lines


# ------------------------------------------------------------------------------------------
# Merging
# ------------------------------------------------------------------------------------------


def _merge(
    base: dict[str, Any],
    child: Mapping[str, Any],
    sources: Sources,
    child_lines: Mapping[KeyPath, Location],
    prefix: KeyPath = (),
) -> dict[str, Any]:
    """Deep-merge ``child`` into ``base`` (in place); dicts merge, everything else replaces."""
    for key, value in child.items():
        path = (*prefix, key)
        replace = isinstance(value, Mapping) and bool(value.get(OVERRIDE_MARKER, False))
        if isinstance(value, Mapping) and OVERRIDE_MARKER in value:
            value = {k: v for k, v in value.items() if k != OVERRIDE_MARKER}
        if isinstance(value, Mapping) and isinstance(base.get(key), dict) and not replace:
            _merge(base[key], value, sources, child_lines, path)
        else:
            _drop_sources(sources, path)
            base[key] = _strip_markers(copy.deepcopy(value))
            for sub_path, where in child_lines.items():
                if sub_path[: len(path)] == path and len(sub_path) > len(path):
                    sources[sub_path] = where
        if path in child_lines:
            sources[path] = child_lines[path]
    return base


def _strip_markers(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _strip_markers(v) for k, v in value.items() if k != OVERRIDE_MARKER}
    if isinstance(value, list):
        return [_strip_markers(v) for v in value]
    return value


def _drop_sources(sources: Sources, path: KeyPath) -> None:
    for key in [k for k in sources if k[: len(path)] == path]:
        del sources[key]


def _load_tree(
    path: Path,
    stack: tuple[Path, ...],
    referenced_from: ConfigProblem | None,
) -> tuple[dict[str, Any], Sources]:
    path = path.resolve()
    if path in stack:
        chain = " -> ".join(str(p) for p in (*stack, path))
        raise ConfigError(
            ConfigProblem(str(stack[-1]), DEFAULTS_KEY, None, f"defaults form a cycle: {chain}")
        )
    data, lines = _read_yaml(path, referenced_from)
    defaults = data.pop(DEFAULTS_KEY, None)
    if defaults is None:
        default_list: list[Any] = []
    elif isinstance(defaults, str):
        default_list = [defaults]
    elif isinstance(defaults, list):
        default_list = defaults
    else:
        raise ConfigError(
            ConfigProblem(str(path), DEFAULTS_KEY, lines.get((DEFAULTS_KEY,), (None, None))[1],
                          "defaults must be a path or a list of paths")
        )
    merged: dict[str, Any] = {}
    sources: Sources = {}
    for index, entry in enumerate(default_list):
        key_path: KeyPath = (DEFAULTS_KEY, index) if isinstance(defaults, list) else (DEFAULTS_KEY,)
        line = lines.get(key_path, (str(path), None))[1]
        if not isinstance(entry, str):
            raise ConfigError(ConfigProblem(str(path), format_key_path(key_path), line,
                                            "each defaults entry must be a path string"))
        here = ConfigProblem(str(path), format_key_path(key_path), line, "")
        parent_data, parent_sources = _load_tree(path.parent / entry, (*stack, path), here)
        _merge(merged, parent_data, sources, parent_sources)
    child_lines = {k: v for k, v in lines.items() if k[:1] != (DEFAULTS_KEY,)}
    _merge(merged, data, sources, child_lines)
    return merged, sources


# ------------------------------------------------------------------------------------------
# Overrides
# ------------------------------------------------------------------------------------------


def _parse_override(text: str) -> tuple[str, list[str], Any]:
    """``"+a.b=1"`` -> ``("add", ["a", "b"], 1)``."""
    if text.startswith("~"):
        key, value, mode = text[1:].split("=", 1)[0], None, "delete"
    else:
        if "=" not in text:
            raise ValueError("expected key=value, +key=value, ++key=value or ~key")
        key, raw = text.split("=", 1)
        if key.startswith("++"):
            mode, key = "force", key[2:]
        elif key.startswith("+"):
            mode, key = "add", key[1:]
        else:
            mode = "set"
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
    parts = [p for p in key.split(".")]
    if not key or any(not p for p in parts):
        raise ValueError(f"invalid key {key!r}")
    return mode, parts, value


def _apply_override(data: dict[str, Any], text: str, sources: Sources) -> None:
    where = ("<command line>", None)
    try:
        mode, parts, value = _parse_override(text)
    except ValueError as exc:
        raise ConfigError(ConfigProblem(where[0], text, None, f"bad override: {exc}")) from None
    node: Any = data
    walked: list[str | int] = []
    for part in parts[:-1]:
        key: str | int = int(part) if isinstance(node, list) and part.isdigit() else part
        if _has(node, key):
            node = node[key]
        elif isinstance(node, dict) and mode in ("add", "force"):
            node[key] = {}
            node = node[key]
        else:
            raise ConfigError(ConfigProblem(where[0], text, None, _missing_message(node, key, walked, mode)))
        walked.append(key)
    last: str | int = int(parts[-1]) if isinstance(node, list) and parts[-1].isdigit() else parts[-1]
    exists = (isinstance(node, dict) and last in node) or (
        isinstance(node, list) and isinstance(last, int) and 0 <= last < len(node)
    )
    if mode == "delete":
        if not exists:
            raise ConfigError(ConfigProblem(where[0], text, None, _missing_message(node, last, walked, mode)))
        del node[last]
        _drop_sources(sources, (*walked, last))
        return
    if mode == "set" and not exists:
        raise ConfigError(
            ConfigProblem(where[0], text, None,
                          _missing_message(node, last, walked, mode) + f"; to add it, use +{'.'.join(parts)}=...")
        )
    if mode == "add" and exists:
        raise ConfigError(
            ConfigProblem(where[0], text, None,
                          f"key {format_key_path([*walked, last])} already exists; "
                          f"use {'.'.join(parts)}=... to change it")
        )
    if not isinstance(node, (dict, list)):
        raise ConfigError(ConfigProblem(where[0], text, None, f"{format_key_path(walked)} is not a mapping"))
    if isinstance(node, list):
        if not isinstance(last, int) or not exists:
            raise ConfigError(ConfigProblem(where[0], text, None, f"bad list index {last!r}"))
        node[last] = value
    else:
        node[last] = value
    _drop_sources(sources, (*walked, last))
    sources[(*walked, last)] = ("<command line>", None)


def _has(node: Any, key: str | int) -> bool:
    if isinstance(node, dict):
        return key in node
    return isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)


def _missing_message(node: Any, key: str | int, walked: list[str | int], mode: str) -> str:
    full = format_key_path([*walked, key])
    msg = f"no key {full} in the config"
    if isinstance(node, dict):
        close = difflib.get_close_matches(str(key), [str(k) for k in node], n=1)
        if close:
            msg += f"; did you mean {format_key_path([*walked, close[0]])!r}?"
    return msg


# ------------------------------------------------------------------------------------------
# Public API
# ------------------------------------------------------------------------------------------


def load_yaml(path: str | Path, overrides: Iterable[str] = ()) -> LoadedConfig:
    """Load ``path`` with its ``defaults:`` chain, apply overrides, resolve interpolation."""
    path = Path(path)
    data, sources = _load_tree(path, (), None)
    for text in overrides:
        _apply_override(data, text, sources)
    try:
        resolved = OmegaConf.to_container(OmegaConf.create(data), resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or "<root>"
        parts = str(key).replace("[", ".").replace("]", "").split(".")
        key_path = tuple(int(p) if p.isdigit() else p for p in parts if p)
        loaded = LoadedConfig(data, path, sources)
        file, line = loaded.locate(key_path)
        message = str(exc).splitlines()[0]
        raise ConfigError(ConfigProblem(file, str(key), line, f"interpolation failed: {message}")) from None
    assert isinstance(resolved, dict)
    return LoadedConfig(resolved, path, sources)


def load_mapping(data: Mapping[str, Any], overrides: Iterable[str] = (), name: str = "<mapping>") -> LoadedConfig:
    """Like :func:`load_yaml` for a config already in memory (no ``defaults:`` resolution)."""
    copied = copy.deepcopy(dict(data))
    sources: Sources = {}
    for text in overrides:
        _apply_override(copied, text, sources)
    resolved = OmegaConf.to_container(OmegaConf.create(copied), resolve=True)
    assert isinstance(resolved, dict)
    loaded = LoadedConfig(resolved, None, sources)
    return loaded
