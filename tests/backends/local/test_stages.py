"""Real training on tiny problems: sft learns, grpo follows the reward, mopd follows the teacher,
and an interrupted stage resumes to exactly the weights of an uninterrupted one."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from cascade_plugins.backends.local.policy import load_policy, save_policy
from cascade_plugins.backends.local.trainers import group_advantages
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageResult, StageSpec

from .conftest import LETTERS_ROWS, RecordingReporter, state_dict_of, write_jsonl


@pytest.fixture(scope="module")
def sft_checkpoint(tmp_path_factory: pytest.TempPathFactory, registry: Any) -> CheckpointRef:
    """A tiny model fine-tuned on the letters task (the teacher / init of later stages)."""
    root = tmp_path_factory.mktemp("sft")
    data = write_jsonl(root / "letters.jsonl", LETTERS_ROWS)
    from .conftest import TINY_MODEL

    spec = StageSpec(
        name="sft",
        kind="sft",
        data={"letters": data},
        rewards={},
        hparams={"steps": 200, "lr": 1e-2, "batch_size": 16, "max_new_tokens": 4, "save_every": 0, "eval_every": 40},
        output_dir=str(root / "out"),
        model=dict(TINY_MODEL),
        eval={"letters": (data, RewardSpec("exact_answer"))},
    )
    result = registry.make_backend("local", registry=registry).run_stage(spec, RecordingReporter())
    return result.checkpoint


@pytest.fixture(scope="module")
def early_sft_checkpoint(sft_checkpoint: CheckpointRef) -> CheckpointRef:
    """The same run's evaluated checkpoint at step 40: a weaker model with the same tokenizer."""
    return CheckpointRef(str(Path(sft_checkpoint.path).with_name("step_000040")), "hf", "sft", 40)


def test_sft_loss_decreases_and_reports_progress(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    reporter = RecordingReporter()
    result = backend.run_stage(make_spec("sft", hparams={"steps": 30, "save_every": 0}), reporter)
    losses = [m["loss"] for m in result.metrics]
    assert len(losses) == 30
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5
    assert reporter.started == [(30, "sft (sft)")]
    assert [s for s, _ in reporter.steps] == list(range(1, 31))
    assert set(result.validation) == {"letters"}
    assert 0.0 <= result.validation["letters"] <= 1.0
    checkpoint = Path(result.checkpoint.path)
    assert result.checkpoint == CheckpointRef(str(checkpoint), "hf", "sft", 30)
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "tokenizer.json").is_file()


def test_sft_checkpoint_learned_the_task(sft_checkpoint: CheckpointRef) -> None:
    result = json.loads((Path(sft_checkpoint.path).parents[1] / "result.json").read_text())
    assert result["validation"]["letters"] >= 0.5


