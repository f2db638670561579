"""The cascade config: one YAML file describing a whole Cascade RL run.

These models check shape and types only. Everything that needs the plugin registry or the file
system (unknown rewards, missing data, teachers that cannot exist yet, cycles) is checked by
:mod:`cascade_plugins.cascade.plan`, which reports all problems at once with their key paths.

Layout (see ``docs/cascade.md``)::

    backend: local                        # or {name: local, options: {...}}
    plugins: [math, code, local, ...]     # optional allow-list of plugins to load
    model: {...}                          # handed to the backend as-is
    domains: {math: {reward: math}, ...}  # every domain and its default reward
    data:                                 # named datasets: a JSONL path or a generator
      math_train: {generator: arithmetic, n: 2000, seed: 1, split: train}
      code_val: data/code_val.jsonl
    hparams: {common: {...}, sft: {...}, grpo: {...}, mopd: {...}}
    eval: {every_n_steps: 0, sets: {math: {data: math_val}}}
    registry: {metric: score, direction: max}
    logger: {tensorboard_enabled: true, wandb_enabled: false}   # NeMo RL's logger: keys
    stages:
      - {name: sft, kind: sft, data: {math: math_sft}}
      - {name: mopd, kind: mopd, data: {...}, teachers: {math: "best:math"}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BackendConfig",
    "CascadeConfig",
    "DatasetConfig",
    "DomainConfig",
    "EvalConfig",
    "EvalSetConfig",
    "HparamsConfig",
    "LoggerConfig",
    "NamedOptions",
    "RegistryConfig",
    "StageConfig",
]

#: stage names become directory names, so they are kept to a safe alphabet
STAGE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
#: reserved values of ``init``
INIT_PREVIOUS = "previous"
INIT_BASE = "base"
#: prefix of a teacher taken from the teacher registry
BEST_PREFIX = "best:"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _name_shorthand(value: Any) -> Any:
    """``"math"`` is short for ``{name: "math"}``."""
    return {"name": value} if isinstance(value, str) else value


class NamedOptions(_Strict):
    """A registered plugin (reward, loss, backend) by name, with keyword options for its factory."""

    name: str = Field(min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)


class BackendConfig(NamedOptions):
    """The backend that runs every stage (``local``, ``nemo_rl`` or a plugin's)."""


class DomainConfig(_Strict):
    """A domain the cascade trains or evaluates; ``reward`` is its default reward."""

    reward: NamedOptions | None = None

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_shorthand(cls, value: Any) -> Any:
        return _name_shorthand(value)


class DatasetConfig(BaseModel):
    """A named dataset: a JSONL file (``path``) or rows made by a registered generator.

    Generator form: ``{generator: arithmetic, n: 2000, seed: 1, <option>: ...}``; every key other
    than ``generator``/``n``/``seed`` is passed to the generator as a keyword option. The
    sequencer writes the rows to ``<run_dir>/data/<name>.jsonl`` before the first stage.
    """

    # extra keys are generator options; the validator below refuses them in the path form
    model_config = ConfigDict(extra="allow")

    path: str | None = None
    generator: str | None = None
    n: int | None = Field(None, ge=0)
    seed: int | None = None

    @model_validator(mode="before")
    @classmethod
    def _path_shorthand(cls, value: Any) -> Any:
        return {"path": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_source(self) -> DatasetConfig:
        if (self.path is None) == (self.generator is None):
            raise ValueError("give exactly one of 'path' (a JSONL file) or 'generator' (a registered dataset)")
        if self.path is not None:
            extra = sorted(self.options)
            if extra or self.n is not None or self.seed is not None:
                keys = [*extra, *(k for k in ("n", "seed") if getattr(self, k) is not None)]
                raise ValueError(f"a dataset read from 'path' takes no generator options (got {', '.join(keys)})")
        return self

    @property
    def options(self) -> dict[str, Any]:
        """The generator's keyword options besides ``n`` and ``seed``."""
        return dict(self.model_extra or {})

    def generator_kwargs(self) -> dict[str, Any]:
        kwargs = self.options
        if self.n is not None:
            kwargs["n"] = self.n
        if self.seed is not None:
            kwargs["seed"] = self.seed
        return kwargs


class HparamsConfig(_Strict):
    """The shared hyper-parameter base: ``common`` applies to every stage, then the stage kind's
    section, then the stage's own ``hparams`` (deep merge, later wins)."""

    common: dict[str, Any] = Field(default_factory=dict)
    sft: dict[str, Any] = Field(default_factory=dict)
    grpo: dict[str, Any] = Field(default_factory=dict)
    mopd: dict[str, Any] = Field(default_factory=dict)


class EvalSetConfig(_Strict):
    """A validation set of one domain: a dataset name (from ``data:``) or a JSONL path, and the
    reward that scores it (default: the domain's reward)."""

    data: str = Field(min_length=1)
    reward: NamedOptions | None = None

    @field_validator("reward", mode="before")
    @classmethod
    def _reward_shorthand(cls, value: Any) -> Any:
        return _name_shorthand(value)


class EvalConfig(_Strict):
    """Validation after every stage (and every ``every_n_steps`` optimizer steps when > 0)."""

    every_n_steps: int = Field(0, ge=0)
    sets: dict[str, EvalSetConfig] = Field(default_factory=dict)


class RegistryConfig(_Strict):
    """How the teacher registry ranks validation checkpoints for ``best:<domain>``."""

    #: the name of the validation score, as the backend reports it (shown in plans and reports)
    metric: str = "score"
    direction: Literal["max", "min"] = "max"
    #: per-domain direction overrides
    directions: dict[str, Literal["max", "min"]] = Field(default_factory=dict)

    def direction_for(self, domain: str) -> Literal["max", "min"]:
        return self.directions.get(domain, self.direction)


class LoggerConfig(_Strict):
    """Experiment tracking, with NeMo RL's ``logger:`` key names; one tracked run per stage.

    The ``local`` backend always writes ``<log_dir>/<stage>/metrics.jsonl`` and, when enabled,
    TensorBoard events and an offline W&B run there; the ``nemo_rl`` backend hands the section to
    NeMo RL's own logger. ``mlflow``/``swanlab``/GPU monitoring only exist on ``nemo_rl``.
    """

    #: the folder holding one sub-folder per stage (default ``<run_dir>/logs``; a relative path is
    #: relative to the run directory, so the logs move with it)
    log_dir: str | None = None
    tensorboard_enabled: bool = False
    #: needs the ``wandb`` package; runs are written offline unless ``wandb.mode`` says otherwise
    wandb_enabled: bool = False
    mlflow_enabled: bool = False
    swanlab_enabled: bool = False
    monitor_gpus: bool | None = None
    num_val_samples_to_print: int | None = Field(None, ge=0)
    #: ``wandb.init`` arguments; defaults: ``project: cascade``, ``group: <cascade name>``,
    #: ``name: <stage>``, ``job_type: <stage kind>``, ``mode: offline``
    wandb: dict[str, Any] = Field(default_factory=dict)
    tensorboard: dict[str, Any] = Field(default_factory=dict)
    mlflow: dict[str, Any] = Field(default_factory=dict)
    swanlab: dict[str, Any] = Field(default_factory=dict)
    gpu_monitoring: dict[str, Any] = Field(default_factory=dict)


class StageConfig(_Strict):
    """One stage of the cascade, run in list order."""

    name: str = Field(pattern=STAGE_NAME_PATTERN)
    kind: Literal["sft", "grpo", "mopd"]
    #: the domains this stage trains on (default: the keys of ``data``)
    domains: list[str] | None = None
    #: domain -> dataset name (from ``data:``) or JSONL path
    data: dict[str, str] = Field(default_factory=dict)
    #: domain -> reward, overriding the domain's default reward
    rewards: dict[str, NamedOptions] = Field(default_factory=dict)
    #: overrides on top of ``hparams.common`` and ``hparams.<kind>``
    hparams: dict[str, Any] = Field(default_factory=dict)
    #: ``previous`` (default), ``base`` (the model in ``model:``), an earlier stage's name (a
    #: branch), or a checkpoint path
    init: str = Field(INIT_PREVIOUS, min_length=1)
    #: ``mopd`` only: domain -> ``best:<domain>``, an earlier stage's name, or a checkpoint path
    teachers: dict[str, str] = Field(default_factory=dict)
    #: the loss (``mopd`` stages default to the ``mopd`` loss)
    loss: NamedOptions | None = None

    @field_validator("rewards", mode="before")
    @classmethod
    def _reward_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {domain: _name_shorthand(reward) for domain, reward in value.items()}
        return value

    @field_validator("loss", mode="before")
    @classmethod
    def _loss_shorthand(cls, value: Any) -> Any:
        return _name_shorthand(value)

    def trained_domains(self) -> list[str]:
        return list(self.domains) if self.domains is not None else list(self.data)


class CascadeConfig(_Strict):
    """A whole Cascade RL run."""

    #: a label for the run (default: the config file's stem)
    name: str | None = None
    backend: BackendConfig
    #: plugins allowed to load (built-in short names or entry-point names); ``null`` loads all
    plugins: list[str] | None = None
    seed: int = 0
    #: default run directory (``cascade run --run-dir`` wins)
    run_dir: str | None = None
    #: the base model, handed to the backend as ``StageSpec.model``
    model: dict[str, Any] = Field(default_factory=dict)
    domains: dict[str, DomainConfig] = Field(min_length=1)
    data: dict[str, DatasetConfig] = Field(default_factory=dict)
    hparams: HparamsConfig = Field(default_factory=HparamsConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    registry: RegistryConfig = Field(default_factory=RegistryConfig)
    logger: LoggerConfig = Field(default_factory=LoggerConfig)
    stages: list[StageConfig] = Field(min_length=1)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend_shorthand(cls, value: Any) -> Any:
        return _name_shorthand(value)

    @field_validator("domains", mode="before")
    @classmethod
    def _domain_shorthand(cls, value: Any) -> Any:
        # ``domains: {math: math}`` is short for ``{math: {reward: math}}``
        if isinstance(value, dict):
            return {d: ({"reward": v} if isinstance(v, str) else ({} if v is None else v)) for d, v in value.items()}
        return value
