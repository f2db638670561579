"""The data types and protocols every plugin and backend agrees on.

This module is the contract of ``cascade_plugins``. It imports nothing of ours and nothing heavy
(no torch, no Ray), so reward plugins, NeMo RL environment actors and the embedded host can all
depend on it.

Layers: ``rewards/``, ``losses/``, ``sandbox/`` and ``config/`` build on these types;
``backends/`` implement :class:`Backend`; ``cascade/`` drives backends through :class:`StageSpec`
and :class:`StageResult` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "Backend",
    "BackendFactory",
    "CheckpointRef",
    "DatasetFactory",
    "LossFactory",
    "Reward",
    "RewardFactory",
    "RewardResult",
    "RewardSpec",
    "Sample",
    "StageInterrupted",
    "StageKind",
    "StageReporter",
    "StageResult",
    "StageSpec",
    "Verdict",
    "stop_requested",
]


# --------------------------------------------------------------------------------------------
# Samples and rewards
# --------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Sample:
    """One scored unit: a prompt, the model's response, and what it is checked against.

    Exactly which of ``ground_truth`` / ``tests`` / ``problem`` a reward reads is the reward's
    business (math reads ``ground_truth``, code reads ``tests``, competition reads ``problem``).
    Everything else a data row carries lands in ``metadata`` so nothing is lost on the way
    through JSONL, NeMo RL's ``extra_env_info`` or Ray pickling.
    """

    response: str
    prompt: str = ""
    domain: str | None = None
    ground_truth: Any = None
    tests: Any = None
    problem: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Sample:
        """Build a sample from a JSON object; unknown keys go to ``metadata``.

        Raises ``TypeError``/``ValueError`` with the offending key when the row is malformed, so
        callers can turn it into an ``error`` verdict with a line number.
        """
        if not isinstance(row, Mapping):
            raise TypeError(f"a sample must be a JSON object, got {type(row).__name__}")
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        metadata: dict[str, Any] = dict(row.get("metadata") or {})
        for key, value in row.items():
            if key == "metadata":
                continue
            if key in known:
                kwargs[key] = value
            else:
                metadata[key] = value
        if "response" not in kwargs:
            raise ValueError("sample has no 'response' key")
        for key in ("response", "prompt"):
            if key in kwargs and not isinstance(kwargs[key], str):
                raise TypeError(f"sample key {key!r} must be a string, got {type(kwargs[key]).__name__}")
        if kwargs.get("domain") is not None and not isinstance(kwargs["domain"], str):
            raise TypeError("sample key 'domain' must be a string")
        return cls(metadata=metadata, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verdict:
    """Verdict strings shared across rewards. Rewards may add their own (``WA``, ``TLE``, ...)."""

    CORRECT = "correct"
    INCORRECT = "incorrect"
    NO_ANSWER = "no_answer"
    TIMEOUT = "timeout"
    ERROR = "error"


@dataclass(slots=True)
class RewardResult:
    """The score of one sample: a float in the reward's declared range, a verdict, and details.

    ``details`` must be JSON-serialisable (it is written to JSONL and logged by NeMo RL).
    """

    reward: float
    verdict: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"reward": self.reward, "verdict": self.verdict, "details": self.details}


@runtime_checkable
class Reward(Protocol):
    """A reward scores a batch of samples; it is picklable and safe to call from any thread.

    Contract (checked by :func:`cascade_plugins.testing.check_reward`):

    - ``score`` returns exactly one :class:`RewardResult` per sample, in order;
    - every ``reward`` lies inside ``reward_range``;
    - a malformed sample yields verdict ``"error"``, never an exception;
    - the same input gives the same output;
    - heavy or untrusted work runs in killable worker processes with hard deadlines
      (never SIGALRM: rewards run inside Ray actors and threads);
    - ``close`` releases worker processes; the reward may be used again afterwards (it restarts
      what it needs lazily), and ``close`` on a closed reward is a no-op.
    """

    name: str
    reward_range: tuple[float, float]

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]: ...

    def close(self) -> None: ...


#: Something that builds a reward from keyword options (usually the reward class itself). It has a
#: ``name`` attribute, the name users write in YAML and on the command line.
RewardFactory = Callable[..., Reward]


@dataclass(slots=True, frozen=True)
class RewardSpec:
    """A reward as configured: the registered name plus its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------

#: Something that builds a loss object from keyword options. Losses are torch code; the contract
#: only fixes how they are found (by ``name``), not their call signature, which each backend adapts.
LossFactory = Callable[..., Any]

#: Something that builds a dataset (an iterable of JSON-like rows) from keyword options; it has a
#: ``name`` attribute. Used for generated data (the quickstart's synthetic tasks).
DatasetFactory = Callable[..., Iterable[Mapping[str, Any]]]


# --------------------------------------------------------------------------------------------
# Checkpoints, stages, backends
# --------------------------------------------------------------------------------------------

StageKind = Literal["sft", "grpo", "mopd"]


@dataclass(slots=True, frozen=True)
class CheckpointRef:
    """Where a model checkpoint lives and what produced it.

    Stages hand over Hugging Face directories (``format="hf"``: config, safetensors, tokenizer);
    a backend may record its native checkpoint (``dcp``, ``megatron``) alongside for resume.
    """

    path: str
    format: Literal["hf", "dcp", "megatron"] = "hf"
    stage: str | None = None
    step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckpointRef:
        return cls(**dict(data))


