"""From a cascade :class:`~cascade_plugins.interfaces.StageSpec` to one NeMo RL config (pure).

A stage's ``hparams`` for this backend hold the backend-neutral knobs below (translated into
NeMo RL keys by :data:`TRANSLATIONS`) plus a ``nemo_rl:`` section::

    hparams:
      steps: 180                     # grpo.max_num_steps
      lr: 3.0e-6                     # policy.optimizer.kwargs.lr (+ megatron_cfg.optimizer.lr)
      prompts_per_step: 128          # grpo.num_prompts_per_step
      samples_per_prompt: 16         # grpo.num_generations_per_prompt
      nemo_rl:
        defaults: examples/configs/grpo_math_1B.yaml   # relative to the NeMo RL checkout
        overrides: {loss_fn: {reference_policy_kl_penalty: 0.0}, ...}   # nested, wins over the above

The result is a child YAML whose ``defaults:`` is the base: NeMo RL's own ``load_config`` does the
inheritance, so the emitted file is exactly what ``examples/run_grpo.py --config`` would read.
The stage's own keys are always set last: a fresh ``checkpointing.checkpoint_dir`` under the
stage's output directory (NeMo RL resumes from the latest ``step_N`` there, so stages must not
share one), ``policy.model_name`` = the previous stage's HF weights, ``logger.log_dir``, and one
``data.train`` entry per domain routed to its ``cascade_<reward>`` environment.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cascade_plugins.backends.nemo_rl.env_core import NO_REWARD
from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward
from cascade_plugins.backends.nemo_rl.names import PROCESSOR_NAME, env_name_for_reward
from cascade_plugins.config import error_lines
from cascade_plugins.interfaces import RewardSpec, StageSpec

HOST_REWARD = HostEnvironmentReward.name
DATASET_CLASS = "cascade_plugins.backends.nemo_rl.dataset.CascadeJsonlDataset"
#: top-level key of the NeMo RL config that configures our synchronous MOPD path
MOPD_KEY = "cascade_mopd"

DEFAULT_BASES: dict[str, str] = {
    "grpo": "examples/configs/grpo_math_1B.yaml",
    "mopd": "examples/configs/grpo_math_1B.yaml",
    "sft": "examples/configs/sft.yaml",
}


class NemoRLSection(BaseModel):
    """``hparams.nemo_rl`` of a stage."""

    model_config = ConfigDict(extra="forbid")

    #: the NeMo RL YAML this stage starts from; relative paths resolve against the checkout
    defaults: str | None = None
    #: nested NeMo RL keys merged over ``defaults`` and the translated knobs
    overrides: dict[str, Any] = Field(default_factory=dict)
    #: per-domain ``env.cascade_<reward>.num_workers`` (scoring actors per environment)
    reward_workers: int = Field(8, ge=1)
    #: CPUs each scoring actor reserves in Ray (``env.cascade_<reward>.cpus_per_worker``); its
    #: sandbox pool is sized to this reservation, not to the whole node
    reward_worker_cpus: float = Field(1.0, gt=0)
    #: pick the checkpoint to hand on: ``best`` (checkpointing.metric_name) or ``last``
    select: Literal["best", "last"] = "last"
    #: the training engine of the base config: where ``lr``/``warmup_steps`` go
    engine: Literal["dtensor", "megatron"] = "dtensor"


class NemoRLHparams(BaseModel):
    """A stage's ``hparams`` as this backend reads them; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    steps: int | None = Field(None, gt=0)
    lr: float | None = Field(None, gt=0)
    warmup_steps: int | None = Field(None, ge=0)
    #: learning rate at the start of warm-up (default ``lr / 10``)
    warmup_start_lr: float | None = Field(None, ge=0)
    prompts_per_step: int | None = Field(None, gt=0)
    samples_per_prompt: int | None = Field(None, gt=0)
    #: longest response generated, in tokens
    max_new_tokens: int | None = Field(None, gt=0)
    #: longest prompt + response, in tokens
    max_total_tokens: int | None = Field(None, gt=0)
    #: longest prompt, in tokens (longer ones are masked out of the loss)
    max_prompt_tokens: int | None = Field(None, gt=0)
    temperature: float | None = Field(None, gt=0)
    top_p: float | None = Field(None, gt=0, le=1)
    #: reference-policy KL coefficient (0: no KL term)
    kl: float | None = Field(None, ge=0)
    #: ``filter``: truncated responses are left out of the loss; ``penalty``/``none``: they keep
    #: the reward's score (our rewards score an unfinished answer 0)
    overlong: Literal["none", "penalty", "filter"] | None = None
    #: drop groups whose rewards are all equal (DAPO dynamic sampling)
    dynamic_filtering: bool | None = None
    #: validate every N steps
    val_period: int | None = Field(None, ge=0)
    #: the cascade's ``eval.every_n_steps`` (same as ``val_period``)
    eval_every: int | None = Field(None, ge=0)
    save_every: int | None = Field(None, gt=0)
    #: SFT: sequences per optimizer step
    batch_size: int | None = Field(None, gt=0)
    nemo_rl: NemoRLSection = Field(default_factory=NemoRLSection)


