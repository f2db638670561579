from __future__ import annotations

from pathlib import Path

import pytest

from cascade_plugins.backends.nemo_rl.stage_config import (
    DATASET_CLASS,
    MOPD_KEY,
    build_stage_config,
    mopd_loss_config,
    parse_hparams,
    resolve_base,
    translate,
)
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec

GYM = RewardSpec("nemo_rl_env", {"env": "nemo_gym", "dataset": {"dataset_name": "NemoGymDataset"}})


def _ours(name: str) -> bool:
    return name in {"math", "code"}


def _spec(tmp_path: Path, kind: str = "grpo", **kw) -> StageSpec:
    base = dict(
        name="s", kind=kind, data={"math": "/d/math.jsonl"}, rewards={"math": RewardSpec("math")},
        hparams={"steps": 5, "nemo_rl": {"defaults": "/abs/base.yaml"}}, output_dir=str(tmp_path / "s"),
        init=CheckpointRef(str(tmp_path / "prev" / "hf")),
    )
    base.update(kw)
    return StageSpec(**base)


def test_hparams_unknown_keys_and_bad_values_name_the_key() -> None:
    with pytest.raises(ValueError, match=r"hparams\.lrr: unknown key 'lrr'; did you mean 'lr'\?"):
        parse_hparams({"lrr": 1})
    with pytest.raises(ValueError, match=r"hparams\.nemo_rl\.select"):
        parse_hparams({"nemo_rl": {"select": "worst"}})
    with pytest.raises(ValueError, match=r"hparams\.top_p"):
        parse_hparams({"top_p": 1.5})


def test_translation_to_dtensor_and_megatron_keys() -> None:
    h = parse_hparams({"steps": 50, "lr": 2e-6, "warmup_steps": 30, "warmup_start_lr": 2e-7,
                       "prompts_per_step": 128, "samples_per_prompt": 4, "kl": 0.03, "overlong": "filter",
                       "dynamic_filtering": True, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 100})
    out = translate(h, "grpo")
    assert out["grpo"] == {"max_num_steps": 50, "num_prompts_per_step": 128, "num_generations_per_prompt": 4,
                           "overlong_filtering": True, "use_dynamic_sampling": True}
    assert out["policy"]["train_global_batch_size"] == 512  # one update per rollout batch
    assert out["policy"]["optimizer"]["kwargs"]["lr"] == 2e-6
    warmup = out["policy"]["scheduler"][0]
    assert warmup["kwargs"]["total_iters"] == 30 and warmup["kwargs"]["start_factor"] == pytest.approx(0.1)
    assert out["loss_fn"] == {"reference_policy_kl_penalty": 0.03}
    assert out["policy"]["generation"] == {"max_new_tokens": 100, "temperature": 0.8, "top_p": 0.95}
    mega = translate(parse_hparams({"lr": 3e-6, "warmup_steps": 10, "warmup_start_lr": 0.0,
                                    "nemo_rl": {"engine": "megatron"}}), "grpo")
    assert mega["policy"] == {"megatron_cfg": {"optimizer": {"lr": 3e-6, "min_lr": 3e-6},
                                               "scheduler": {"lr_warmup_iters": 10, "lr_warmup_init": 0.0}}}
    assert translate(parse_hparams({"steps": 7, "batch_size": 64}), "sft") == {
        "sft": {"max_num_steps": 7}, "policy": {"train_global_batch_size": 64}}


