"""Teacher routing for MOPD: per-sample domain (or task) -> teacher alias -> checkpoint.

A domain resolves, in order, through ``routes[domain]``, then a teacher alias named like the
domain (so ``teachers: {math: /ckpt/sft}`` routes domain ``math`` directly), then ``default``.
A domain that resolves nowhere is an error, raised by :meth:`TeacherRouter.validate` before
training starts and by every lookup; there is no silent fallback.

YAML::

    teachers:                 # alias -> checkpoint (path, or {path, format, stage, step})
      math: /ckpt/sft
      rlhf: /ckpt/rlhf_branch
      multi_domain: /ckpt/after_md_rl
    routes:                   # domain/task -> alias
      acereason_math: math
      if_rl: multi_domain
    default: multi_domain     # optional
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from cascade_plugins.interfaces import CheckpointRef


class MissingTeacherRouteError(ValueError):
    """One or more domains have no teacher."""


class _CheckpointConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    path: str
    format: str = "hf"
    stage: str | None = None
    step: int | None = None

    @field_validator("path")
    @classmethod
    def _non_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("checkpoint path is empty")
        return value


class TeacherRoutingConfig(BaseModel):
    """The ``teachers`` / ``routes`` / ``default`` block of an MOPD stage."""

    model_config = ConfigDict(extra="forbid")
    teachers: dict[str, str | _CheckpointConfig]
    routes: dict[str, str] = {}
    default: str | None = None


def _as_checkpoint(value: str | CheckpointRef | _CheckpointConfig, where: str) -> CheckpointRef:
    if isinstance(value, CheckpointRef):
        return value
    if isinstance(value, _CheckpointConfig):
        if value.format not in ("hf", "dcp", "megatron"):
            raise ValueError(f"{where}.format: must be hf, dcp or megatron, got {value.format!r}")
        return CheckpointRef(path=value.path, format=value.format, stage=value.stage, step=value.step)  # type: ignore[arg-type]
    if isinstance(value, str) and value.strip():
        return CheckpointRef(path=value)
    raise ValueError(f"{where}: expected a checkpoint path, got {value!r}")


class TeacherRouter:
    """Resolves each sample's domain to the teacher checkpoint that scores its tokens."""

    def __init__(
        self,
        teachers: Mapping[str, str | CheckpointRef],
        routes: Mapping[str, str] | None = None,
        default: str | None = None,
    ) -> None:
        if not teachers:
            raise ValueError("teachers: at least one teacher (alias -> checkpoint) is required")
        self._teachers = {alias: _as_checkpoint(ckpt, f"teachers.{alias}") for alias, ckpt in teachers.items()}
        self._routes = dict(routes or {})
        for domain, alias in self._routes.items():
            if alias not in self._teachers:
                raise ValueError(
                    f"routes.{domain}: unknown teacher alias {alias!r} (known: {', '.join(sorted(self._teachers))})"
                )
        if default is not None and default not in self._teachers:
            raise ValueError(f"default: unknown teacher alias {default!r} (known: {', '.join(sorted(self._teachers))})")
        self._default = default

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "") -> TeacherRouter:
        """Build from a mapping with ``teachers``, ``routes`` and ``default``; errors name the key
        path, prefixed with ``where`` (e.g. ``stages.mopd``)."""
        prefix = f"{where}." if where else ""
        if isinstance(config, Mapping) and isinstance(config.get("teachers"), Mapping):
            teachers = {k: v.to_dict() if isinstance(v, CheckpointRef) else v for k, v in config["teachers"].items()}
            config = {**config, "teachers": teachers}
        try:
            parsed = TeacherRoutingConfig.model_validate(config)
        except ValidationError as exc:
            problems = "; ".join(
                f"{prefix}{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
            )
            raise ValueError(problems) from None
        try:
            teachers = {alias: _as_checkpoint(c, f"teachers.{alias}") for alias, c in parsed.teachers.items()}
            return cls(teachers, parsed.routes, parsed.default)
        except ValueError as exc:
            raise ValueError(f"{prefix}{exc}") from None

    @classmethod
    def direct(cls, teachers: Mapping[str, str | CheckpointRef]) -> TeacherRouter:
        """One teacher per domain, named by the domain (``StageSpec.teachers``), no default."""
        return cls(teachers)

    # -- lookup ------------------------------------------------------------------------------

    @property
    def teachers(self) -> dict[str, CheckpointRef]:
        """alias -> checkpoint."""
        return dict(self._teachers)

    @property
    def default(self) -> str | None:
        return self._default

    def _resolve(self, domain: str) -> str | None:
        if domain in self._routes:
            return self._routes[domain]
        if domain in self._teachers:
            return domain
        return self._default

    def alias_for(self, domain: str) -> str:
        alias = self._resolve(domain)
        if alias is None:
            raise MissingTeacherRouteError(self._missing_message([domain]))
        return alias

    def checkpoint_for(self, domain: str) -> CheckpointRef:
        return self._teachers[self.alias_for(domain)]

    def missing(self, domains: Iterable[str]) -> list[str]:
        """Domains without a teacher, sorted and without repeats."""
        return sorted({d for d in domains if self._resolve(d) is None})

    def validate(self, domains: Iterable[str]) -> None:
        """Raise :class:`MissingTeacherRouteError` naming every domain without a teacher."""
        missing = self.missing(domains)
        if missing:
            raise MissingTeacherRouteError(self._missing_message(missing))

    def group_by_checkpoint(self, domains: Sequence[str]) -> dict[CheckpointRef, list[int]]:
        """Sample indices per teacher checkpoint (aliases sharing a checkpoint share one entry),
        in order of first appearance: one teacher forward pass per key."""
        self.validate(domains)
        groups: dict[CheckpointRef, list[int]] = {}
        for index, domain in enumerate(domains):
            groups.setdefault(self.checkpoint_for(domain), []).append(index)
        return groups

    def _missing_message(self, missing: Sequence[str]) -> str:
        routed = sorted(set(self._routes) | set(self._teachers))
        return (
            f"no MOPD teacher for domain(s) {', '.join(repr(d) for d in missing)}: add them to "
            f"'routes' (domain -> alias) or set 'default' (routed domains: {', '.join(routed)}; "
            f"teacher aliases: {', '.join(sorted(self._teachers))})"
        )

    def __repr__(self) -> str:
        return f"TeacherRouter(teachers={self._teachers!r}, routes={self._routes!r}, default={self._default!r})"
