"""Plan-time checks of a stage's NeMo RL config: what would stop the run, found before it starts.

- :func:`upstream_problems`: the stage config through NeMo RL's own ``load_config`` and its
  ``MasterConfig`` (types and values), plus every key we set checked against the keys NeMo RL
  knows for that section (the base YAML's keys and the fields of upstream's config classes), with
  a did-you-mean: upstream's config classes accept unknown keys silently. Needs NeMo RL importable.
- :func:`metric_problems`: ``checkpointing.metric_name`` against what the stage's validation
  reports (NeMo RL raises ``Metric ... not found`` at the first checkpoint otherwise).

Messages start with the ``hparams.`` key they are about, so ``cascade plan`` shows them at the line
that set it.
"""

from __future__ import annotations

import difflib
import tempfile
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from cascade_plugins.backends.nemo_rl.stage_config import MOPD_KEY

#: what NeMo RL's ``grpo.validate`` reports when validation goes through environments (not Gym)
ENVIRONMENT_VAL_METRICS = ("accuracy", "avg_length")
#: top-level keys of our stage configs that are not NeMo RL config sections to check key by key
UNCHECKED_SECTIONS = ("defaults", "env", "data", MOPD_KEY)

ValidationRoute = Literal["environments", "gym"]


# -- reading the stage config ----------------------------------------------------------------------


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def read_plain(path: str | Path) -> dict[str, Any]:
    """A NeMo RL YAML with its ``defaults:`` chain merged as NeMo RL's ``load_config`` does
    (depth first, later wins, a top-level ``_override_: true`` section replaces), but without
    OmegaConf: interpolations stay unresolved strings. For checks when NeMo RL is not importable."""
    path = Path(path)
    config = yaml.safe_load(path.read_text()) or {}
    return _inherit(config, path.parent)


