"""After a stage: pick the checkpoint to hand on and convert it to Hugging Face weights.

NeMo RL writes ``<checkpoint_dir>/step_N/{training_info.json, config.yaml, policy/weights, ...}``.
``best`` asks NeMo RL's ``CheckpointManager`` for the step with the best
``checkpointing.metric_name`` (it falls back to the latest when no step has the metric);
``last`` takes the latest. DCP weights are converted with NeMo RL's ``convert_dcp_to_hf``;
Megatron weights (``policy/weights/iter_*``) with its ``examples/converters/convert_megatron_to_hf.py``
run by the Python of NeMo RL's Megatron workers (:func:`~.compat.mcore_python_command`: the driver's
venv has no ``megatron.bridge``). Step ``N`` is written to ``<hf_root>/hf_step_N``: NeMo RL caches
HF->Megatron conversions by path, so a folder name must never stand for two different weights.
The HF folder is written under a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from cascade_plugins.interfaces import CheckpointRef, StageResult

_STEP = re.compile(r"^step_(\d+)$")


def step_of(path: str | Path) -> int:
    match = _STEP.match(Path(path).name)
    if match is None:
        raise ValueError(f"{path} is not a NeMo RL step_N checkpoint folder")
    return int(match.group(1))


def list_steps(checkpoint_dir: str | Path) -> list[Path]:
    """Finished ``step_N`` folders in step order (``tmp_step_N`` are unfinished and skipped)."""
    root = Path(checkpoint_dir)
    if not root.is_dir():
        return []
    steps = [p for p in root.iterdir() if p.is_dir() and _STEP.match(p.name)]
    return sorted(steps, key=step_of)


def training_info(step_dir: str | Path) -> dict[str, Any]:
    path = Path(step_dir) / "training_info.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def select_checkpoint(checkpointing: Mapping[str, Any], select: Literal["best", "last"]) -> Path | None:
    """The chosen ``step_N`` folder (``None`` if the stage saved none)."""
    from cascade_plugins.backends.nemo_rl import compat

    manager = compat.checkpoint_manager(checkpointing)
    chosen = manager.get_best_checkpoint_path() if select == "best" else manager.get_latest_checkpoint_path()
    return Path(chosen) if chosen else None


def weights_format(step_dir: str | Path) -> Literal["dcp", "megatron", "safetensors"]:
    weights = Path(step_dir) / "policy" / "weights"
    if any(weights.glob("iter_*")):
        return "megatron"
    if (weights / ".metadata").is_file() or (weights / "model" / ".metadata").is_file():
        return "dcp"
    if any(weights.rglob("*.safetensors")):
        return "safetensors"
    raise FileNotFoundError(
        f"{weights}: no DCP (.metadata), Megatron (iter_*) or safetensors weights found; "
        "for DTensor v2 set checkpointing.model_save_format: torch_save so the weights are DCP"
    )


def _dcp_weights_dir(step_dir: Path) -> Path:
    weights = step_dir / "policy" / "weights"
    return weights / "model" if (weights / "model" / ".metadata").is_file() else weights


def hf_dir_for_step(hf_root: str | Path, step: int) -> Path:
    """Where step ``step``'s HF weights go: one folder per step (see the module docstring)."""
    return Path(hf_root) / f"hf_step_{step}"


