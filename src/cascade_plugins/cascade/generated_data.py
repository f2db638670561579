"""Generated datasets: rows from a registered dataset generator, written once as JSONL."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cascade_plugins.atomic import write_text_atomic

if TYPE_CHECKING:
    from cascade_plugins.cascade.plan import DatasetSource
    from cascade_plugins.plugins import PluginRegistry

__all__ = ["sha256_of", "write_generated_dataset"]


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_generated_dataset(source: DatasetSource, registry: PluginRegistry) -> dict[str, Any]:
    """Write a generated dataset's rows to ``source.path`` as JSONL (atomically); returns its record."""
    assert source.generator is not None
    rows = list(registry.make_dataset(source.generator, **source.kwargs))
    path = Path(source.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return {
        "path": str(path), "generator": source.generator, "kwargs": dict(source.kwargs),
        "rows": len(rows), "sha256": sha256_of(path),
    }
