"""``dataset_name: cascade_plugins.backends.nemo_rl.dataset.CascadeJsonlDataset``: our JSONL in NeMo RL.

Imports NeMo RL and Hugging Face ``datasets`` (both present in any NeMo RL venv).
"""

from __future__ import annotations

import json
from typing import Any

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.data import ROW_COLUMN, extra_env_info
from cascade_plugins.jsonl import read_jsonl

compat.apply_python_shims()
from datasets import Dataset  # noqa: E402
from nemo_rl.data.datasets.raw_dataset import RawDataset  # noqa: E402


class CascadeJsonlDataset(RawDataset):
    """Rows of a local JSONL file, each kept whole (as JSON text) for :func:`cascade_data_processor`.

    ``task_name`` (the key NeMo RL routes rows to environments by) defaults to the file's stem.
    ``require_target: false`` accepts prompt-only rows (for distillation-only domains).
    Every row is checked up front, so a bad row fails the run before any GPU work, naming its
    file and line.
    """

    def __init__(
        self,
        data_path: str,
        task_name: str | None = None,
        split_validation_size: float = 0,
        seed: int = 42,
        require_target: bool = True,
        **kwargs: Any,
    ) -> None:
        self.task_name = task_name or str(data_path).rsplit("/", 1)[-1].split(".")[0]
        rows = []
        for number, row in read_jsonl(data_path):
            extra_env_info(row, f"{data_path}:{number}", require_target=require_target)  # validates
            rows.append(json.dumps(row, ensure_ascii=False))
        if not rows:
            raise ValueError(f"{data_path}: no rows")
        self.dataset = Dataset.from_dict({ROW_COLUMN: rows, "task_name": [self.task_name] * len(rows)})
        self.val_dataset = None
        self.split_train_validation(split_validation_size, seed)
