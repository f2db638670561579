"""Validate a loaded config into pydantic models, turning every error into a located problem."""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cascade_plugins.config.errors import ConfigError, ConfigProblem, format_key_path
from cascade_plugins.config.loader import LoadedConfig, load_yaml

M = TypeVar("M", bound=BaseModel)


def _data_path(data: Any, loc: Sequence[Any]) -> tuple[str | int, ...]:
    """Keep only the ``loc`` parts that index into the data (pydantic adds union tags)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        indexes_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if (isinstance(node, Mapping) and part in node) or indexes_list:
            node = node[part]
            path.append(part)
        elif isinstance(part, str) and part not in ("[key]",) and not isinstance(node, (Mapping, list)):
            break
        # otherwise: a union member / tag name; skip it
    return tuple(path)


def _unwrap(annotation: Any) -> list[Any]:
    """The BaseModel / container types an annotation may stand for."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _unwrap(arg)]
    return [annotation]


def _models_at(model: type[BaseModel], path: Sequence[str | int]) -> list[type[BaseModel]]:
    """Every model class that may describe the mapping found at ``path``."""
    current: list[Any] = [model]
    for part in path:
        nxt: list[Any] = []
        for annotation in current:
            for t in _unwrap(annotation):
                origin = typing.get_origin(t)
                args = typing.get_args(t)
                if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(part, str):
                    field = t.model_fields.get(part) or next(
                        (f for f in t.model_fields.values() if f.alias == part), None
                    )
                    if field is not None:
                        nxt.append(field.annotation)
                elif origin in (list, tuple, typing.Sequence) and isinstance(part, int) and args:
                    nxt.append(args[0])
                elif origin in (dict, typing.Mapping) and len(args) == 2:
                    nxt.append(args[1])
        current = nxt
    return [t for a in current for t in _unwrap(a) if isinstance(t, type) and issubclass(t, BaseModel)]


def _suggestion(model: type[BaseModel], parent: Sequence[str | int], key: str) -> str:
    names: list[str] = []
    for cls in _models_at(model, parent):
        for name, field in cls.model_fields.items():
            names.append(field.alias or name)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def error_lines(model: type[BaseModel], error: ValidationError, prefix: str) -> list[str]:
    """One ``<prefix>.<key path>: <problem>`` line per problem of a section validated on its own
    (a backend's ``hparams``, ``model``, ``logger``); an unknown key gets a did-you-mean."""
    lines = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if isinstance(part, (str, int)))
        where = ".".join([prefix, *(str(part) for part in loc)]) if loc else prefix
        if item["type"] == "extra_forbidden" and loc:
            lines.append(f"{where}: unknown key {loc[-1]!r}{_suggestion(model, loc[:-1], str(loc[-1]))}")
        else:
            lines.append(f"{where}: {item['msg']}")
    return list(dict.fromkeys(lines))


def validation_problems(model: type[BaseModel], loaded: LoadedConfig, error: ValidationError) -> list[ConfigProblem]:
    problems: list[ConfigProblem] = []
    seen: set[tuple[str, str]] = set()
    for err in error.errors():
        loc = err.get("loc", ())
        path = _data_path(loaded.data, loc)
        if err["type"] == "extra_forbidden":
            key = path[-1] if path else str(loc[-1])
            message = f"unknown key {key!r}{_suggestion(model, path[:-1], str(key))}"
        elif err["type"] == "missing":
            missing = loc[-1]
            path = (*path, missing) if path[-1:] != (missing,) else path
            message = "required key is missing"
        else:
            value = err.get("input")
            shown = repr(value)
            if len(shown) > 60:
                shown = shown[:57] + "..."
            message = f"{err['msg']} (got {shown})" if not isinstance(value, (dict, list)) else err["msg"]
        file, line = loaded.locate(path)
        dedupe = (format_key_path(path), message)
        if dedupe in seen:
            continue
        seen.add(dedupe)
        problems.append(ConfigProblem(file, format_key_path(path), line, message))
    return problems


def validate(model: type[M], loaded: LoadedConfig) -> M:
    """Validate ``loaded.data`` as ``model``; raise :class:`ConfigError` listing every problem."""
    try:
        return model.model_validate(loaded.data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(model, loaded, exc)) from None


def load_config(path: str | Path, model: type[M], overrides: Sequence[str] = ()) -> M:
    """Load a YAML config (defaults, overrides, interpolation) and validate it as ``model``."""
    return validate(model, load_yaml(path, overrides))