def test_finished_stage_is_not_run_again(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    spec = make_spec("sft", hparams={"steps": 3})
    first = backend.run_stage(spec, RecordingReporter())
    reporter = RecordingReporter()
    again = backend.run_stage(spec, reporter)
    assert again.to_dict() == StageResult.from_dict(first.to_dict()).to_dict()
    assert reporter.steps == [] and reporter.started == []


def test_group_advantages_are_normalized_within_groups() -> None:
    rewards = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    adv = group_advantages(rewards, normalize_std=True)
    assert torch.equal(adv[1], torch.zeros(4))
    torch.testing.assert_close(adv[0].mean(), torch.tensor(0.0))
    torch.testing.assert_close(adv[0].std(), torch.tensor(1.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(group_advantages(rewards, normalize_std=False)[0], torch.tensor([0.5, -0.5, -0.5, 0.5]))


def _first_token_logprob(path: str, prompt: str, token: str) -> float:
    policy = load_policy(path)
    ids = torch.tensor([policy.encode_prompt(prompt)])
    with torch.no_grad():
        logits = policy.model(input_ids=ids).logits[0, -1]
    target = policy.tokenizer(token, add_special_tokens=False).input_ids[0]
    return float(torch.log_softmax(logits, -1)[target])


def test_grpo_moves_the_policy_towards_reward(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path, h: SimpleNamespace
) -> None:
    # Reward 1 for completions starting with "a"; with 9 tokens, about 1 in 9 rollouts does at first.
    data = write_jsonl(tmp_path / "a.jsonl", [{"prompt": f"{c}>", "ground_truth": "a"} for c in "bcd"])
    model = dict(h.TINY_MODEL)
    spec = make_spec(
        "grpo",
        data={"x": data},
        rewards={"x": RewardSpec("starts_with")},
        eval={"x": (data, RewardSpec("starts_with"))},
        model=model,
        hparams={"steps": 8, "lr": 3e-2, "prompts_per_step": 6, "samples_per_prompt": 8, "max_new_tokens": 2},
    )
    from cascade_plugins.backends.local.config import ModelConfig
    from cascade_plugins.backends.local.policy import build_policy

    init = tmp_path / "init"
    save_policy(build_policy(ModelConfig(**model), seed=5), init)
    spec.init = CheckpointRef(str(init))
    before = _first_token_logprob(str(init), "b>", "a")
    result = backend.run_stage(spec, RecordingReporter())
    after = _first_token_logprob(result.checkpoint.path, "b>", "a")
    assert after > before + 0.5
    rewards = [m["reward"] for m in result.metrics]
    assert sum(rewards[-3:]) > sum(rewards[:3])
    assert all(m["truncated"] >= 0 for m in result.metrics)


def test_grpo_without_signal_makes_no_update(backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path) -> None:
    # An unreachable ground truth: every reward is 0, every advantage is 0, the weights stay put.
    data = write_jsonl(tmp_path / "z.jsonl", [{"prompt": "ab>", "ground_truth": "never"}])
    init = tmp_path / "init"
    from cascade_plugins.backends.local.config import ModelConfig
    from cascade_plugins.backends.local.policy import build_policy

    from .conftest import TINY_MODEL

    save_policy(build_policy(ModelConfig(**TINY_MODEL), seed=0), init)
    spec = make_spec(
        "grpo", data={"z": data}, rewards={"z": RewardSpec("exact_answer")}, eval={}, init=CheckpointRef(str(init))
    )
    result = backend.run_stage(spec, RecordingReporter())
    assert all(m["active_samples"] == 0 for m in result.metrics)
    before, after = state_dict_of(str(init)), state_dict_of(result.checkpoint.path)
    assert all(torch.equal(before[k], after[k]) for k in before)


def _reverse_kl_at_first_token(student_path: str, teacher_path: str) -> float:
    student, teacher = load_policy(student_path), load_policy(teacher_path)
    total = 0.0
    for row in LETTERS_ROWS:
        ids = torch.tensor([student.encode_prompt(row["prompt"])])
        with torch.no_grad():
            log_s = torch.log_softmax(student.model(input_ids=ids).logits[0, -1], -1)
            log_t = torch.log_softmax(teacher.model(input_ids=ids).logits[0, -1], -1)
        total += float((log_s.exp() * (log_s - log_t)).sum())
    return total / len(LETTERS_ROWS)


def test_mopd_with_the_student_as_teacher_changes_nothing(
    backend: Any, make_spec: Callable[..., StageSpec], sft_checkpoint: CheckpointRef
) -> None:
    spec = make_spec("mopd", init=sft_checkpoint, teachers={"letters": sft_checkpoint}, hparams={"steps": 3})
    result = backend.run_stage(spec, RecordingReporter())
    assert all(m["advantage_abs_mean"] == 0 for m in result.metrics)
    before, after = state_dict_of(sft_checkpoint.path), state_dict_of(result.checkpoint.path)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_mopd_moves_the_student_towards_a_better_teacher(
    backend: Any,
    make_spec: Callable[..., StageSpec],
    sft_checkpoint: CheckpointRef,
    early_sft_checkpoint: CheckpointRef,
) -> None:
    init = early_sft_checkpoint.path
    spec = make_spec(
        "mopd",
        init=early_sft_checkpoint,
        teachers={"letters": sft_checkpoint},
        hparams={"steps": 20, "lr": 2e-3, "prompts_per_domain": 16, "samples_per_prompt": 4},
    )
    before = _reverse_kl_at_first_token(str(init), sft_checkpoint.path)
    result = backend.run_stage(spec, RecordingReporter())
    after = _reverse_kl_at_first_token(result.checkpoint.path, sft_checkpoint.path)
    assert after < 0.95 * before
    kl = [m["reverse_kl/letters"] for m in result.metrics]
    assert sum(kl[-5:]) < 0.95 * sum(kl[:5])


def test_mopd_refuses_a_teacher_with_another_tokenizer(
    backend: Any, make_spec: Callable[..., StageSpec], sft_checkpoint: CheckpointRef, tmp_path: Path, h: SimpleNamespace
) -> None:
    from cascade_plugins.backends.local.config import ModelConfig
    from cascade_plugins.backends.local.policy import build_policy

    other = tmp_path / "other"
    save_policy(build_policy(ModelConfig(**dict(h.TINY_MODEL, tokenizer={"alphabet": "xyz"})), seed=0), other)
    spec = make_spec("mopd", init=sft_checkpoint, teachers={"letters": CheckpointRef(str(other))})
    with pytest.raises(ValueError, match="different tokenizer"):
        backend.run_stage(spec, RecordingReporter())


@pytest.mark.parametrize("kind", ["sft", "grpo", "mopd"])
def test_resumed_stage_ends_with_the_weights_of_an_uninterrupted_one(
    backend: Any, make_spec: Callable[..., StageSpec], sft_checkpoint: CheckpointRef, kind: str
) -> None:
    extra: dict[str, Any] = {"init": sft_checkpoint}
    if kind == "mopd":
        # a different teacher, so that the update is not zero
        extra["init"] = None
        extra["teachers"] = {"letters": sft_checkpoint}
    straight = backend.run_stage(make_spec(kind, name=f"{kind}_straight", **extra), RecordingReporter())

    interrupted = make_spec(kind, name=f"{kind}_resumed", **extra)
    with pytest.raises(KeyboardInterrupt):
        backend.run_stage(interrupted, RecordingReporter(fail_at=5))  # crash after step 5, last save at 4
    ckpts = sorted(p.name for p in (Path(interrupted.output_dir) / "checkpoints").iterdir())
    assert ckpts == ["step_000004"]
    reporter = RecordingReporter()
    resumed = backend.run_stage(interrupted, reporter)
    assert [s for s, _ in reporter.steps] == [5, 6]
    assert any("resuming from step 4" in m for m in reporter.messages)

    assert [m["step"] for m in resumed.metrics] == list(range(1, 7))
    a, b = state_dict_of(straight.checkpoint.path), state_dict_of(resumed.checkpoint.path)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.validation == straight.validation


def test_periodic_evaluation_keeps_its_checkpoints(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    spec = make_spec("sft", hparams={"steps": 6, "eval_every": 2, "save_every": 1, "keep_last": 1})
    result = backend.run_stage(spec, RecordingReporter())
    assert [e["step"] for e in result.evaluations] == [2, 4]
    for entry in result.evaluations:
        assert set(entry["scores"]) == {"letters"}
        assert Path(entry["checkpoint"]["path"], "model.safetensors").is_file()
        assert entry["checkpoint"]["stage"] == "sft"
    kept = sorted(p.name for p in (Path(spec.output_dir) / "checkpoints").iterdir())
    assert kept == ["step_000002", "step_000004", "step_000006"]


def _grpo_on(
    tmp_path: Path, make_spec: Callable[..., StageSpec], ground_truth: str, name: str = "grpo", **hparams: Any
) -> StageSpec:
    data = write_jsonl(tmp_path / "g.jsonl", [{"prompt": f"{c}>", "ground_truth": ground_truth} for c in "abcd"])
    hp = {"steps": 2, "lr": 1e-3, "save_every": 0, **hparams}
    return make_spec("grpo", name=name, data={"g": data}, rewards={"g": RewardSpec("starts_with")}, eval={}, hparams=hp)


def test_dynamic_filtering_drops_groups_without_signal_and_draws_again(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path
) -> None:
    spec = _grpo_on(tmp_path, make_spec, "never", dynamic_filtering=True, max_filter_draws=2)
    result = backend.run_stage(spec, RecordingReporter())
    assert [(m["groups"], m["draws"], m["active_samples"]) for m in result.metrics] == [(0, 3, 0), (0, 3, 0)]


def test_overlong_completions_get_the_penalty_reward(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path
) -> None:
    # One new token is never followed by the end token: every completion is cut, starts_with("")
    # would score 1.0, the overlong penalty makes it -1.
    kept = backend.run_stage(_grpo_on(tmp_path, make_spec, "", "a", max_new_tokens=1, overlong="none"), None)
    penalized = backend.run_stage(_grpo_on(tmp_path, make_spec, "", "b", max_new_tokens=1, overlong_reward=-1.0), None)
    assert all(m["truncated"] > 0.5 for m in kept.metrics)
    assert [m["reward"] for m in kept.metrics] == [1.0, 1.0]
    assert all(m["reward"] < 0 for m in penalized.metrics)


def test_a_half_written_checkpoint_is_ignored_and_cleaned(backend: Any, make_spec: Callable[..., StageSpec]) -> None:
    spec = make_spec("sft", hparams={"steps": 4})
    with pytest.raises(KeyboardInterrupt):
        backend.run_stage(spec, RecordingReporter(fail_at=3))
    root = Path(spec.output_dir) / "checkpoints"
    partial = root / ".step_000003.abc"  # what a kill during save_policy leaves
    partial.mkdir()
    (partial / "config.json").write_text("{")
    reporter = RecordingReporter()
    result = backend.run_stage(spec, reporter)
    assert [s for s, _ in reporter.steps] == [3, 4]
    assert not partial.exists()
    assert result.checkpoint.step == 4


def test_dynamic_filtering_trains_on_groups_from_several_draws(
    backend: Any, make_spec: Callable[..., StageSpec], tmp_path: Path
) -> None:
    spec = _grpo_on(tmp_path, make_spec, "a", steps=3, prompts_per_step=8, samples_per_prompt=4, dynamic_filtering=True)
    result = backend.run_stage(spec, RecordingReporter())
    assert any(m["draws"] > 1 for m in result.metrics)
    assert all(m["groups"] <= 8 for m in result.metrics)
    assert sum(m["active_samples"] for m in result.metrics) > 0


HF_WAY = """
import json, sys
from transformers import AutoModelForCausalLM, AutoTokenizer

path, prompts = sys.argv[1], json.loads(sys.argv[2])
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path)
out = {"one_by_one": [], "chat": [], "first_ids": tokenizer(prompts[0]).input_ids}
for prompt in prompts:
    inputs = tokenizer(prompt, return_tensors="pt")
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    out["one_by_one"].append(tokenizer.decode(generated[0, inputs.input_ids.shape[1]:], skip_special_tokens=True))
    chat = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                         return_tensors="pt", return_dict=True)
    generated = model.generate(**chat, max_new_tokens=4, do_sample=False)
    out["chat"].append(tokenizer.decode(generated[0, chat["input_ids"].shape[1]:], skip_special_tokens=True))
batch = tokenizer(prompts, return_tensors="pt", padding=True)
generated = model.generate(**batch, max_new_tokens=4, do_sample=False)
out["batched"] = tokenizer.batch_decode(generated[:, batch.input_ids.shape[1]:], skip_special_tokens=True)
print(json.dumps(out))
"""


def test_exported_checkpoint_generates_the_usual_hugging_face_way(sft_checkpoint: CheckpointRef) -> None:
    """AutoTokenizer + AutoModelForCausalLM + generate, in a process that never imports this package,
    answers exactly as the local host's own generation does: ``<s>`` is added by the tokenizer."""
    import subprocess
    import sys

    from cascade_plugins.backends.local.rollout import generate

    prompts = [row["prompt"] for row in LETTERS_ROWS]
    # short prompts and long ones, so batched generation pads on the left
    prompts = [*prompts, "a>", "abcab>"]
    done = subprocess.run([sys.executable, "-c", HF_WAY, sft_checkpoint.path, json.dumps(prompts)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    hf = json.loads(done.stdout.splitlines()[-1])

    policy = load_policy(sft_checkpoint.path)
    own = generate(policy, [policy.encode_prompt(p) for p in prompts], 4, greedy=True, batch_size=1).texts
    assert hf["first_ids"] == policy.encode_prompt(prompts[0]) and hf["first_ids"][0] == policy.bos_id
    assert hf["one_by_one"] == own
    assert hf["chat"] == own
    assert hf["batched"][: len(LETTERS_ROWS)] == own[: len(LETTERS_ROWS)]
    right = sum(text == row["answer"] for text, row in zip(hf["one_by_one"], LETTERS_ROWS, strict=False))
    assert right >= len(LETTERS_ROWS) // 2  # the fine-tuned answers, not noise