def test_stage_keys_data_routes_and_override_precedence(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        data={"math": "/d/math.jsonl", "hard": "/d/hard.jsonl"},
        rewards={"math": RewardSpec("math"), "hard": RewardSpec("math", {"strict": True})},
        eval={"math": ("/d/val.jsonl", RewardSpec("math"))},
        hparams={"steps": 5, "nemo_rl": {
            "defaults": "/abs/base.yaml", "reward_workers": 3, "reward_worker_cpus": 4,
            "overrides": {"grpo": {"max_num_steps": 9}, "env": {"cascade_math": {"num_workers": 1}}}}},
    )
    config = build_stage_config(spec, nemo_rl_root=None, is_our_reward=_ours)
    assert config["defaults"] == "/abs/base.yaml"
    assert config["checkpointing"]["checkpoint_dir"] == str(tmp_path / "s" / "checkpoints")
    assert config["logger"]["log_dir"] == str(tmp_path / "s" / "logs")
    assert config["policy"]["model_name"] == config["policy"]["tokenizer"]["name"] == spec.init.path
    assert config["grpo"]["max_num_steps"] == 9  # overrides win over translated knobs
    data = config["data"]
    assert data["_override_"] is True
    envs = {e["task_name"]: e["env_name"] for e in data["train"]}
    assert envs == {"hard": "cascade_hard", "math": "cascade_math"}  # options -> own instance
    assert all(e["dataset_name"] == DATASET_CLASS for e in data["train"])
    assert data["validation"]["data_path"] == "/d/val.jsonl"  # one dataset stays a mapping
    assert config["env"]["cascade_hard"] == {"reward": "math", "reward_options": {"strict": True}, "num_workers": 3,
                                             "cpus_per_worker": 4}
    assert config["env"]["cascade_math"]["num_workers"] == 1


def test_host_environments_and_distillation_only_domains(tmp_path: Path) -> None:
    grpo = build_stage_config(
        _spec(tmp_path, data={"if": "/d/if.jsonl"}, rewards={"if": GYM},
              eval={"math": ("/d/val.jsonl", RewardSpec("math"))}),
        nemo_rl_root=None, is_our_reward=_ours,
    )
    assert grpo["data"]["train"] == {
        "dataset_name": "NemoGymDataset", "data_path": "/d/if.jsonl", "env_name": "nemo_gym"}
    assert grpo["data"]["validation"] is None and "env" not in grpo  # Gym validates through Gym
    assert grpo["grpo"]["val_period"] == 0
    mopd = build_stage_config(
        _spec(tmp_path, kind="mopd", data={"if": "/d/if.jsonl", "math": "/d/m.jsonl"},
              rewards={"if": GYM, "math": RewardSpec("math")},
              teachers={"if": CheckpointRef("/t/md"), "math": CheckpointRef("/t/sft")}),
        nemo_rl_root=None, is_our_reward=_ours,
    )
    routes = {e["task_name"]: (e["env_name"], e.get("require_target", True)) for e in mopd["data"]["train"]}
    assert routes == {"if": ("cascade_none", False), "math": ("cascade_math", True)}
    assert mopd["env"]["cascade_none"] == {"reward": "none"}
    assert mopd[MOPD_KEY] == {"enabled": True, "loss": {"name": "mopd", "options": {}},
                              "teachers": {"if": "/t/md", "math": "/t/sft"}}


def test_mopd_loss_options_become_upstream_loss_keys_that_win_over_overrides(tmp_path: Path) -> None:
    spec = _spec(tmp_path, kind="mopd", teachers={"math": CheckpointRef("/t/sft")},
                 loss=RewardSpec("mopd", {"importance_ratio_min": 0.5, "importance_ratio_max": 2.0,
                                        "normalization": "sequence", "advantage_clip": 3.0}),
                 hparams={"steps": 5, "nemo_rl": {"defaults": "/abs/base.yaml", "overrides": {
                     "loss_fn": {"token_level_loss": True, "reference_policy_kl_penalty": 0.0}}}})
    config = build_stage_config(spec, nemo_rl_root=None, is_our_reward=_ours)
    assert config["loss_fn"] == {
        "reference_policy_kl_penalty": 0.0, "disable_ppo_ratio": True, "token_level_loss": False,
        "force_on_policy_ratio": False, "use_importance_sampling_correction": True,
        "truncated_importance_sampling_type": "icepop", "truncated_importance_sampling_ratio_min": 0.5,
        "truncated_importance_sampling_ratio": 2.0, "sequence_level_importance_ratios": False, "use_cispo": False}
    assert config["grpo"]["advantage_clip_low"] == -3.0 and config["grpo"]["advantage_clip_high"] == 3.0
    plain = mopd_loss_config({"importance_sampling": "none", "normalization": "token"})
    assert plain["loss_fn"]["use_importance_sampling_correction"] is False
    assert plain["loss_fn"]["truncated_importance_sampling_type"] is None and plain["loss_fn"]["token_level_loss"]
    with pytest.raises(ValueError, match=r"loss\.options\.importance_ratio_maxx: Extra inputs"):
        mopd_loss_config({"importance_ratio_maxx": 2})
    with pytest.raises(ValueError, match="not 'mopd_topk'"):
        build_stage_config(_spec(tmp_path, kind="mopd", teachers={"math": CheckpointRef("/t")},
                                 loss=RewardSpec("mopd_topk")), nemo_rl_root=None, is_our_reward=_ours)


