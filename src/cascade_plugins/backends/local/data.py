"""Training and evaluation rows for the local host: JSONL files per domain, sampled per step."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cascade_plugins.jsonl import JsonlError, read_jsonl

__all__ = ["DomainData", "draw_domains", "load_rows"]


def load_rows(path: str | Path, *, need_answer: bool = False, where: str = "") -> list[dict[str, Any]]:
    """Rows of a JSONL file; each must be an object with a string ``prompt`` (and ``answer`` for
    SFT). Errors name the file and line."""
    path = Path(path)
    label = f"{where}: " if where else ""
    if not path.is_file():
        raise FileNotFoundError(f"{label}data file {path} does not exist")
    rows: list[dict[str, Any]] = []
    try:
        for number, row in read_jsonl(path):
            if not isinstance(row.get("prompt"), str):
                raise ValueError(f"{label}{path}:{number}: row has no string 'prompt'")
            if need_answer and not isinstance(row.get("answer"), str):
                raise ValueError(f"{label}{path}:{number}: an sft row needs a string 'answer'")
            rows.append(row)
    except JsonlError as exc:
        raise ValueError(f"{label}{exc}") from None
    if not rows:
        raise ValueError(f"{label}{path} holds no rows")
    return rows


class DomainData:
    """Rows per domain and the relative weight each domain is drawn with."""

    def __init__(self, rows: Mapping[str, Sequence[dict[str, Any]]], weights: Mapping[str, float] | None = None):
        self.rows = {domain: list(r) for domain, r in rows.items()}
        self.domains = sorted(self.rows)
        weights = weights or {}
        self.weights = [float(weights.get(d, 1.0 if not weights else 0.0)) for d in self.domains]

    def draw(self, rng: random.Random, count: int) -> list[tuple[str, dict[str, Any]]]:
        """``count`` (domain, row) pairs: domains by weight, rows uniformly within a domain."""
        picked = draw_domains(rng, self.domains, self.weights, count)
        return [(domain, rng.choice(self.rows[domain])) for domain in picked]


def draw_domains(rng: random.Random, domains: Sequence[str], weights: Sequence[float], count: int) -> list[str]:
    return rng.choices(list(domains), weights=list(weights), k=count)
