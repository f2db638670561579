"""Stage hand-off on real NeMo RL checkpoints: a tiny Llama trained a step on CPU, saved as DCP
in NeMo RL's layout by NeMo RL's own checkpoint code, picked (best / last) and converted to HF by
the backend with NeMo RL's converter, then reloaded with transformers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.checkpoints import finish_stage, weights_format


@pytest.fixture(scope="module")
def process_group():
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", init_method="tcp://127.0.0.1:29533", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def _logits(model_dir: Path, ids):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    with torch.no_grad():
        return model(ids).logits


def _train_and_save(model_dir: Path, manager, master, step: int, metric: float, seed: int):
    """One AdamW step from the HF folder, saved as ``step_<step>`` with ``val:accuracy``."""
    import torch
    from nemo_rl.utils.native_checkpoint import save_checkpoint
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, torch_dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    ids = torch.randint(5, model.config.vocab_size, (2, 12))
    model(ids, labels=ids).loss.backward()
    optimizer.step()
    tmp = Path(manager.init_tmp_checkpoint(step, {"current_step": step, "val:accuracy": metric}, master))
    save_checkpoint(
        model, str(tmp / "policy" / "weights"), optimizer=optimizer,
        optimizer_path=str(tmp / "policy" / "optimizer"), tokenizer=tokenizer,
        tokenizer_path=str(tmp / "policy" / "tokenizer"),
    )
    manager.finalize_checkpoint(tmp)
    with torch.no_grad():
        return model(torch.arange(5, 25).unsqueeze(0)).logits


def test_best_and_last_checkpoints_convert_to_hf(
    tmp_path: Path, nemo_rl_root: Path, process_group: None
) -> None:
    import torch
    from tiny_model import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    ckpt_dir = tmp_path / "stage" / "checkpoints"
    config = compat.load_config_dict(
        nemo_rl_root / "examples" / "configs" / "grpo_math_1B.yaml",
        [f"policy.model_name={model_dir}", f"checkpointing.checkpoint_dir={ckpt_dir}",
         "checkpointing.metric_name=val:accuracy", "checkpointing.higher_is_better=true",
         "checkpointing.save_period=1"],  # NeMo RL prunes steps off the save period
    )
    master = compat.validate_master_config("grpo", config)
    manager = compat.checkpoint_manager(master.checkpointing)
    best_logits = _train_and_save(model_dir, manager, master, 1, 0.9, seed=1)
    last_logits = _train_and_save(model_dir, manager, master, 2, 0.5, seed=2)
    assert not torch.allclose(best_logits, last_logits)
    assert weights_format(ckpt_dir / "step_1") == "dcp"

    ids = torch.arange(5, 25).unsqueeze(0)
    rounds = {"1": {"math": 0.9, "code": 0.2}, "2": {"math": 0.5, "code": 0.4}}
    best = finish_stage("s1", master.checkpointing, "best", tmp_path / "hf_best", rounds=rounds)
    assert best.checkpoint.step == 1 and best.checkpoint.format == "hf"
    assert best.checkpoint.path == str(tmp_path / "hf_best" / "hf_step_1")  # one folder per step
    assert best.validation == {"math": 0.9, "code": 0.2}
    assert [m["step"] for m in best.metrics] == [1, 2]
    torch.testing.assert_close(_logits(Path(best.checkpoint.path), ids), best_logits, rtol=0, atol=1e-5)

    # the stage runner's CLI path (what the backend's command runs), choosing the last step
    stage_yaml = tmp_path / "stage.yaml"
    stage_yaml.write_text(yaml.safe_dump(
        {"defaults": str(nemo_rl_root / "examples/configs/grpo_math_1B.yaml"),
         "policy": {"model_name": str(model_dir)},
         "checkpointing": {"checkpoint_dir": str(ckpt_dir), "metric_name": "val:accuracy", "save_period": 1}}
    ))
    result_path = tmp_path / "result.json"
    (tmp_path / "validation_rounds.json").write_text(json.dumps(rounds))  # what the runner records
    subprocess.run(
        [sys.executable, "-m", "cascade_plugins.backends.nemo_rl.stage_runner", "--config", str(stage_yaml),
         "--skip-training", "--stage", "s1", "--select", "last", "--result", str(result_path),
         "--hf-dir", str(tmp_path / "hf_last")],
        check=True,
    )
    result = json.loads(result_path.read_text())
    assert result["stage"] == "s1" and result["checkpoint"]["step"] == 2
    assert result["checkpoint"]["path"] == str(tmp_path / "hf_last" / "hf_step_2")
    assert result["validation"] == {"math": 0.5, "code": 0.4}
    torch.testing.assert_close(_logits(Path(result["checkpoint"]["path"]), ids), last_logits, rtol=0, atol=1e-5)
    # the next stage can start from it: the tokenizer came along
    from transformers import AutoTokenizer

    assert AutoTokenizer.from_pretrained(result["checkpoint"]["path"]).encode("ab") == [
        AutoTokenizer.from_pretrained(model_dir).encode("ab")
    ][0]


def test_megatron_converter_runs_with_upstreams_mcore_python(tmp_path: Path, nemo_rl_root: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The Megatron->HF converter needs megatron.bridge, which only NeMo RL's mcore environment has:
    the command is the one upstream registers for its Megatron worker (PY_EXECUTABLES.MCORE), or
    that worker's venv once NeMo RL built it, never the driver's Python."""
    from nemo_rl.distributed.ray_actor_environment_registry import ACTOR_ENVIRONMENT_REGISTRY
    from nemo_rl.distributed.virtual_cluster import PY_EXECUTABLES
    from nemo_rl.utils import venvs

    from cascade_plugins.backends.nemo_rl.checkpoints import megatron_converter_command

    monkeypatch.delenv("NEMO_RL_PY_EXECUTABLES_SYSTEM", raising=False)
    monkeypatch.delenv("NEMO_RL_VENV_DIR", raising=False)
    assert ACTOR_ENVIRONMENT_REGISTRY[compat.MEGATRON_WORKER_FQN] == PY_EXECUTABLES.MCORE
    step = tmp_path / "step_4"
    (step / "policy" / "weights" / "iter_0000004").mkdir(parents=True)
    command = megatron_converter_command(step, tmp_path / "out", nemo_rl_root)
    prefix = command[: command.index(str(nemo_rl_root / "examples/converters/convert_megatron_to_hf.py"))]
    assert prefix == [*PY_EXECUTABLES.MCORE.split(), "python"]
    assert (nemo_rl_root / "examples/converters/convert_megatron_to_hf.py").is_file()
    assert command[-4:] == ["--megatron-ckpt-path", str(step / "policy/weights/iter_0000004"),
                            "--hf-ckpt-path", str(tmp_path / "out")]
    # the venv NeMo RL builds for that worker (nemo_rl.utils.venvs), once it exists
    monkeypatch.setenv("NEMO_RL_VENV_DIR", str(tmp_path / "venvs"))
    python = tmp_path / "venvs" / compat.MEGATRON_WORKER_FQN / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    assert Path(venvs.DEFAULT_VENV_DIR) == nemo_rl_root / "venvs"  # the default we assume
    assert megatron_converter_command(step, tmp_path / "out", nemo_rl_root)[0] == str(python)