def parse_hparams(hparams: Mapping[str, Any]) -> NemoRLHparams:
    """Validate; raises ``ValueError`` with one ``hparams.<key>: <problem>`` line per problem."""
    try:
        return NemoRLHparams.model_validate(dict(hparams))
    except ValidationError as exc:
        raise ValueError("; ".join(error_lines(NemoRLHparams, exc, "hparams"))) from None


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``override`` wins, lists are replaced whole (as OmegaConf does)."""
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _scheduler(warmup: int, start_factor: float) -> list[dict[str, Any]]:
    """NeMo RL's DTensor scheduler list: linear warm-up then constant."""
    return [
        {
            "name": "torch.optim.lr_scheduler.LinearLR",
            "kwargs": {"start_factor": start_factor, "end_factor": 1.0, "total_iters": max(warmup, 1)},
        },
        {"name": "torch.optim.lr_scheduler.ConstantLR", "kwargs": {"factor": 1.0, "total_iters": 10_000_000_000}},
        {"milestones": [max(warmup, 1)]},
    ]


def translate(h: NemoRLHparams, kind: str) -> dict[str, Any]:
    """The backend-neutral knobs as nested NeMo RL keys (only those that are set)."""
    out: dict[str, Any] = {}
    algo = "sft" if kind == "sft" else "grpo"
    if h.steps is not None:
        _set(out, f"{algo}.max_num_steps", h.steps)
    megatron = h.nemo_rl.engine == "megatron"
    if h.lr is not None:
        if megatron:
            _set(out, "policy.megatron_cfg.optimizer.lr", h.lr)
            _set(out, "policy.megatron_cfg.optimizer.min_lr", h.lr)  # constant after warm-up
        else:
            _set(out, "policy.optimizer.kwargs.lr", h.lr)
    if h.warmup_steps:
        start = h.warmup_start_lr if h.warmup_start_lr is not None else (h.lr / 10 if h.lr else None)
        if megatron:
            _set(out, "policy.megatron_cfg.scheduler.lr_warmup_iters", h.warmup_steps)
            if start is not None:
                _set(out, "policy.megatron_cfg.scheduler.lr_warmup_init", start)
        else:
            factor = start / h.lr if (start is not None and h.lr) else 0.1
            _set(out, "policy.scheduler", _scheduler(h.warmup_steps, factor))
    if kind != "sft":
        if h.prompts_per_step is not None:
            _set(out, "grpo.num_prompts_per_step", h.prompts_per_step)
        if h.samples_per_prompt is not None:
            _set(out, "grpo.num_generations_per_prompt", h.samples_per_prompt)
        if h.prompts_per_step is not None and h.samples_per_prompt is not None:
            # strictly on-policy: one optimizer step per rollout batch
            _set(out, "policy.train_global_batch_size", h.prompts_per_step * h.samples_per_prompt)
        if h.max_new_tokens is not None:
            _set(out, "policy.generation.max_new_tokens", h.max_new_tokens)
        if h.temperature is not None:
            _set(out, "policy.generation.temperature", h.temperature)
        if h.top_p is not None:
            _set(out, "policy.generation.top_p", h.top_p)
        if h.kl is not None:
            _set(out, "loss_fn.reference_policy_kl_penalty", h.kl)
        if h.overlong is not None:
            _set(out, "grpo.overlong_filtering", h.overlong == "filter")
        if h.dynamic_filtering is not None:
            _set(out, "grpo.use_dynamic_sampling", h.dynamic_filtering)
        period = h.val_period if h.val_period is not None else h.eval_every
        if period is not None:
            _set(out, "grpo.val_period", period)
    elif h.batch_size is not None:
        _set(out, "policy.train_global_batch_size", h.batch_size)
    if h.max_total_tokens is not None:
        _set(out, "policy.max_total_sequence_length", h.max_total_tokens)
    if h.save_every is not None:
        _set(out, "checkpointing.save_period", h.save_every)
    return out