def _inherit(config: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    config = dict(config)
    defaults = config.pop("defaults", None)
    if defaults is None:
        return config
    merged: dict[str, Any] = {}
    for parent in [defaults] if isinstance(defaults, str) else list(defaults):
        parent_path = Path(parent) if str(parent).startswith("/") else base_dir / str(parent)
        merged = _merge_with_override(merged, read_plain(parent_path))
    return _merge_with_override(merged, config)


def _merge_with_override(base: dict[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    base = dict(base)
    child = dict(child)
    for key, value in list(child.items()):
        if isinstance(value, Mapping) and value.get("_override_"):
            child[key] = {k: v for k, v in value.items() if k != "_override_"}
            base.pop(key, None)
    return _deep_merge(base, child)


def resolve_child(child: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """``child`` (a stage config with an absolute ``defaults:``) resolved through NeMo RL's own
    loader when NeMo RL is importable, else by :func:`read_plain`. Returns ``(config, None)`` or
    ``(None, why it could not be loaded)``."""
    from cascade_plugins.backends.nemo_rl import compat

    with tempfile.TemporaryDirectory(prefix="cascade-stage-") as tmp:
        path = Path(tmp) / "stage.yaml"
        path.write_text(yaml.safe_dump(dict(child), sort_keys=False))
        try:
            if compat.nemo_rl_available():
                return compat.load_config_dict(path), None
            return read_plain(path), None
        except Exception as exc:  # any loader failure is reported, with its own message
            return None, f"{type(exc).__name__}: {exc}"


# -- where a key was set ---------------------------------------------------------------------------


def _has_path(tree: Any, path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(tree, Mapping) or part not in tree:
            return False
        tree = tree[part]
    return True


def hparam_key(path: tuple[str, ...], overrides: Mapping[str, Any]) -> str:
    """The ``hparams.`` key a NeMo RL key came from: ``hparams.nemo_rl.overrides.<path>`` when the
    overrides set it, else the base config (``hparams.nemo_rl.defaults``)."""
    for depth in range(len(path), 0, -1):
        if _has_path(overrides, path[:depth]):
            return "hparams.nemo_rl.overrides." + ".".join(path[:depth])
    return "hparams.nemo_rl.defaults"


# -- the metric best-checkpoint selection ranks by ------------------------------------------------


def validation_route(config: Mapping[str, Any]) -> ValidationRoute:
    """How NeMo RL's ``validate`` rolls out: through NeMo-Gym, or through the environments."""
    return "gym" if bool((config.get("env") or {}).get("should_use_nemo_gym")) else "environments"


def _number(value: Any, default: float = 0.0) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else default


def validates(config: Mapping[str, Any]) -> bool:
    grpo = config.get("grpo") or {}
    return _number(grpo.get("val_period")) > 0 or bool(grpo.get("val_at_end"))


def reported_val_metrics(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``val:`` metrics an environment-validated stage reports (``pass_k`` with several
    generations per validation prompt)."""
    grpo = config.get("grpo") or {}
    extra = ("pass_k",) if _number(grpo.get("val_num_generations_per_prompt"), 1) > 1 else ()
    return (*ENVIRONMENT_VAL_METRICS, *extra)


def metric_problems(
    config: Mapping[str, Any], overrides: Mapping[str, Any], select: Literal["best", "last"], algorithm: str
) -> list[str]:
    """``checkpointing.metric_name`` against the stage's validation (GRPO stages)."""
    if algorithm != "grpo":
        return []
    checkpointing = config.get("checkpointing") or {}
    name = checkpointing.get("metric_name")
    key = hparam_key(("checkpointing", "metric_name"), overrides)
    if name is None:
        if select == "best":
            return ["hparams.nemo_rl.select: 'best' needs checkpointing.metric_name (e.g. 'val:accuracy')"]
        return []
    prefix, _, metric = str(name).partition(":")
    if prefix not in ("val", "train") or not metric:
        return [f"{key}: {name!r} must be 'val:<metric>' or 'train:<metric>'"]
    if prefix != "val":
        return []
    if not validates(config):
        if select == "best":
            return [
                f"hparams.nemo_rl.select: 'best' ranks checkpoints by {name!r}, but this stage runs no "
                "validation (grpo.val_period 0 and no val_at_end), so every checkpoint would tie; "
                "use select: last or give the stage validation"
            ]
        return []
    if validation_route(config) == "environments":
        reported = reported_val_metrics(config)
        if metric not in reported:
            close = difflib.get_close_matches(metric, reported, n=1)
            hint = f"; did you mean 'val:{close[0]}'?" if close else ""
            return [
                f"{key}: {name!r} is not reported by this stage's validation: it runs through "
                f"environments (not NeMo-Gym) and NeMo RL's validate reports only "
                f"{', '.join(repr('val:' + m) for m in reported)}; NeMo RL would stop at the first "
                f"checkpoint ('Metric {metric} not found'){hint}"
            ]
    return []


# -- upstream validation -------------------------------------------------------------------------


def _structured_fields(annotation: Any) -> dict[str, Any] | None:
    """The fields of a TypedDict / pydantic model annotation (unions merged, ``None`` stripped);
    ``None`` when the annotation is not a structured type (open dicts, lists, scalars)."""
    import typing_extensions
    from pydantic import BaseModel

    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        merged: dict[str, Any] | None = None
        for member in typing.get_args(annotation):
            fields = _structured_fields(member)
            if fields is not None:
                merged = {**(merged or {}), **fields}
        return merged
    if origin is typing.Annotated:
        return _structured_fields(typing.get_args(annotation)[0])
    if typing_extensions.is_typeddict(annotation):
        return dict(typing_extensions.get_type_hints(annotation))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields: dict[str, Any] = {}
        for name, info in annotation.model_fields.items():
            fields[name] = info.annotation
            if info.alias:
                fields[info.alias] = info.annotation
        return fields
    return None


def unknown_keys(
    child: Mapping[str, Any], base: Any, annotation: Any, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], list[str]]]:
    """Keys of ``child`` NeMo RL does not know: not in ``base`` (the base config at that node) and
    not a field of ``annotation`` (upstream's config class for it). Only nodes with a structured
    upstream type are checked (open dicts such as optimizer kwargs accept anything).
    Returns ``(key path, known keys at that node)`` per unknown key."""
    fields = _structured_fields(annotation)
    if fields is None:
        return []
    known = set(fields) | (set(base) if isinstance(base, Mapping) else set())
    out: list[tuple[tuple[str, ...], list[str]]] = []
    for key, value in child.items():
        if key not in known:
            out.append(((*path, str(key)), sorted(known)))
        elif isinstance(value, Mapping):
            sub_base = base.get(key) if isinstance(base, Mapping) else None
            out += unknown_keys(value, sub_base, fields.get(key), (*path, str(key)))
    return out


def unknown_key_problems(
    child: Mapping[str, Any], base: Mapping[str, Any], master_config: type, overrides: Mapping[str, Any]
) -> list[str]:
    problems = []
    top = {k: v for k, v in child.items() if k not in UNCHECKED_SECTIONS}
    for path, known in unknown_keys(top, base, master_config):
        close = difflib.get_close_matches(path[-1], known, n=1, cutoff=0.75)
        hint = f"; did you mean {'.'.join((*path[:-1], close[0]))!r}?" if close else ""
        where = ".".join(path[:-1]) or "the top level"
        problems.append(f"{hparam_key(path, overrides)}: NeMo RL has no key {path[-1]!r} under {where}{hint}")
    return problems


def _pydantic_problems(exc: Exception, overrides: Mapping[str, Any]) -> list[str]:
    problems = []
    for item in exc.errors():  # type: ignore[attr-defined]
        loc = tuple(str(p) for p in item["loc"] if not isinstance(p, int))
        got = item.get("input")
        shown = f" (got {got!r})" if isinstance(got, str | int | float | bool) else ""
        problems.append(f"{hparam_key(loc, overrides)}: NeMo RL rejects {'.'.join(loc)}: {item['msg']}{shown}")
    return problems


def upstream_problems(
    child: Mapping[str, Any], resolved: Mapping[str, Any], algorithm: Literal["grpo", "sft"],
    overrides: Mapping[str, Any],
) -> list[str]:
    """``resolved`` (the stage config through NeMo RL's loader) through upstream ``MasterConfig``,
    and ``child``'s keys against the keys NeMo RL knows. NeMo RL must be importable."""
    import pydantic

    from cascade_plugins.backends.nemo_rl import compat

    master = compat.master_config_class(algorithm)
    problems: list[str] = []
    try:
        compat.validate_master_config(algorithm, resolved)
    except pydantic.ValidationError as exc:
        problems += _pydantic_problems(exc, overrides)
    base_path = child.get("defaults")
    base, _ = resolve_child({"defaults": base_path}) if base_path else ({}, None)
    problems += unknown_key_problems(child, base or {}, master, overrides)
    return problems
