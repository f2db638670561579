#!/usr/bin/env bash
# GPU smoke test of the NeMo RL backend: one GPU, tiny models built here, about 10 minutes.
#
#   NEMO_RL_ROOT=/path/to/NeMo-RL integration/gpu_smoke.sh [WORKDIR]
#
# Runs a two-stage cascade through the real stage runner (upstream setup(), vLLM, DTensor policy
# workers, grpo_train):
#   (b) grpo_mc: 2 GRPO steps on math + code rows scored by cascade_math / cascade_code, validated
#       every step on both eval sets, checkpoint chosen with select: best (val:accuracy);
#   (c) its HF hand-off (hf_step_N) is the next stage's starting checkpoint;
#   (a) mopd: 2 synchronous MOPD steps from that checkpoint with two teacher policies (math and
#       code teachers, two more tiny models) placed next to the student and vLLM on the one GPU.
# and prints each thing it checked. Needs NeMo RL's GPU environment: run it in NeMo RL's container
# (or a checkout whose uv worker venvs are built), with this package importable there.
# CASCADE_NEMO_RL_PYTHON picks the driver's Python (default: $NEMO_RL_ROOT/.venv/bin/python, else
# python3). SMOKE_TIMEOUT (seconds, default 540) bounds the cascade run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
: "${NEMO_RL_ROOT:?set NEMO_RL_ROOT to the NeMo RL checkout}"
work="${1:-$(mktemp -d /tmp/cascade-gpu-smoke.XXXXXX)}"
mkdir -p "$work"
python="${CASCADE_NEMO_RL_PYTHON:-}"
if [[ -z "$python" ]]; then
    if [[ -x "$NEMO_RL_ROOT/.venv/bin/python" ]]; then python="$NEMO_RL_ROOT/.venv/bin/python"; else python=python3; fi
fi
export NEMO_RL_ROOT CASCADE_NEMO_RL_PYTHON="$python"
export PYTHONPATH="$repo/src:$here${PYTHONPATH:+:$PYTHONPATH}"
export NRL_VIRTUAL_CLUSTER_MAX_RETRIES="${NRL_VIRTUAL_CLUSTER_MAX_RETRIES:-2}"
started=$(date +%s)
say() { printf '[gpu-smoke %4ss] %s\n' "$(( $(date +%s) - started ))" "$*"; }

say "workdir $work, python $python, NeMo RL $(git -C "$NEMO_RL_ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | head -1 | sed 's/^/[gpu-smoke] GPU: /'
"$python" -c "import nemo_rl, cascade_plugins" \
    || { echo "nemo_rl and cascade_plugins must both import in $python" >&2; exit 2; }

say "building the tiny student, two teachers, data and the cascade config"
"$python" - "$work" <<'PY'
import json, sys
from pathlib import Path

import yaml
from tiny_model import build_tiny_model, write_jsonl

work = Path(sys.argv[1])
for name, seed in (("student", 0), ("teacher_math", 1), ("teacher_code", 2)):
    build_tiny_model(work / "models" / name, seed=seed, hidden_size=256, heads=4, max_positions=512)
math = [{"prompt": f"What is {a}+{b}? Put the answer in \\boxed{{}}.", "ground_truth": str(a + b)}
        for a in range(1, 9) for b in range(1, 5)]
code = [{"prompt": f"Write a Python function f(x) that returns x+{k}.",
         "tests": [f"assert f(1) == {1 + k}", f"assert f(5) == {5 + k}"]} for k in range(1, 33)]
write_jsonl(work / "data" / "math.jsonl", math[:24])
write_jsonl(work / "data" / "math_val.jsonl", math[24:])
write_jsonl(work / "data" / "code.jsonl", code[:24])
write_jsonl(work / "data" / "code_val.jsonl", code[24:])

overrides = {
    "policy": {"train_micro_batch_size": 2, "logprob_batch_size": 2,
               "generation": {"vllm_cfg": {"gpu_memory_utilization": 0.25}}},
    "grpo": {"val_period": 1, "val_at_start": False, "val_batch_size": 8, "max_val_samples": 8,
             "val_num_generations_per_prompt": 1},
    "checkpointing": {"enabled": True, "save_period": 1, "keep_top_k": 5, "metric_name": "val:accuracy",
                      "higher_is_better": True, "model_save_format": "torch_save"},
    "logger": {"wandb_enabled": False, "tensorboard_enabled": False, "mlflow_enabled": False,
               "swanlab_enabled": False, "monitor_gpus": False},
    "cluster": {"gpus_per_node": 1, "num_nodes": 1},
}
cascade = {
    "name": "gpu_smoke",
    "backend": {"name": "nemo_rl", "options": {"mode": "run"}},
    "model": {"path": str(work / "models" / "student")},
    "domains": {"math": "math", "code": {"reward": {"name": "code", "options": {"require_fence": False}}}},
    "data": {n: str(work / "data" / f"{n}.jsonl") for n in ("math", "math_val", "code", "code_val")},
    "eval": {"sets": {"math": {"data": "math_val"}, "code": {"data": "code_val"}}},
    "hparams": {"common": {
        "steps": 2, "lr": 1.0e-5, "prompts_per_step": 4, "samples_per_prompt": 2, "temperature": 1.0,
        "max_new_tokens": 48, "max_total_tokens": 256, "max_prompt_tokens": 128, "kl": 0.0,
        "nemo_rl": {"defaults": "examples/configs/grpo_math_1B.yaml", "reward_workers": 1, "overrides": overrides},
    }},
    "stages": [
        {"name": "grpo_mc", "kind": "grpo", "init": "base", "data": {"math": "math", "code": "code"},
         "hparams": {"nemo_rl": {"select": "best"}}},
        {"name": "mopd", "kind": "mopd", "init": "grpo_mc", "data": {"math": "math", "code": "code"},
         "teachers": {"math": str(work / "models" / "teacher_math"), "code": str(work / "models" / "teacher_code")},
         "loss": {"name": "mopd", "options": {"importance_ratio_min": 0.5, "importance_ratio_max": 2.0}}},
    ],
}
(work / "smoke.yaml").write_text(yaml.safe_dump(cascade, sort_keys=False))
PY