def test_sft_stages_use_response_datasets(tmp_path: Path) -> None:
    config = build_stage_config(
        _spec(tmp_path, kind="sft", rewards={}, hparams={"steps": 3, "nemo_rl": {"defaults": "/abs/sft.yaml"}}),
        nemo_rl_root=None, is_our_reward=_ours,
    )
    assert config["sft"] == {"max_num_steps": 3, "seed": 0}
    assert config["data"]["train"]["dataset_name"] == "ResponseDataset"
    assert config["data"]["train"]["processor"] == "sft_processor"


def test_stage_start_points_and_bases(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="NeMo RL stages start from Hugging Face weights"):
        build_stage_config(_spec(tmp_path, init=CheckpointRef("/x", format="dcp")), nemo_rl_root=None,
                           is_our_reward=_ours)
    fresh = build_stage_config(_spec(tmp_path, init=None, model={"path": "/models/sft"}), nemo_rl_root=None,
                               is_our_reward=_ours)
    assert fresh["policy"]["model_name"] == "/models/sft"
    with pytest.raises(ValueError, match=r"no init checkpoint and no model\.path"):
        build_stage_config(_spec(tmp_path, init=None), nemo_rl_root=None, is_our_reward=_ours)
    with pytest.raises(ValueError, match="reward 'judge' is not a registered reward"):
        build_stage_config(_spec(tmp_path, rewards={"math": RewardSpec("judge")}), nemo_rl_root=None,
                           is_our_reward=_ours)
    assert resolve_base(None, "grpo", Path("/nrl")) == Path("/nrl/examples/configs/grpo_math_1B.yaml")
    with pytest.raises(ValueError, match="NEMO_RL_ROOT"):
        resolve_base("examples/x.yaml", "grpo", None)


def test_the_logger_section_reaches_nemo_rl_with_the_stage_log_dir(tmp_path: Path) -> None:
    logger = {"log_dir": str(tmp_path / "logs" / "s"), "tensorboard_enabled": True, "wandb_enabled": True,
              "mlflow_enabled": False, "wandb": {"project": "cascade2", "group": "nemotron", "name": "s"}}
    config = build_stage_config(_spec(tmp_path, logger=logger), nemo_rl_root=None, is_our_reward=_ours)
    assert config["logger"] == {
        "tensorboard_enabled": True, "wandb_enabled": True, "mlflow_enabled": False,
        "wandb": {"project": "cascade2", "group": "nemotron", "name": "s"},
        "log_dir": str(tmp_path / "logs" / "s"),
    }
    # a stage's own overrides still win; without a logger section only log_dir is set
    spec = _spec(tmp_path, logger=logger, hparams={"nemo_rl": {"defaults": "/abs/base.yaml", "overrides": {
        "logger": {"wandb": {"name": "mine"}}}}})
    config = build_stage_config(spec, nemo_rl_root=None, is_our_reward=_ours)
    assert config["logger"]["wandb"] == {"project": "cascade2", "group": "nemotron", "name": "mine"}
    config = build_stage_config(_spec(tmp_path), nemo_rl_root=None, is_our_reward=_ours)
    assert config["logger"] == {"log_dir": str(tmp_path / "s" / "logs")}
