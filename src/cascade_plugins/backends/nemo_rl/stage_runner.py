"""One cascade stage as one NeMo RL run: ``python -m cascade_plugins.backends.nemo_rl.stage_runner``.

    python -m cascade_plugins.backends.nemo_rl.stage_runner --config stage.yaml \\
        [--stage NAME --result result.json --hf-dir DIR --select last|best] [a.b=c ...]

``--config`` is any NeMo RL GRPO/SFT YAML (for a cascade stage, the ``stage.yaml`` the backend
wrote). The runner registers our environments and data processor, then does what NeMo RL's
``examples/run_grpo.py`` does (its own ``setup()`` and ``grpo_train()``/``async_grpo_train()``;
``examples/run_sft.py`` for SFT configs). A top-level ``cascade_mopd: {enabled: true, ...}``
section switches on the synchronous MOPD path (:mod:`.mopd_runtime`). With ``--result``, the
chosen checkpoint is converted to HF and a :class:`StageResult` is written as JSON.
"""

from __future__ import annotations

import argparse
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


def _teacher_policies(master_config: Any, tokenizer: Any, cluster: Any, teachers: Mapping[str, str]) -> dict[str, Any]:
    """One inference-only ``Policy`` per distinct teacher checkpoint, colocated on the training
    cluster and offloaded between uses (as NeMo RL's distillation does with its teacher)."""
    import copy

    from nemo_rl.models.policy.lm_policy import Policy

    policies: dict[str, Any] = {}
    for path in dict.fromkeys(teachers.values()):
        cfg = copy.deepcopy(master_config.policy)
        cfg["model_name"] = path
        cfg["tokenizer"] = {**cfg["tokenizer"], "name": path}
        policy = Policy(
            name_prefix=f"teacher_{len(policies)}",
            cluster=cluster,
            config=cfg,
            tokenizer=tokenizer,
            init_optimizer=False,
            init_reference_model=False,
        )
        policy.offload_after_refit()
        policies[path] = policy
    return policies


def run_grpo(
    config_path: str, overrides: Sequence[str], config: Mapping[str, Any], rounds_path: Path | None = None
) -> None:
    """``examples/run_grpo.py`` with our registrations and the optional synchronous MOPD path.

    With ``rounds_path``, the per-domain scores of every validation round are written there
    (``{step: {domain: score}}``) as they come."""
    from nemo_rl.algorithms import grpo
    from nemo_rl.algorithms.utils import get_tokenizer
    from nemo_rl.distributed.virtual_cluster import init_ray
    from nemo_rl.models.generation import configure_generation_config
    from nemo_rl.utils.logger import get_next_experiment_dir

    master_config = compat.validate_master_config("grpo", config)
    cfg_get = compat.cfg_get
    master_config.logger["log_dir"] = get_next_experiment_dir(master_config.logger["log_dir"])
    init_ray()
    tokenizer = get_tokenizer(master_config.policy["tokenizer"])
    policy_cfg = master_config.policy
    megatron_cfg = policy_cfg.get("megatron_cfg") or {}
    policy_cfg["generation"] = configure_generation_config(
        policy_cfg["generation"],
        tokenizer,
        has_refit_draft_weights=bool((policy_cfg.get("draft") or {}).get("enabled", False)),
        trains_mtp=bool(megatron_cfg.get("mtp_num_layers")),
    )
    dataset, val_dataset, task_to_env, val_task_to_env = compat.setup_response_data(
        tokenizer, master_config.data, master_config.env
    )
    (
        policy, policy_generation, _gym, clusters, dataloader, val_dataloader, loss_fn, logger,
        checkpointer, grpo_state, master_config, teacher_worker_groups, alias_to_group_alias,
    ) = grpo.setup(master_config, tokenizer, dataset, val_dataset)

    # a resumed stage keeps the rounds validated before the interruption
    rounds: dict[str, dict[str, float]] = (
        json.loads(rounds_path.read_text()) if rounds_path is not None and rounds_path.is_file() else {}
    )

    def on_round(step: int, scores: dict[str, float]) -> None:
        rounds[str(step)] = scores
        if rounds_path is not None:
            write_json_atomic(rounds_path, rounds)

    mopd = mopd_settings(config)
    async_cfg = cfg_get(master_config.grpo, "async_grpo") or {}
    use_async = bool(cfg_get(async_cfg, "enabled", False))
    try:
        with compat.validation_rounds(on_round):
            _train(master_config, config, mopd, use_async, async_cfg, clusters, tokenizer, policy, policy_generation,
                   dataloader, val_dataloader, loss_fn, task_to_env, val_task_to_env, logger, checkpointer,
                   grpo_state, teacher_worker_groups, alias_to_group_alias)
    finally:
        grpo.shutdown_environments(task_to_env, val_task_to_env)
        if policy_generation is not None:
            policy_generation.shutdown()