@dataclass(slots=True)
class StageSpec:
    """One fully resolved stage of a cascade, as the sequencer hands it to a backend.

    Every reference is resolved: ``init`` is a concrete checkpoint (or ``None`` for "build the
    base model from ``model``"), teachers are concrete checkpoints, data paths exist.
    """

    name: str
    kind: StageKind
    #: domain -> training data (a JSONL path) for this stage
    data: dict[str, str]
    #: domain -> reward that scores it (``grpo``: the RL reward; ``sft``/``mopd``: used for eval)
    rewards: dict[str, RewardSpec]
    #: resolved hyper-parameters (the cascade's shared base merged with the stage's overrides)
    hparams: dict[str, Any]
    #: where the backend writes this stage's checkpoints, logs and resume state
    output_dir: str
    init: CheckpointRef | None = None
    #: ``mopd`` only: domain -> teacher checkpoint
    teachers: dict[str, CheckpointRef] = field(default_factory=dict)
    #: domain -> (validation JSONL path, reward) evaluated after the stage (and every N steps)
    eval: dict[str, tuple[str, RewardSpec]] = field(default_factory=dict)
    #: the model section of the cascade (base model to build or load when ``init`` is None)
    model: dict[str, Any] = field(default_factory=dict)
    #: the loss to use (``mopd`` stages: the MOPD loss and its options)
    loss: RewardSpec | None = None
    seed: int = 0
    #: experiment tracking, NeMo RL's ``logger:`` keys resolved for this stage: ``log_dir`` (this
    #: stage's own folder), ``tensorboard_enabled``, ``wandb_enabled``, ``wandb`` (``project``,
    #: ``group`` = the cascade, ``name`` = the stage, ``mode``), ... (see ``docs/cascade.md``)
    logger: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class StageResult:
    """What a backend returns after a stage: the checkpoint to hand on, metrics and scores."""

    stage: str
    checkpoint: CheckpointRef
    #: one dict per optimisation step (``{"step": int, "loss": float, ...}``)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    #: domain -> validation score of ``checkpoint`` (higher is better unless configured otherwise)
    validation: dict[str, float] = field(default_factory=dict)
    #: intermediate evaluations: ``[{"step": int, "scores": {domain: float}, "checkpoint": {...}}]``
    evaluations: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "checkpoint": self.checkpoint.to_dict(),
            "metrics": self.metrics,
            "validation": self.validation,
            "evaluations": self.evaluations,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageResult:
        return cls(
            stage=data["stage"],
            checkpoint=CheckpointRef.from_dict(data["checkpoint"]),
            metrics=list(data.get("metrics", [])),
            validation=dict(data.get("validation", {})),
            evaluations=list(data.get("evaluations", [])),
        )


class StageReporter(Protocol):
    """How a backend reports progress; the sequencer renders it (progress bar, logs, hooks).

    ``stop_requested()`` is the reason (``"SIGINT"``, ``"SIGTERM"``) once the user asked the run to
    stop, else ``None``. A backend that polls it between steps saves a resumable checkpoint and
    raises :class:`StageInterrupted`; read it through :func:`stop_requested`, which also accepts
    reporters written before it existed.
    """

    def start(self, total_steps: int, description: str = "") -> None: ...

    def step(self, step: int, metrics: Mapping[str, Any]) -> None: ...

    def log(self, message: str) -> None: ...

    def stop_requested(self) -> str | None: ...


def stop_requested(reporter: object) -> str | None:
    """``reporter.stop_requested()``, or ``None`` for a reporter without it."""
    check = getattr(reporter, "stop_requested", None)
    return check() if callable(check) else None


class StageInterrupted(KeyboardInterrupt):
    """A stage stopped because the user asked (SIGINT / SIGTERM), not because it failed.

    Raised by the sequencer's signal handler (``checkpoint`` ``None``: nothing was saved, the stage
    resumes from its last periodic checkpoint) or by a backend that saved a resumable checkpoint
    of ``step`` first. A ``KeyboardInterrupt``, so ``except Exception`` never swallows it.
    """

    def __init__(self, reason: str = "interrupted", *, step: int | None = None, checkpoint: str | None = None):
        self.reason = reason
        self.step = step
        self.checkpoint = checkpoint
        super().__init__(reason)

    def describe(self) -> str:
        if self.checkpoint is None:
            return f"{self.reason}; no checkpoint saved on the way out"
        return f"{self.reason}; checkpoint of step {self.step} saved ({self.checkpoint})"


@runtime_checkable
class Backend(Protocol):
    """Runs one stage: ``StageSpec`` + its input checkpoint in, ``StageResult`` out.

    ``run_stage`` must be resumable: called again with the same ``spec.output_dir`` after a
    crash, it continues from the stage's own last checkpoint instead of starting over.

    A backend whose class sets ``graceful_stop = True`` promises to poll
    ``reporter.stop_requested()`` at least once per step and then to save a checkpoint and raise
    :class:`StageInterrupted`; on SIGINT / SIGTERM the sequencer gives it a bounded time to do so.
    Without it, a signal interrupts the backend at once.
    """

    name: str

    def check(self, spec: StageSpec) -> list[str]:
        """Problems with ``spec`` this backend would hit (empty list: fine). Called before any
        compute, for every stage of the plan."""
        ...

    def run_stage(self, spec: StageSpec, reporter: StageReporter) -> StageResult: ...


#: Something that builds a backend from keyword options; it has a ``name`` attribute.
BackendFactory = Callable[..., Backend]