@dataclass(frozen=True)
class StageLayout:
    """Where a stage's files live under its ``output_dir``."""

    root: Path

    @property
    def work(self) -> Path:
        return self.root / "nemo_rl"

    @property
    def config(self) -> Path:
        return self.work / "stage.yaml"

    @property
    def spec(self) -> Path:
        return self.work / "spec.json"

    @property
    def command(self) -> Path:
        return self.work / "command.sh"

    @property
    def ray_sub(self) -> Path:
        return self.work / "ray_sub.sh"

    @property
    def ray_job(self) -> Path:
        return self.work / "ray_job.sh"

    @property
    def result(self) -> Path:
        return self.work / "result.json"

    @property
    def log(self) -> Path:
        return self.work / "stage.log"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def hf(self) -> Path:
        return self.root / "hf"


def resolve_base(defaults: str | None, kind: str, nemo_rl_root: Path | None) -> Path:
    """Absolute path of the stage's base YAML."""
    base = defaults or DEFAULT_BASES.get(kind)
    if base is None:
        raise ValueError(f"hparams.nemo_rl.defaults: no default NeMo RL config for stage kind {kind!r}")
    path = Path(base).expanduser()
    if not path.is_absolute():
        if nemo_rl_root is None:
            raise ValueError(
                f"hparams.nemo_rl.defaults: {base!r} is relative but the NeMo RL checkout is unknown "
                "(set the backend option nemo_rl_root or NEMO_RL_ROOT)"
            )
        path = nemo_rl_root / path
    return path


def init_model_name(spec: StageSpec) -> str:
    """What ``policy.model_name`` starts from: the previous stage's HF weights, else the model."""
    if spec.init is not None:
        if spec.init.format != "hf":
            raise ValueError(
                f"stage {spec.name!r}: init checkpoint {spec.init.path} is {spec.init.format!r}; "
                "NeMo RL stages start from Hugging Face weights"
            )
        return spec.init.path
    for key in ("path", "name", "model_name"):
        value = spec.model.get(key)
        if isinstance(value, str) and value:
            return value
    raise ValueError(f"stage {spec.name!r}: no init checkpoint and no model.path / model.name to start from")


def _dataset_entry(domain: str, path: str, env_name: str, *, require_target: bool = True) -> dict[str, Any]:
    entry = {
        "dataset_name": DATASET_CLASS,
        "data_path": str(path),
        "task_name": domain,
        "processor": PROCESSOR_NAME,
        "env_name": env_name,
        "prompt_file": None,
        "system_prompt_file": None,
    }
    if not require_target:
        entry["require_target"] = False
    return entry


def env_name_for_domain(domain: str, reward: RewardSpec) -> str:
    """``cascade_<reward>``; a reward with options gets its own ``cascade_<domain>`` instance so two
    domains can use one reward with different options (NeMo RL builds one actor per name)."""
    return env_name_for_reward(domain if reward.options else reward.name)


@dataclass(frozen=True)
class DomainRoute:
    """How one domain's data reaches NeMo RL."""

    #: ``ours``: a ``cascade_<reward>`` env; ``host``: a NeMo RL / NeMo-Gym env (``nemo_rl_env``);
    #: ``distill``: MOPD without an outcome reward (``cascade_none``)
    kind: Literal["ours", "host", "distill"]
    env_name: str
    train_entry: dict[str, Any]
    env_config: dict[str, Any] | None


