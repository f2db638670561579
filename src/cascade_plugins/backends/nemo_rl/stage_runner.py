"""One cascade stage as one NeMo RL run: ``python -m cascade_plugins.backends.nemo_rl.stage_runner``.

    python -m cascade_plugins.backends.nemo_rl.stage_runner --config stage.yaml \\
        [--stage NAME --result result.json --hf-dir DIR --select last|best] [a.b=c ...]

``--config`` is any NeMo RL GRPO/SFT YAML (for a cascade stage, the ``stage.yaml`` the backend
wrote). The runner registers our environments and data processor, then runs NeMo RL's own
``examples/run_grpo.py`` (``examples/run_sft.py`` for SFT configs) in this process, so upstream's
trainer choice and guards apply unchanged; around it, each validation round's per-domain scores
are recorded. A top-level ``cascade_mopd: {enabled: true, ...}`` section switches on the
synchronous MOPD path (:mod:`.mopd_runtime`). With ``--result``, the chosen checkpoint is
converted to HF (``<hf-dir>/hf_step_N``) and a :class:`StageResult` is written as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import runpy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cascade_plugins.atomic import write_json_atomic
from cascade_plugins.backends.nemo_rl import compat
from cascade_plugins.backends.nemo_rl.names import is_cascade_env_name
from cascade_plugins.backends.nemo_rl.stage_config import MOPD_KEY


def cascade_env_names(config: Mapping[str, Any]) -> list[str]:
    """Every ``cascade_*`` environment a NeMo RL config refers to (data entries and ``env``)."""
    names: list[str] = [n for n in (config.get("env") or {}) if is_cascade_env_name(n)]
    data = config.get("data") or {}
    entries: list[Any] = []
    for key in ("train", "validation", "default"):
        value = data.get(key)
        entries += value if isinstance(value, list) else [value]
    names += [e["env_name"] for e in entries if isinstance(e, Mapping) and is_cascade_env_name(e.get("env_name", ""))]
    return list(dict.fromkeys(names))


def algorithm_of(config: Mapping[str, Any]) -> str:
    return "sft" if "sft" in config and "grpo" not in config else "grpo"


def mopd_settings(config: Mapping[str, Any]) -> dict[str, Any] | None:
    section = config.get(MOPD_KEY)
    if not section or not section.get("enabled", True):
        return None
    teachers = section.get("teachers") or {}
    if not teachers:
        raise ValueError(f"{MOPD_KEY}.teachers: map each task (domain) to a teacher checkpoint")
    return dict(section)


def refuse_unsupported(config: Mapping[str, Any], mopd: Mapping[str, Any] | None) -> None:
    """The synchronous MOPD path hooks ``grpo_train``; the other trainers are refused up front."""
    if mopd is None:
        return
    grpo_cfg = config.get("grpo") or {}
    if ((grpo_cfg.get("async_grpo") or {}).get("enabled")):
        raise ValueError(
            f"{MOPD_KEY} is the synchronous MOPD path; for async GRPO use NeMo RL's own "
            "OPD (grpo.adv_estimator.name: opd + on_policy_distillation), see docs/nemo-rl.md"
        )
    if ((config.get("data_plane") or {}).get("enabled")):
        raise ValueError(
            f"{MOPD_KEY} runs inside grpo_train; data_plane.enabled selects grpo_train_sync, "
            "which it does not hook. Set data_plane.enabled: false for MOPD stages"
        )
    skips_prev_logprobs = grpo_cfg.get("seq_logprob_error_threshold") is None
    if (config.get("loss_fn") or {}).get("force_on_policy_ratio") and skips_prev_logprobs:
        raise ValueError(
            f"{MOPD_KEY}: the MOPD advantage needs prev_logprobs, which loss_fn.force_on_policy_ratio "
            "skips; turn it off (or set grpo.seq_logprob_error_threshold)"
        )


def _teacher_policy(master_config: Any, tokenizer: Any, cluster: Any, path: str, index: int) -> Any:
    """An inference-only ``Policy`` of ``path`` on the training cluster, offloaded until used (as
    NeMo RL's distillation builds its teacher)."""
    import copy

    cfg = copy.deepcopy(master_config.policy)
    cfg["model_name"] = path
    cfg["tokenizer"] = {**cfg["tokenizer"], "name": path}
    policy = compat.lm_policy_class()(
        name_prefix=f"mopd_teacher_{index}",
        cluster=cluster,
        config=cfg,
        tokenizer=tokenizer,
        init_optimizer=False,
        init_reference_model=False,
    )
    policy.offload_after_refit()
    return policy


def install_mopd(stack: contextlib.ExitStack, config: Mapping[str, Any], mopd: Mapping[str, Any]) -> Any:
    """Hook the synchronous MOPD path into the ``grpo.setup`` / ``grpo_train`` that run next:
    a training cluster with room for the teacher policies, the teachers built after setup, the
    student wrapped to record its log-prob batches, and the advantage estimator replaced."""
    from cascade_plugins.backends.nemo_rl.mopd_runtime import (
        LogprobInputRecorder,
        MOPDAdvantageEstimator,
        plan_teachers,
    )

    skip_reference = bool((config.get("grpo") or {}).get("skip_reference_policy_logprobs_calculation"))
    plan = plan_teachers(
        {str(task): str(path) for task, path in mopd["teachers"].items()},
        init_model=str(config["policy"]["model_name"]),
        reference_logprobs=not skip_reference,
    )
    outcome_weight = float(((mopd.get("loss") or {}).get("options") or {}).get("outcome_weight", 0.0))
    print(f"MOPD teachers: {plan.teacher_for_task} ({len(plan.policies)} teacher policies)", flush=True)
    clusters_built = stack.enter_context(compat.extra_training_worker_groups(len(plan.policies)))
    state: dict[str, Any] = {}

    def after_setup(args: tuple[Any, ...], kwargs: dict[str, Any], out: tuple[Any, ...]) -> tuple[Any, ...]:
        if not clusters_built:
            raise RuntimeError(
                f"MOPD: grpo.setup built no training cluster named {compat.TRAINING_CLUSTER_NAMES}; "
                "this NeMo RL version is not supported by the synchronous MOPD path"
            )
        master_config = kwargs.get("master_config", args[0] if args else None)
        tokenizer = kwargs.get("tokenizer", args[1] if len(args) > 1 else None)
        policy, train_cluster = out[0], out[3][0]
        teachers = {path: _teacher_policy(master_config, tokenizer, train_cluster, path, i)
                    for i, path in enumerate(plan.policies)}
        stack.callback(lambda: [t.shutdown() for t in teachers.values()])
        recorder = LogprobInputRecorder(policy)
        state.update(teachers=teachers, student=recorder, loss_config=master_config.loss_fn)
        return (recorder, *out[1:])

    def wrap(inner: Any) -> Any:
        if "student" not in state:
            raise RuntimeError("MOPD: grpo_train ran before grpo.setup built the teachers")
        state["estimator"] = MOPDAdvantageEstimator(
            inner=inner, opd=compat.opd_advantage_estimator(state["loss_config"]), plan=plan,
            teachers=state["teachers"], student=state["student"],
            batch_factory=compat.batched_data_dict_class(), outcome_weight=outcome_weight,
        )
        return state["estimator"]

    stack.enter_context(compat.after_grpo_setup(after_setup))
    stack.enter_context(compat.wrapped_advantage_estimator(wrap))
    return plan


def run_grpo(
    config_path: str, overrides: Sequence[str], config: Mapping[str, Any], rounds_path: Path | None = None
) -> None:
    """NeMo RL's own ``examples/run_grpo.py`` (its trainer choice: ``grpo_train``,
    ``async_grpo_train`` or, with ``data_plane.enabled``, ``grpo_train_sync``, and its guards),
    with per-domain validation rounds recorded and, for ``cascade_mopd``, the synchronous MOPD path.

    With ``rounds_path``, the per-domain scores of every validation round are written there
    (``{step: {domain: score}}``) as they come."""
    mopd = mopd_settings(config)
    refuse_unsupported(config, mopd)
    # a resumed stage keeps the rounds validated before the interruption
    rounds: dict[str, dict[str, float]] = (
        json.loads(rounds_path.read_text()) if rounds_path is not None and rounds_path.is_file() else {}
    )

    def on_round(step: int, scores: dict[str, float]) -> None:
        rounds[str(step)] = scores
        if rounds_path is not None:
            write_json_atomic(rounds_path, rounds)

    with contextlib.ExitStack() as stack:
        stack.enter_context(compat.validation_rounds(on_round))
        stack.enter_context(compat.list_dataset_env_scan())
        if mopd is not None:
            install_mopd(stack, config, mopd)
        _run_script(compat.grpo_entry_script(), config_path, overrides)


def _run_script(script: Path, config_path: str, overrides: Sequence[str]) -> None:
    argv = sys.argv
    sys.argv = [str(script), "--config", str(config_path), *overrides]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def run_sft(config_path: str, overrides: Sequence[str]) -> None:
    """NeMo RL's own ``examples/run_sft.py`` (its data setup lives in that script)."""
    _run_script(compat.sft_entry_script(), config_path, overrides)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="NeMo RL YAML (defaults: inheritance allowed)")
    parser.add_argument("--stage", default=None, help="stage name recorded in the result")
    parser.add_argument("--result", default=None, help="write the StageResult JSON here after training")
    parser.add_argument("--hf-dir", default=None, help="folder the chosen checkpoint is converted into (as hf_step_N)")
    parser.add_argument("--select", choices=["best", "last"], default="last")
    parser.add_argument("--skip-training", action="store_true", help="only pick and convert the checkpoint")
    args, overrides = parser.parse_known_args(argv)

    compat.apply_python_shims()
    config = compat.load_config_dict(args.config, overrides)
    from cascade_plugins.backends.nemo_rl.registration import register_all

    register_all(cascade_env_names(config))
    algorithm = algorithm_of(config)
    rounds_path = Path(args.result).with_name("validation_rounds.json") if args.result else None
    if not args.skip_training:
        if algorithm == "sft":
            run_sft(args.config, overrides)
        else:
            run_grpo(args.config, overrides, config, rounds_path)
    if args.result:
        from cascade_plugins.backends.nemo_rl.checkpoints import finish_stage

        checkpointing = config["checkpointing"]
        hf_dir = args.hf_dir or str(Path(checkpointing["checkpoint_dir"]).parent / "hf")
        rounds = json.loads(rounds_path.read_text()) if rounds_path and rounds_path.is_file() else {}
        result = finish_stage(args.stage or Path(args.config).stem, checkpointing, args.select, hf_dir, rounds=rounds)
        write_json_atomic(args.result, result.to_dict())
    return 0


if __name__ == "__main__":
    sys.exit(main())