def megatron_converter_command(
    step_dir: str | Path, out_dir: str | Path, nemo_rl_root: Path, python: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """NeMo RL's Megatron->HF converter for ``step_dir``'s latest ``iter_*``, run by ``python``
    (default: the Python of NeMo RL's Megatron workers)."""
    from cascade_plugins.backends.nemo_rl import compat

    step_dir = Path(step_dir)
    iterations = sorted((step_dir / "policy" / "weights").glob("iter_*"))
    if not iterations:
        raise FileNotFoundError(f"{step_dir / 'policy' / 'weights'}: no Megatron iter_* folder")
    environ = os.environ if environ is None else environ
    prefix = list(python) if python else compat.mcore_python_command(nemo_rl_root, environ)
    return [
        *prefix, str(compat.megatron_converter_script(nemo_rl_root)),
        "--config", str(step_dir / "config.yaml"),
        "--megatron-ckpt-path", str(iterations[-1]),
        "--hf-ckpt-path", str(out_dir),
    ]


def convert_to_hf(
    step_dir: str | Path, out_dir: str | Path, *, python: Sequence[str] | None = None,
    nemo_rl_root: Path | None = None,
) -> Path:
    """Convert ``step_dir``'s policy weights to an HF folder at ``out_dir`` (atomic rename)."""
    from cascade_plugins.backends.nemo_rl import compat

    step_dir = Path(step_dir)
    out_dir = Path(out_dir)
    config = yaml.safe_load((step_dir / "config.yaml").read_text())
    policy = config["policy"]
    tokenizer_dir = step_dir / "policy" / "tokenizer"
    tokenizer = str(tokenizer_dir) if tokenizer_dir.is_dir() else policy["tokenizer"]["name"]
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    fmt = weights_format(step_dir)
    if fmt == "dcp":
        compat.convert_dcp_to_hf(
            _dcp_weights_dir(step_dir), tmp, policy["model_name"], tokenizer, policy.get("hf_overrides") or {}
        )
    elif fmt == "megatron":
        root = nemo_rl_root or compat.nemo_rl_root()
        if root is None:
            raise RuntimeError("NeMo RL is not importable; cannot locate its Megatron converter")
        command = megatron_converter_command(step_dir, tmp, root, python)
        done = subprocess.run(command, cwd=str(root), check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{step_dir}: the Megatron->HF converter failed (exit {done.returncode}): {' '.join(command)}"
            )
        if not (tmp / "config.json").is_file():
            raise RuntimeError(f"{step_dir}: the Megatron->HF converter wrote no config.json into {tmp}")
    else:
        raise NotImplementedError(
            f"{step_dir}: consolidated safetensors are not converted here; "
            "set checkpointing.model_save_format: torch_save"
        )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def stage_result(
    stage: str, step_dir: Path, hf_dir: Path, checkpoint_dir: str | Path,
    rounds: Mapping[str, Mapping[str, float]] | None = None,
) -> StageResult:
    """The StageResult: the HF checkpoint, the numbers NeMo RL saved with each checkpoint (as
    per-step metrics), and the per-domain validation scores of the chosen step's validation
    round (``rounds``: step -> domain -> score; the latest round at or before that step)."""
    metrics = []
    for path in list_steps(checkpoint_dir):
        info = training_info(path)
        row = {"step": step_of(path), **{k: v for k, v in info.items() if _finite(v)}}
        metrics.append(row)
    step = step_of(step_dir)
    earlier = [int(s) for s in (rounds or {}) if int(s) <= step]
    validation = {d: float(v) for d, v in (rounds or {})[str(max(earlier))].items()} if earlier else {}
    return StageResult(
        stage=stage,
        checkpoint=CheckpointRef(path=str(hf_dir), format="hf", stage=stage, step=step_of(step_dir)),
        metrics=metrics,
        validation=validation,
    )


def finish_stage(
    stage: str,
    checkpointing: Mapping[str, Any],
    select: Literal["best", "last"],
    hf_root: str | Path,
    *,
    python: Sequence[str] | None = None,
    rounds: Mapping[str, Mapping[str, float]] | None = None,
) -> StageResult:
    """Pick the step, convert it to ``<hf_root>/hf_step_N`` and describe it as a StageResult."""
    step_dir = select_checkpoint(checkpointing, select)
    if step_dir is None:
        raise RuntimeError(
            f"stage {stage!r} saved no checkpoint in {checkpointing.get('checkpoint_dir')}; "
            "enable checkpointing (checkpointing.enabled: true) and save at the last step"
        )
    hf = hf_dir_for_step(hf_root, step_of(step_dir))
    if not (hf / "config.json").is_file():  # a rerun after the conversion finished reuses it
        convert_to_hf(step_dir, hf, python=python)
    return stage_result(stage, step_dir, hf, checkpointing["checkpoint_dir"], rounds)