def route_domain(
    kind: str, domain: str, path: str, reward: RewardSpec | None, is_our_reward: Callable[[str], bool], workers: int,
    worker_cpus: float = 1.0,
) -> DomainRoute:
    if reward is not None and reward.name == HOST_REWARD:
        options = dict(reward.options)
        env = options.get("env")
        if not isinstance(env, str) or not env:
            raise ValueError(f"domain {domain!r}: reward nemo_rl_env needs option 'env'")
        if kind == "mopd":  # the synchronous MOPD path cannot call NeMo-Gym; the reward is unused
            return route_domain(kind, domain, path, None, is_our_reward, workers, worker_cpus)
        entry = {**dict(options.get("dataset") or {}), "data_path": str(path), "env_name": env}
        return DomainRoute("host", env, entry, None)
    if reward is None or not is_our_reward(reward.name):
        if kind != "mopd":
            name = reward.name if reward else None
            raise ValueError(f"domain {domain!r}: reward {name!r} is not a registered reward")
        env_name = env_name_for_reward(NO_REWARD)
        entry = _dataset_entry(domain, path, env_name, require_target=False)
        return DomainRoute("distill", env_name, entry, {"reward": NO_REWARD})
    env_name = env_name_for_domain(domain, reward)
    config = {"reward": reward.name, "reward_options": dict(reward.options), "num_workers": workers,
              "cpus_per_worker": worker_cpus}
    return DomainRoute("ours", env_name, _dataset_entry(domain, path, env_name), config)


MOPD_LOSS = "mopd"


