"""The teacher registry: every validated checkpoint per domain, and the rule that picks the best.

After each stage the sequencer records the stage's final validation (and any intermediate
evaluation that kept its checkpoint). ``best:<domain>`` teachers resolve through the
``cascade_select_teacher`` hook (first non-None answer wins) and then through the built-in rule:
the best score in the configured direction, ties to the earlier checkpoint.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from cascade_plugins.config.schema import RegistryConfig
from cascade_plugins.interfaces import StageResult

__all__ = ["RegistryError", "TeacherRegistry", "entries_from_result"]


class RegistryError(Exception):
    """No usable teacher for a domain."""


def entries_from_result(result: StageResult) -> dict[str, list[dict[str, Any]]]:
    """Registry entries ``{"stage", "step", "checkpoint", "score"}`` of one stage, per domain,
    intermediate evaluations first (in step order), then the final checkpoint."""
    out: dict[str, list[dict[str, Any]]] = {}
    final = result.checkpoint.to_dict()
    for evaluation in sorted(result.evaluations, key=lambda e: e.get("step") or 0):
        checkpoint = evaluation.get("checkpoint")
        if not checkpoint or checkpoint.get("path") == final["path"]:
            continue  # not kept, or the final checkpoint (recorded below)
        for domain, score in (evaluation.get("scores") or {}).items():
            out.setdefault(domain, []).append(
                {"stage": result.stage, "step": evaluation.get("step"), "checkpoint": dict(checkpoint),
                 "score": float(score)}
            )
    for domain, score in result.validation.items():
        out.setdefault(domain, []).append(
            {"stage": result.stage, "step": result.checkpoint.step, "checkpoint": dict(final), "score": float(score)}
        )
    return out


class TeacherRegistry:
    def __init__(self, config: RegistryConfig, entries: Mapping[str, list[dict[str, Any]]] | None = None):
        self.config = config
        self._entries: dict[str, list[dict[str, Any]]] = copy.deepcopy(dict(entries or {}))

    def record(self, result: StageResult) -> None:
        for domain, entries in entries_from_result(result).items():
            self._entries.setdefault(domain, []).extend(entries)

    def candidates(self, domain: str) -> list[dict[str, Any]]:
        return [dict(e) for e in self._entries.get(domain, []) if not math.isnan(e["score"])]

    def to_dict(self) -> dict[str, list[dict[str, Any]]]:
        return copy.deepcopy(self._entries)

    def builtin_best(self, domain: str) -> dict[str, Any] | None:
        """Best score by the domain's direction; the earliest wins a tie."""
        direction = self.config.direction_for(domain)
        sign = 1.0 if direction == "max" else -1.0
        best: dict[str, Any] | None = None
        for entry in self.candidates(domain):
            if best is None or sign * entry["score"] > sign * best["score"]:
                best = entry
        return best

    def select(self, domain: str, hook: Any | None = None) -> dict[str, Any]:
        """The teacher for ``domain``: a plugin's choice through ``hook.cascade_select_teacher``,
        else the built-in rule. The returned entry carries ``"rule"`` (``"plugin"``/``"best"``)."""
        candidates = self.candidates(domain)
        if not candidates:
            raise RegistryError(f"the teacher registry holds no validated checkpoint for domain {domain!r}")
        direction = self.config.direction_for(domain)
        if hook is not None:
            chosen = hook.cascade_select_teacher(
                domain=domain, candidates=candidates, metric=self.config.metric, direction=direction
            )
            if chosen is not None:
                checkpoint = chosen.get("checkpoint") if isinstance(chosen, Mapping) else None
                if not isinstance(checkpoint, Mapping) or not checkpoint.get("path"):
                    raise RegistryError(
                        f"a cascade_select_teacher plugin returned {chosen!r} for domain {domain!r}; "
                        "expected one of the candidate entries (with a 'checkpoint' path)"
                    )
                return {**dict(chosen), "rule": "plugin"}
        best = self.builtin_best(domain)
        assert best is not None
        return {**best, "rule": f"best ({direction} {self.config.metric})"}