say "cascade plan"
(cd "$work" && "$python" -m cascade_plugins plan smoke.yaml --run-dir "$work/run" | tail -n 25)

say "cascade run (limit ${SMOKE_TIMEOUT:-540}s; stage logs: $work/run/stages/*/nemo_rl/stage.log)"
if ! (cd "$work" && timeout "${SMOKE_TIMEOUT:-540}" "$python" -m cascade_plugins run smoke.yaml --run-dir "$work/run" --no-report); then
    for log in "$work"/run/stages/*/nemo_rl/stage.log; do
        [[ -f "$log" ]] && { echo "---- tail of $log"; tail -n 60 "$log"; }
    done
    say "FAILED: the cascade did not finish"
    exit 1
fi

say "checking what the stages left behind"
"$python" - "$work" <<'PY'
import json, sys
from pathlib import Path

import torch
import yaml
from transformers import AutoModelForCausalLM

work = Path(sys.argv[1])
stages = work / "run" / "stages"
failures = []


def check(ok: bool, what: str) -> None:
    print(f"[gpu-smoke] {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def logits(path) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(path, torch_dtype=torch.float32)
    with torch.no_grad():
        return model(torch.arange(5, 40).unsqueeze(0)).logits


# (b) GRPO with cascade_math + cascade_code validation, select: best
grpo = json.loads((stages / "grpo_mc" / "nemo_rl" / "result.json").read_text())
ckpts = stages / "grpo_mc" / "checkpoints"
infos = {int(p.name.split("_")[1]): json.loads((p / "training_info.json").read_text())
         for p in ckpts.glob("step_*")}
check(sorted(infos) == [1, 2], f"grpo_mc saved steps 1 and 2 (found {sorted(infos)})")
scores = {s: i.get("val:accuracy") for s, i in infos.items()}
best = max(scores, key=lambda s: (scores[s], s))
check(grpo["checkpoint"]["step"] in [s for s in scores if scores[s] == scores[best]],
      f"select: best chose step {grpo['checkpoint']['step']} (val:accuracy per step {scores})")
check(Path(grpo["checkpoint"]["path"]).name == f"hf_step_{grpo['checkpoint']['step']}",
      f"the hand-off is written per step: {grpo['checkpoint']['path']}")
rounds = json.loads((stages / "grpo_mc" / "nemo_rl" / "validation_rounds.json").read_text())
check(sorted(rounds) == ["1", "2"] and all({"math", "code"} <= set(r) for r in rounds.values()),
      f"per-domain validation rounds from cascade_math and cascade_code: {rounds}")
check({"math", "code"} <= set(grpo["validation"]), f"grpo_mc result validation {grpo['validation']}")
student0 = work / "models" / "student"
trained = logits(grpo["checkpoint"]["path"])
check(not torch.allclose(trained, logits(student0)), "the grpo_mc HF checkpoint loads and differs from the start")

# (c) the hand-off starts the next stage
mopd_cfg = yaml.safe_load((stages / "mopd" / "nemo_rl" / "stage.yaml").read_text())
check(mopd_cfg["policy"]["model_name"] == grpo["checkpoint"]["path"],
      f"mopd starts from grpo_mc's HF weights ({mopd_cfg['policy']['model_name']})")

# (a) synchronous MOPD, two teacher policies
log = (stages / "mopd" / "nemo_rl" / "stage.log").read_text()
check("(2 teacher policies)" in log, "mopd built 2 teacher policies next to the student and vLLM")
routed = [line for line in log.splitlines() if line.startswith("MOPD teacher rows:")]
teachers = {str(work / "models" / "teacher_math"), str(work / "models" / "teacher_code")}
check(len(routed) == 2 and all(all(t in line for t in teachers) for line in routed),
      f"every MOPD step scored rows with both teachers: {routed}")
loss_fn = mopd_cfg["loss_fn"]
check(loss_fn["disable_ppo_ratio"] and loss_fn["truncated_importance_sampling_type"] == "icepop"
      and not loss_fn["token_level_loss"], "mopd trains with upstream ClippedPGLossFn as REINFORCE + ICE-POP")
mopd = json.loads((stages / "mopd" / "nemo_rl" / "result.json").read_text())
check(mopd["checkpoint"]["step"] == 2, f"mopd finished 2 steps, hand-off {mopd['checkpoint']['path']}")
check(not torch.allclose(logits(mopd["checkpoint"]["path"]), trained), "the mopd checkpoint moved off grpo_mc's")
if failures:
    print(f"[gpu-smoke] {len(failures)} check(s) failed")
    sys.exit(1)
print("[gpu-smoke] all checks passed")
PY
say "done"