def _train(master_config: Any, config: Mapping[str, Any], mopd: Mapping[str, Any] | None, use_async: bool,
           async_cfg: Any, clusters: Any, tokenizer: Any, policy: Any, policy_generation: Any, dataloader: Any,
           val_dataloader: Any, loss_fn: Any, task_to_env: Any, val_task_to_env: Any, logger: Any,
           checkpointer: Any, grpo_state: Any, teacher_worker_groups: Any, alias_to_group_alias: Any) -> None:
    from nemo_rl.algorithms import grpo

    cfg_get = compat.cfg_get
    if mopd is not None:
        if use_async:
            raise ValueError(
                f"{MOPD_KEY} is the synchronous MOPD path; for async GRPO use NeMo RL's own "
                "OPD (grpo.adv_estimator.name: opd + on_policy_distillation), see docs/nemo-rl.md"
            )
        from cascade_plugins.backends.nemo_rl.mopd_loss import NemoRLMOPDLoss
        from cascade_plugins.backends.nemo_rl.mopd_runtime import (
            RoutingRecorder,
            StepRouting,
            TeacherLogprobPolicy,
        )

        teacher_paths = {str(task): str(path) for task, path in mopd["teachers"].items()}
        loss_options = dict((mopd.get("loss") or {}).get("options") or {})
        loss_fn = NemoRLMOPDLoss(loss_options)
        routing = StepRouting()
        teachers = _teacher_policies(master_config, tokenizer, clusters[0], teacher_paths)
        policy = TeacherLogprobPolicy(policy, teachers, teacher_paths, routing)
        with compat.wrapped_advantage_estimator(lambda est: RoutingRecorder(est, routing)), checkpointer:
            grpo.grpo_train(
                policy, policy_generation, dataloader, val_dataloader, tokenizer, loss_fn,
                task_to_env, val_task_to_env, logger, checkpointer, grpo_state, master_config,
            )
    elif use_async:
        grpo.async_grpo_train(
            policy=policy, policy_generation=policy_generation, dataloader=dataloader,
            val_dataloader=val_dataloader, tokenizer=tokenizer, loss_fn=loss_fn, task_to_env=task_to_env,
            val_task_to_env=val_task_to_env, logger=logger, checkpointer=checkpointer,
            grpo_save_state=grpo_state, master_config=master_config,
            max_trajectory_age_steps=cfg_get(async_cfg, "max_trajectory_age_steps", 1),
            teacher_worker_groups=teacher_worker_groups, alias_to_group_alias=alias_to_group_alias,
        )
    else:
        with checkpointer:
            grpo.grpo_train(
                policy, policy_generation, dataloader, val_dataloader, tokenizer, loss_fn,
                task_to_env, val_task_to_env, logger, checkpointer, grpo_state, master_config,
            )


def run_sft(config_path: str, overrides: Sequence[str]) -> None:
    """NeMo RL's own ``examples/run_sft.py`` (its data setup lives in that script)."""
    script = compat.sft_entry_script()
    argv = sys.argv
    sys.argv = [str(script), "--config", str(config_path), *overrides]
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv = argv


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="NeMo RL YAML (defaults: inheritance allowed)")
    parser.add_argument("--stage", default=None, help="stage name recorded in the result")
    parser.add_argument("--result", default=None, help="write the StageResult JSON here after training")
    parser.add_argument("--hf-dir", default=None, help="where the chosen checkpoint is converted to HF")
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
