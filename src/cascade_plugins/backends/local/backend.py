"""The embedded host: runs ``sft``, ``grpo`` and ``mopd`` stages in-process on torch + transformers.

Layout of a stage's ``output_dir``::

    checkpoints/step_000050/   HF directory (safetensors + tokenizer) + trainer_state.pt + state.json
    result.json                the StageResult, written last; its presence means "stage done"

Checkpoint directories appear atomically (written aside, then renamed), so after a crash the
newest ``step_*`` directory is always complete and the stage resumes from it. ``result.json`` and
``state.json`` name checkpoints relative to ``output_dir``, so the folder can be moved.

On a stop request (``StageReporter.stop_requested()``, SIGINT / SIGTERM) the stage saves a
checkpoint of the step it just finished and raises :class:`StageInterrupted`. Metrics go to
``spec.logger["log_dir"]`` (:mod:`cascade_plugins.backends.local.tracking`).
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from cascade_plugins.atomic import write_json_atomic
from cascade_plugins.backends.local.config import (
    GRPOHparams,
    ModelConfig,
    MOPDHparams,
    SFTHparams,
    StageHparams,
    parse_hparams,
    parse_model_config,
)
from cascade_plugins.backends.local.data import DomainData, load_rows
from cascade_plugins.backends.local.policy import Policy, build_policy, load_policy, save_policy
from cascade_plugins.backends.local.rollout import ScoreCache, generate, row_to_sample, score_deduplicated
from cascade_plugins.backends.local.tracking import StageTracker, check_tracking, parse_tracking
from cascade_plugins.backends.local.trainers import GRPOTrainer, MOPDTrainer, SFTTrainer
from cascade_plugins.interfaces import (
    CheckpointRef,
    Reward,
    RewardResult,
    RewardSpec,
    Sample,
    StageInterrupted,
    StageReporter,
    StageResult,
    StageSpec,
    stop_requested,
)

__all__ = ["DEFAULT_MOPD_LOSS", "LocalBackend", "evaluate", "lr_at"]

DEFAULT_MOPD_LOSS = "mopd"
_UNSUPPORTED_LOSSES = {"mopd_topk": "the local host computes sampled-token log-probs; use the 'mopd' loss"}
_STEP_DIR = re.compile(r"^step_(\d+)$")
_TRAINER_STATE = "trainer_state.pt"
_STATE = "state.json"
_RESULT = "result.json"


class _SilentReporter:
    def start(self, total_steps: int, description: str = "") -> None:
        pass

    def step(self, step: int, metrics: Mapping[str, Any]) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def stop_requested(self) -> str | None:
        return None


def lr_at(step: int, hp: StageHparams) -> float:
    """Learning rate of optimizer step ``step`` (1-based): linear warm-up from ``lr * min_lr_ratio``,
    then constant, cosine or linear decay to ``lr * min_lr_ratio`` at the last step."""
    floor = hp.lr * hp.min_lr_ratio
    if hp.warmup_steps and step <= hp.warmup_steps:
        return floor + (hp.lr - floor) * step / hp.warmup_steps
    if hp.lr_schedule == "constant":
        return hp.lr
    span = max(1, hp.steps - hp.warmup_steps)
    progress = min(1.0, (step - hp.warmup_steps) / span)
    if hp.lr_schedule == "cosine":
        return floor + (hp.lr - floor) * 0.5 * (1 + math.cos(math.pi * progress))
    return hp.lr - (hp.lr - floor) * progress


def _reward_key(spec: RewardSpec) -> str:
    return json.dumps([spec.name, dict(spec.options)], sort_keys=True, default=str)


def evaluate(
    policy: Policy,
    sets: Mapping[str, tuple[list[dict[str, Any]], Reward]],
    max_new_tokens: int,
    batch_size: int,
    cache: ScoreCache | None = None,
    reward_keys: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Greedy accuracy (mean reward) of ``policy`` on each domain's rows."""
    scores: dict[str, float] = {}
    for domain, (rows, reward) in sorted(sets.items()):
        prompts = [policy.encode_prompt(row["prompt"]) for row in rows]
        rollouts = generate(policy, prompts, max_new_tokens, greedy=True, batch_size=batch_size)
        samples = [row_to_sample(row, text, domain) for row, text in zip(rows, rollouts.texts, strict=True)]
        key = (reward_keys or {}).get(domain, "")
        results = score_deduplicated(reward, samples, cache if key else None, key)
        scores[domain] = sum(float(r.reward) for r in results) / len(results)
    return scores


