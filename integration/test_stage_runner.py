"""The stage runner drives upstream's own ``examples/run_grpo.py`` with the MOPD hooks installed,
as far as a machine without CUDA gets: a Ray cluster with one fake GPU, a MOPD stage emitted by
the backend for a tiny Llama and two tiny teachers. Upstream's script loads the config, builds
our environments from our JSONL, and ``grpo.setup`` builds the training cluster through the MOPD
sizing, then stops where vLLM would start (no ``vllm`` module on CPU)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_model import build_tiny_model, write_jsonl

from cascade_plugins.backends.nemo_rl.backend import NemoRLBackend
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake_gpu_ray(tmp_path: Path) -> Iterator[str]:
    """A Ray head with one fake GPU, tagged the way NeMo RL's init_ray reuses a cluster. It runs in
    its own process group (``ray start --block``), which is ended by its id afterwards."""
    ray_bin = Path(sys.executable).with_name("ray")
    port = _free_port()
    temp = Path("/tmp") / f"ray-fake-gpu-{os.getpid()}"  # Ray needs a short socket path
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # a private test cluster: no token to share
    with (tmp_path / "ray_head.log").open("w") as log:
        head = subprocess.Popen(
            [str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=8", "--num-gpus=1",
             '--resources={"nrl_tag_ALL": 1}', f"--temp-dir={temp}", "--include-dashboard=false",
             "--disable-usage-stats"],
            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until the head's GCS accepts connections
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert head.poll() is None, (tmp_path / "ray_head.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait()
        shutil.rmtree(temp, ignore_errors=True)


def test_mopd_stage_reaches_upstream_setup_with_a_sized_cluster(
    tmp_path: Path, nemo_rl_root: Path, fake_gpu_ray: str
) -> None:
    models = {name: build_tiny_model(tmp_path / name, seed=i) for i, name in enumerate(("sft", "t_math", "t_code"))}
    math = write_jsonl(tmp_path / "math.jsonl", [{"prompt": f"{i}+1=", "ground_truth": str(i + 1)} for i in range(8)])
    code = write_jsonl(tmp_path / "code.jsonl",
                       [{"prompt": f"f(x)=x+{i}", "tests": [f"assert f(1) == {i + 1}"]} for i in range(8)])
    spec = StageSpec(
        name="mopd", kind="mopd", data={"math": str(math), "code": str(code)},
        rewards={"math": RewardSpec("math"), "code": RewardSpec("code")},
        teachers={"math": CheckpointRef(str(models["t_math"])), "code": CheckpointRef(str(models["t_code"]))},
        hparams={"steps": 2, "prompts_per_step": 2, "samples_per_prompt": 2, "max_total_tokens": 128,
                 "max_new_tokens": 16, "nemo_rl": {"reward_workers": 1, "overrides": {
                     "logger": {"monitor_gpus": False}, "cluster": {"gpus_per_node": 1, "num_nodes": 1}}}},
        output_dir=str(tmp_path / "stage"), init=CheckpointRef(str(models["sft"])),
    )
    backend = NemoRLBackend(nemo_rl_root=str(nemo_rl_root), mode="emit")
    assert backend.check(spec) == []
    layout = backend.emit(spec)
    env = {**backend.process_env(), "RAY_ADDRESS": fake_gpu_ray, "RAY_AUTH_MODE": "disabled",
           # the vLLM worker in this Python, so it stops at the missing vllm module at once
           "NEMO_RL_PY_EXECUTABLES_SYSTEM": "1", "NRL_VIRTUAL_CLUSTER_MAX_RETRIES": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "cascade_plugins.backends.nemo_rl.stage_runner", "--config", str(layout.config)],
        cwd=str(nemo_rl_root), env=env, capture_output=True, text=True, timeout=900,
    )
    log = done.stdout + done.stderr
    assert done.returncode != 0, log[-3000:]  # no CUDA here: the run cannot finish
    assert "(2 teacher policies)" in log, log[-3000:]
    # upstream's run_grpo.py ran: config parsed, our JSONL loaded through our dataset class ...
    assert "Loaded configuration from:" in log and "Training dataset loaded with 16 samples" in log, log[-3000:]
    # ... and grpo.setup built its training cluster with room for both teachers
    assert "grpo_policy_cluster: room for 4 colocated worker groups (2 for MOPD teachers)" in log, log[-3000:]
    # it stopped where generation starts (no vllm on CPU), not in our code
    assert "ModuleNotFoundError: No module named 'vllm'" in log.splitlines()[-1], log[-3000:]
