from __future__ import annotations

import json
from pathlib import Path

import pytest

from cascade_plugins.backends.nemo_rl.checkpoints import list_steps, stage_result, step_of, weights_format


def _step(root: Path, n: int, info: dict, weights: str = ".metadata") -> Path:
    path = root / f"step_{n}"
    (path / "policy" / "weights").mkdir(parents=True)
    (path / "policy" / "weights" / weights).write_text("")
    (path / "training_info.json").write_text(json.dumps(info))
    return path


def test_steps_are_listed_in_order_and_unfinished_ones_skipped(tmp_path: Path) -> None:
    for n in (10, 2):
        _step(tmp_path, n, {})
    (tmp_path / "tmp_step_11").mkdir()
    assert [step_of(p) for p in list_steps(tmp_path)] == [2, 10]
    assert list_steps(tmp_path / "missing") == []
    with pytest.raises(ValueError, match="not a NeMo RL step_N"):
        step_of(tmp_path / "tmp_step_11")


def test_weights_format_detection(tmp_path: Path) -> None:
    assert weights_format(_step(tmp_path / "a", 1, {})) == "dcp"
    megatron = _step(tmp_path / "b", 1, {}, weights="iter_0000001")
    assert weights_format(megatron) == "megatron"
    assert weights_format(_step(tmp_path / "c", 1, {}, weights="shard.safetensors")) == "safetensors"
    with pytest.raises(FileNotFoundError, match="model_save_format: torch_save"):
        weights_format(_step(tmp_path / "d", 1, {}, weights="README"))


def test_stage_result_takes_the_chosen_steps_validation_round(tmp_path: Path) -> None:
    _step(tmp_path, 5, {"current_step": 5, "val:accuracy": 0.3, "note": "x"})
    chosen = _step(tmp_path, 10, {"current_step": 10, "total_valid_tokens": 99.0})
    rounds = {"0": {"math": 0.1}, "5": {"math": 0.4, "code": 0.2}, "12": {"math": 0.9}}
    result = stage_result("rl", chosen, tmp_path / "hf", tmp_path, rounds)
    assert result.checkpoint.to_dict() == {"path": str(tmp_path / "hf"), "format": "hf", "stage": "rl", "step": 10}
    assert result.validation == {"math": 0.4, "code": 0.2}  # the latest round at or before step 10
    assert result.metrics == [{"step": 5, "current_step": 5, "val:accuracy": 0.3},
                              {"step": 10, "current_step": 10, "total_valid_tokens": 99.0}]
    assert stage_result("rl", chosen, tmp_path / "hf", tmp_path).validation == {}