class LocalBackend:
    """Backend ``local``: a single-process host for CPU or one GPU (see ``docs/local-backend.md``).

    ``registry`` (optional) is the plugin registry rewards and losses come from; by default the
    process-wide one.
    """

    name = "local"
    #: polls ``reporter.stop_requested()`` after every step and saves a checkpoint before stopping
    graceful_stop = True

    def __init__(self, registry: Any = None) -> None:
        self._registry = registry
        #: reward results by (reward, sample), reused across steps and stages of this backend
        self.score_cache = ScoreCache()

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from cascade_plugins.plugins import get_registry

            self._registry = get_registry()
        return self._registry

    # -- check -----------------------------------------------------------------------------------

    def check(self, spec: StageSpec) -> list[str]:
        """Every problem with ``spec`` found without compute (no model is built, no data read)."""
        where = f"stage {spec.name!r}"
        problems: list[str] = []
        hp: StageHparams | None = None
        try:
            hp = parse_hparams(spec.kind, spec.hparams)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")
        if spec.init is None:
            try:
                model = parse_model_config(spec.model)
                if model.path is not None and not (Path(model.path) / "config.json").is_file():
                    problems.append(f"{where}: model.path {model.path} is not a Hugging Face checkpoint directory")
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        elif spec.init.format != "hf":
            problems.append(f"{where}: init checkpoint format {spec.init.format!r}; the local host loads 'hf' only")
        elif spec.init.stage is None and not (Path(spec.init.path) / "config.json").is_file():
            problems.append(f"{where}: init {spec.init.path} is not a Hugging Face checkpoint directory")
        if not spec.data:
            problems.append(f"{where}: no training data (data: is empty)")
        if hp is not None and hp.domain_weights:
            unknown = sorted(set(hp.domain_weights) - set(spec.data))
            if unknown:
                problems.append(f"{where}: hparams.domain_weights names domains without data: {', '.join(unknown)}")
            elif not any(hp.domain_weights.get(d, 0) > 0 for d in spec.data):
                problems.append(f"{where}: hparams.domain_weights gives every data domain weight 0")
        if spec.kind == "grpo":
            missing = sorted(set(spec.data) - set(spec.rewards))
            if missing:
                problems.append(f"{where}: grpo needs a reward for every data domain; none for {', '.join(missing)}")
        if spec.kind == "mopd":
            missing = sorted(set(spec.data) - set(spec.teachers))
            if missing:
                problems.append(f"{where}: mopd needs a teacher for every data domain; none for {', '.join(missing)}")
            for domain, teacher in sorted(spec.teachers.items()):
                if teacher.format != "hf":
                    problems.append(f"{where}: teachers.{domain} format {teacher.format!r}; the local host loads 'hf'")
                elif teacher.stage is None and not (Path(teacher.path) / "config.json").is_file():
                    problems.append(f"{where}: teachers.{domain} {teacher.path} is not a Hugging Face checkpoint")
            loss_name = spec.loss.name if spec.loss else DEFAULT_MOPD_LOSS
            if loss_name in _UNSUPPORTED_LOSSES:
                problems.append(f"{where}: loss {loss_name!r}: {_UNSUPPORTED_LOSSES[loss_name]}")
            else:
                problems.extend(self._known(where, "loss", "loss", loss_name))
        for domain, reward in sorted(spec.rewards.items()):
            problems.extend(self._known(where, f"rewards.{domain}", "reward", reward.name))
        for domain, (_, reward) in sorted(spec.eval.items()):
            problems.extend(self._known(where, f"eval.{domain}", "reward", reward.name))
        problems.extend(f"{where}: {problem}" for problem in check_tracking(spec.logger))
        return problems

    def _known(self, where: str, key: str, kind: str, name: str) -> list[str]:
        try:
            self.registry.get(kind, name)
        except KeyError as exc:
            return [f"{where}: {key}: {exc}"]
        return []

    # -- run -------------------------------------------------------------------------------------

    def run_stage(self, spec: StageSpec, reporter: StageReporter | None = None) -> StageResult:
        problems = self.check(spec)
        if problems:
            raise ValueError("; ".join(problems))
        return _StageRun(self, spec, reporter or _SilentReporter()).run()