def mopd_loss_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The MOPD loss options (:class:`~cascade_plugins.losses.mopd.MOPDOptions`) as NeMo RL keys:
    upstream's ``ClippedPGLossFn`` as REINFORCE (``disable_ppo_ratio``) with the truncated
    importance weight of Cascade 2 Eq. 3 and its per-sequence mean (Eq. 4), on the advantages of
    upstream's ``OPDAdvantageEstimator`` (:mod:`.mopd_runtime`). These keys win over a stage's
    overrides: they are what the stage's ``loss.options`` say."""
    from cascade_plugins.losses.mopd.options import MOPDOptions

    try:
        o = MOPDOptions.model_validate(dict(options))
    except ValidationError as exc:
        lines = [f"loss.options.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ValueError("; ".join(lines)) from None
    sampling = o.importance_sampling != "none"
    loss_fn = {
        "disable_ppo_ratio": True,
        "token_level_loss": o.normalization == "token",
        "force_on_policy_ratio": False,  # the advantage needs prev_logprobs
        "use_importance_sampling_correction": sampling,
        "truncated_importance_sampling_type": o.importance_sampling if sampling else None,
        "truncated_importance_sampling_ratio_min": o.importance_ratio_min if sampling else None,
        "truncated_importance_sampling_ratio": o.importance_ratio_max if sampling else None,
        "sequence_level_importance_ratios": False,
        "use_cispo": False,
    }
    clip = o.advantage_clip
    grpo = {"advantage_clip_low": -clip if clip else None, "advantage_clip_high": clip}
    return {"loss_fn": loss_fn, "grpo": grpo}


def build_stage_config(
    spec: StageSpec,
    *,
    nemo_rl_root: Path | None,
    is_our_reward: Callable[[str], bool],
) -> dict[str, Any]:
    """The child NeMo RL config of ``spec`` (a plain dict; ``defaults`` is an absolute path).

    ``is_our_reward(name)`` tells rewards of the plugin registry (routed to ``cascade_<reward>``)
    from anything else. Domains scored by ``nemo_rl_env`` go to that NeMo RL environment, whose
    ``env`` section the stage's ``nemo_rl.overrides`` supplies; in ``mopd`` stages, domains
    without one of our rewards go to the distillation-only ``cascade_none``.
    """
    h = parse_hparams(spec.hparams)
    layout = StageLayout(Path(spec.output_dir))
    config: dict[str, Any] = translate(h, spec.kind)

    train: list[dict[str, Any]] = []
    validation: list[dict[str, Any]] = []
    envs: dict[str, dict[str, Any]] = {}
    workers = h.nemo_rl.reward_workers
    cpus = h.nemo_rl.reward_worker_cpus
    host_stage = False
    for domain, path in sorted(spec.data.items()):
        if spec.kind == "sft":
            train.append({"dataset_name": "ResponseDataset", "data_path": str(path), "input_key": "prompt",
                          "output_key": "response", "processor": "sft_processor", "prompt_file": None,
                          "system_prompt_file": None})
            continue
        route = route_domain(spec.kind, domain, path, spec.rewards.get(domain), is_our_reward, workers, cpus)
        train.append(route.train_entry)
        host_stage = host_stage or route.kind == "host"
        if route.env_config is not None:
            envs[route.env_name] = route.env_config
    # NeMo-Gym stages roll out validation through Gym too: our eval sets are not added there
    if spec.kind != "sft" and not host_stage:
        for domain, (path, reward) in sorted(spec.eval.items()):
            if reward.name == HOST_REWARD or not is_our_reward(reward.name):
                continue  # validation through host environments is configured in the overrides
            route = route_domain("grpo", domain, path, reward, is_our_reward, workers, cpus)
            validation.append(route.train_entry)
            envs.setdefault(route.env_name, route.env_config or {})
    if train:
        # replaces the base's data section whole: a base with one dataset (a mapping under
        # data.train) cannot be merged with a list of them. One dataset stays a mapping, since
        # base configs interpolate ${data.train.dataset_name}.
        config["data"] = {
            "_override_": True,
            "max_input_seq_length": h.max_prompt_tokens or "${policy.max_total_sequence_length}",
            "shuffle": True,
            "num_workers": 1,
            "use_multiple_dataloader": False,
            "train": train[0] if len(train) == 1 else train,
            "validation": (validation[0] if len(validation) == 1 else validation) or None,
            "default": None,
        }
        if spec.kind == "sft":
            config["data"].update({"add_bos": True, "add_eos": True, "add_generation_prompt": False})
        if not validation and spec.kind != "sft":
            _set(config, "grpo.val_period", 0)
            _set(config, "grpo.val_at_start", False)
            _set(config, "grpo.val_at_end", False)
    if envs:
        config["env"] = envs

    mopd_keys: dict[str, Any] = {}
    if spec.kind == "mopd":
        loss = spec.loss
        name = loss.name if loss else MOPD_LOSS
        if name != MOPD_LOSS:
            raise ValueError(
                f"stage {spec.name!r}: the nemo_rl backend runs the sampled-token MOPD loss ({MOPD_LOSS!r}) "
                f"through NeMo RL's own loss, not {name!r}"
            )
        options = dict(loss.options) if loss else {}
        config[MOPD_KEY] = {
            "enabled": True,
            "loss": {"name": name, "options": options},
            "teachers": {domain: ref.path for domain, ref in sorted(spec.teachers.items())},
        }
        mopd_keys = mopd_loss_config(options)

    # the cascade's logger: section uses NeMo RL's key names; the stage's overrides win over it
    logger = {key: value for key, value in spec.logger.items() if key != "log_dir"}
    if logger:
        config = deep_merge(config, {"logger": logger})
    config = deep_merge(config, h.nemo_rl.overrides)
    config = deep_merge(config, mopd_keys)

    model_name = init_model_name(spec)
    stage_keys: dict[str, Any] = {}
    _set(stage_keys, "policy.model_name", model_name)
    _set(stage_keys, "policy.tokenizer.name", model_name)
    _set(stage_keys, "checkpointing.checkpoint_dir", str(layout.checkpoints))
    _set(stage_keys, "logger.log_dir", spec.logger.get("log_dir") or str(layout.logs))
    _set(stage_keys, f"{'sft' if spec.kind == 'sft' else 'grpo'}.seed", spec.seed)
    config = deep_merge(config, stage_keys)

    base = resolve_base(h.nemo_rl.defaults, spec.kind, nemo_rl_root)
    return {"defaults": str(base), **config}


def algorithm_for(kind: str) -> Literal["grpo", "sft"]:
    if kind == "sft":
        return "sft"
    if kind in ("grpo", "mopd"):
        return "grpo"
    raise ValueError(f"the nemo_rl backend runs sft, grpo and mopd stages, not {kind!r}")
