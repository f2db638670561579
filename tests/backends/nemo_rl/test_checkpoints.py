from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.checkpoints import (
    convert_to_hf,
    hf_dir_for_step,
    list_steps,
    stage_result,
    step_of,
    weights_format,
)


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


RECORDER = """#!{python}
import json, os, sys
args = sys.argv[1:]
out = args[args.index("--hf-ckpt-path") + 1]
os.makedirs(out, exist_ok=True)
open(os.path.join(out, "config.json"), "w").write("{{}}")
with open({log!r}, "a") as log:
    log.write(json.dumps({{"exe": os.path.basename(sys.argv[0]), "argv": args, "cwd": os.getcwd()}}) + "\\n")
"""


def _executable(path: Path, log: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(RECORDER.format(python=sys.executable, log=str(log)))
    path.chmod(0o755)
    return path


def _megatron_step(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "nemo_rl"
    script = root / "examples" / "converters" / "convert_megatron_to_hf.py"
    script.parent.mkdir(parents=True)
    script.write_text("raise SystemExit('run by the recorder instead')\n")
    step = _step(tmp_path / "ckpt", 3, {}, weights="common.pt")
    for iteration in ("iter_0000001", "iter_0000003"):
        (step / "policy" / "weights" / iteration).mkdir()
    (step / "config.yaml").write_text("policy: {model_name: /m, tokenizer: {name: /m}}\n")
    return root, step


def test_megatron_weights_are_converted_with_the_megatron_workers_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The driver's venv has no megatron.bridge: the converter runs in NeMo RL's mcore venv."""
    root, step = _megatron_step(tmp_path)
    log = tmp_path / "calls.jsonl"
    monkeypatch.delenv("NEMO_RL_PY_EXECUTABLES_SYSTEM", raising=False)
    monkeypatch.delenv("NEMO_RL_VENV_DIR", raising=False)
    # before NeMo RL built the worker venv: `uv run --extra mcore` in the checkout
    _executable(tmp_path / "bin" / "uv", log)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    out = convert_to_hf(step, hf_dir_for_step(tmp_path / "hf", 3), nemo_rl_root=root)
    assert out == tmp_path / "hf" / "hf_step_3" and (out / "config.json").is_file()
    call = json.loads(log.read_text().splitlines()[-1])
    assert call["exe"] == "uv" and call["cwd"] == str(root)
    assert call["argv"][:7] == ["run", "--locked", "--extra", "mcore", "--directory", str(root), "python"]
    assert call["argv"][7:] == [
        str(root / "examples/converters/convert_megatron_to_hf.py"), "--config", str(step / "config.yaml"),
        "--megatron-ckpt-path", str(step / "policy/weights/iter_0000003"), "--hf-ckpt-path",
        str(tmp_path / "hf" / "hf_step_3.tmp")]
    # once the worker venv exists (NEMO_RL_VENV_DIR, default <checkout>/venvs): its python
    venv_python = _executable(root / "venvs" / compat.MEGATRON_WORKER_FQN / "bin" / "python", log)
    convert_to_hf(step, hf_dir_for_step(tmp_path / "hf", 3), nemo_rl_root=root)
    assert json.loads(log.read_text().splitlines()[-1])["exe"] == "python"
    assert compat.mcore_python_command(root, {}) == [str(venv_python)]
    assert compat.mcore_python_command(root, {"NEMO_RL_PY_EXECUTABLES_SYSTEM": "1"}) == [sys.executable]


def test_a_failed_conversion_names_the_command(tmp_path: Path) -> None:
    root, step = _megatron_step(tmp_path)
    with pytest.raises(RuntimeError, match=r"Megatron->HF converter failed \(exit 1\): .*false"):
        convert_to_hf(step, tmp_path / "hf" / "hf_step_3", nemo_rl_root=root, python=["false"])
    assert not (tmp_path / "hf" / "hf_step_3").exists()