class _StageRun:
    def __init__(self, backend: LocalBackend, spec: StageSpec, reporter: StageReporter):
        self.backend, self.spec, self.reporter = backend, spec, reporter
        self.hp = parse_hparams(spec.kind, spec.hparams)
        self.out = Path(spec.output_dir)
        self.ckpt_root = self.out / "checkpoints"
        self.rewards: dict[str, Reward] = {}
        self.reward_keys: dict[str, str] = {}  # eval domain -> reward cache key
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if self.hp.device == "auto" else self.hp.device

    # rewards are shared between training and evaluation when configured identically
    def reward(self, spec: RewardSpec) -> Reward:
        key = _reward_key(spec)
        if key not in self.rewards:
            self.rewards[key] = self.backend.registry.make_reward(spec.name, **dict(spec.options))
        return self.rewards[key]

    # checkpoints are named relative to ``output_dir`` in result.json / state.json (portable); in
    # memory they are absolute. A name written by an older version (absolute) is re-rooted here.
    def _portable(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        path = Path(ref["path"])
        return {**ref, "path": path.relative_to(self.out).as_posix() if path.is_relative_to(self.out) else str(path)}

    def _local(self, ref: Mapping[str, Any]) -> dict[str, Any]:
        path = Path(ref["path"])
        if path.is_absolute():
            path = self.ckpt_root / path.name if _STEP_DIR.match(path.name) else path
        else:
            path = self.out / path
        return {**ref, "path": str(path)}

    def _portable_evaluations(self, evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "checkpoint": self._portable(e["checkpoint"])} if e.get("checkpoint") else e for e in evaluations]

    def _local_evaluations(self, evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**e, "checkpoint": self._local(e["checkpoint"])} if e.get("checkpoint") else e for e in evaluations]

    def _read_result(self, path: Path) -> StageResult:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["checkpoint"] = self._local(data["checkpoint"])
        data["evaluations"] = self._local_evaluations(list(data.get("evaluations", [])))
        return StageResult.from_dict(data)

    def run(self) -> StageResult:
        result_path = self.out / _RESULT
        if result_path.is_file():
            return self._read_result(result_path)
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(self.hp.num_threads)
        try:
            return self._run()
        finally:
            for reward in self.rewards.values():
                reward.close()

    def _latest_checkpoint(self) -> tuple[int, Path] | None:
        if not self.ckpt_root.is_dir():
            return None
        found = []
        for child in self.ckpt_root.iterdir():
            match = _STEP_DIR.match(child.name)
            if match and (child / _TRAINER_STATE).is_file() and (child / _STATE).is_file():
                found.append((int(match.group(1)), child))
        return max(found) if found else None

    def _initial_policy(self) -> Policy:
        spec = self.spec
        if spec.init is not None:
            return load_policy(spec.init.path, self.device)
        model: ModelConfig = parse_model_config(spec.model)
        if model.path is not None:
            return load_policy(model.path, self.device, model.dtype)
        policy = build_policy(model, spec.seed)
        policy.model.to(self.device)
        return policy

    def _eval_sets(self) -> dict[str, tuple[list[dict[str, Any]], Reward]]:
        sets = {}
        for domain, (path, reward_spec) in self.spec.eval.items():
            rows = load_rows(path, where=f"stage {self.spec.name!r} eval.{domain}")
            if self.hp.eval_max_samples is not None:
                rows = rows[: self.hp.eval_max_samples]
            sets[domain] = (rows, self.reward(reward_spec))
            self.reward_keys[domain] = _reward_key(reward_spec)
        return sets

    def evaluate(self, policy: Policy, sets: Mapping[str, tuple[list[dict[str, Any]], Reward]]) -> dict[str, float]:
        return evaluate(
            policy, sets, self.hp.max_new_tokens, self.hp.eval_batch_size, self.backend.score_cache, self.reward_keys
        )

    def score(self, spec: RewardSpec, samples: list[Sample]) -> list[RewardResult]:
        return score_deduplicated(self.reward(spec), samples, self.backend.score_cache, _reward_key(spec))

    def _save(self, step: int, policy: Policy, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> Path:
        buffer = io.BytesIO()
        torch.save({"optimizer": optimizer.state_dict(), "step": step}, buffer)
        path = self.ckpt_root / f"step_{step:06d}"
        portable = {**state, "evaluations": self._portable_evaluations(state["evaluations"])}
        save_policy(
            policy,
            path,
            extra_files={_TRAINER_STATE: buffer.getvalue(), _STATE: json.dumps(portable, indent=1).encode()},
        )
        self._prune(state)
        return path

    def _prune(self, state: dict[str, Any]) -> None:
        """Delete resumable checkpoints beyond ``keep_last``; evaluated ones stay (teacher candidates)."""
        evaluated = {entry["step"] for entry in state["evaluations"]}
        steps = sorted(int(m.group(1)) for child in self.ckpt_root.iterdir() if (m := _STEP_DIR.match(child.name)))
        removable = [s for s in steps if s not in evaluated]
        for step in removable[: -self.hp.keep_last]:
            shutil.rmtree(self.ckpt_root / f"step_{step:06d}", ignore_errors=True)

    def _remove_partial_writes(self) -> None:
        """Temporary checkpoint directories a killed process left behind (never complete ones)."""
        if self.ckpt_root.is_dir():
            for child in self.ckpt_root.iterdir():
                if child.name.startswith(".step_") and child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)

    def _run(self) -> StageResult:
        spec, hp = self.spec, self.hp
        self._remove_partial_writes()
        latest = self._latest_checkpoint()
        if latest is not None:
            start, path = latest
            policy = load_policy(path, self.device)
            trainer_state = torch.load(path / _TRAINER_STATE, weights_only=True)
            state = json.loads((path / _STATE).read_text(encoding="utf-8"))
            state["evaluations"] = self._local_evaluations(state["evaluations"])
            self.reporter.log(f"{spec.name}: resuming from step {start} ({path})")
        else:
            start, trainer_state = 0, None
            policy = self._initial_policy()
            state = {"metrics": [], "evaluations": []}
        policy.model.train()
        optimizer = torch.optim.AdamW(policy.model.parameters(), lr=hp.lr, betas=hp.betas, weight_decay=hp.weight_decay)
        if trainer_state is not None:
            optimizer.load_state_dict(trainer_state["optimizer"])

        trainer = self._trainer(policy)
        eval_sets = self._eval_sets()
        settings = parse_tracking(spec.logger)
        log_dir = Path(settings.log_dir) if settings.log_dir else self.out / "logs"
        config = {"stage": spec.name, "kind": spec.kind, "seed": spec.seed, **spec.hparams}
        with StageTracker(settings, log_dir, start, config) as tracker:
            return self._train(policy, optimizer, trainer, eval_sets, state, start, tracker)

    def _train(
        self,
        policy: Policy,
        optimizer: torch.optim.Optimizer,
        trainer: SFTTrainer | GRPOTrainer | MOPDTrainer,
        eval_sets: dict[str, tuple[list[dict[str, Any]], Reward]],
        state: dict[str, Any],
        start: int,
        tracker: StageTracker,
    ) -> StageResult:
        spec, hp = self.spec, self.hp

        def optimizer_step() -> None:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        self.reporter.start(hp.steps, f"{spec.name} ({spec.kind})")
        for step in range(start + 1, hp.steps + 1):
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step, hp)
            began = time.perf_counter()
            metrics = {"step": step, "lr": lr_at(step, hp), **trainer.step(step, optimizer_step)}
            metrics["seconds"] = time.perf_counter() - began
            state["metrics"].append(metrics)
            tracker.log(step, metrics)
            self.reporter.step(step, metrics)
            evaluated = bool(hp.eval_every) and step % hp.eval_every == 0 and step < hp.steps and eval_sets
            if evaluated:
                scores = self.evaluate(policy, eval_sets)
                checkpoint = CheckpointRef(str(self.ckpt_root / f"step_{step:06d}"), "hf", spec.name, step)
                state["evaluations"].append({"step": step, "scores": scores, "checkpoint": checkpoint.to_dict()})
                tracker.log_validation(step, scores)
                self.reporter.log(f"{spec.name} step {step}: " + _format_scores(scores))
            saved = None
            if evaluated or step == hp.steps or (hp.save_every and step % hp.save_every == 0):
                saved = self._save(step, policy, optimizer, state)
            reason = stop_requested(self.reporter)
            if reason:
                saved = saved or self._save(step, policy, optimizer, state)
                self.reporter.log(f"{spec.name}: {reason}: saved step {step} of {hp.steps} ({saved})")
                raise StageInterrupted(reason, step=step, checkpoint=str(saved))
        if start >= hp.steps:
            self.reporter.log(f"{spec.name}: all {hp.steps} steps done before; evaluating")

        final = CheckpointRef(str(self.ckpt_root / f"step_{hp.steps:06d}"), "hf", spec.name, hp.steps)
        validation = self.evaluate(policy, eval_sets) if eval_sets else {}
        if validation:
            tracker.log_validation(hp.steps, validation)
            self.reporter.log(f"{spec.name} final: " + _format_scores(validation))
        result = StageResult(
            stage=spec.name,
            checkpoint=final,
            metrics=state["metrics"],
            validation=validation,
            evaluations=state["evaluations"],
        )
        portable = result.to_dict()
        portable["checkpoint"] = self._portable(portable["checkpoint"])
        portable["evaluations"] = self._portable_evaluations(portable["evaluations"])
        write_json_atomic(self.out / _RESULT, portable)
        return result

    def _trainer(self, policy: Policy) -> SFTTrainer | GRPOTrainer | MOPDTrainer:
        spec, hp = self.spec, self.hp
        where = f"stage {spec.name!r}"
        rows = {
            domain: load_rows(path, need_answer=spec.kind == "sft", where=f"{where} data.{domain}")
            for domain, path in spec.data.items()
        }
        data = DomainData(rows, hp.domain_weights)
        if isinstance(hp, SFTHparams):
            return SFTTrainer(policy, data, hp, spec.seed)
        if isinstance(hp, GRPOHparams):
            rewards = {domain: self.reward(spec.rewards[domain]) for domain in spec.data}
            return GRPOTrainer(
                policy, data, rewards, hp, spec.seed, lambda domain, samples: self.score(spec.rewards[domain], samples)
            )
        assert isinstance(hp, MOPDHparams)
        loaded: dict[str, Policy] = {}
        teachers: dict[str, Policy] = {}
        student_vocab = policy.tokenizer.get_vocab()  # type: ignore[attr-defined]
        for domain in spec.data:
            ref = spec.teachers[domain]
            if ref.path not in loaded:
                teacher = load_policy(ref.path, self.device)
                if teacher.tokenizer.get_vocab() != student_vocab:  # type: ignore[attr-defined]
                    raise ValueError(
                        f"{where}: teachers.{domain} ({ref.path}) has a different tokenizer from the "
                        "student; MOPD compares log-probs of the same tokens, so they must share one"
                    )
                teacher.model.eval().requires_grad_(False)
                loaded[ref.path] = teacher
            teachers[domain] = loaded[ref.path]
        loss_spec = spec.loss or RewardSpec(DEFAULT_MOPD_LOSS)
        loss_fn = self.backend.registry.make_loss(loss_spec.name, **dict(loss_spec.options))
        return MOPDTrainer(policy, data, teachers, loss_fn, hp, spec.seed)


def _format_scores(scores: Mapping[str, float]) -> str:
    return ", ".join(f"{domain} {value:.3f}" for domain, value in sorted(scores.items()))
