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
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "JUDGE_VERDICTS",
    "STAGE_KEYS",
    "VERDICTS",
    "Backend",
    "BackendFactory",
    "CheckpointRef",
    "DatasetFactory",
    "Loss",
    "LossFactory",
    "LossInput",
    "PluginLookup",
    "ProblemKey",
    "Reward",
    "RewardFactory",
    "RewardResult",
    "RewardSpec",
    "Sample",
    "StageInterrupted",
    "StageKind",
    "StageProblem",
    "StageReporter",
    "StageResult",
    "StageSpec",
    "Verdict",
    "format_key",
    "judged_verdict",
    "loss_feed_problems",
    "loss_inputs",
    "stop_requested",
]


# --------------------------------------------------------------------------------------------
# Samples and rewards
# --------------------------------------------------------------------------------------------


#: the keys of a data row that say what a response is checked against
TARGET_KEYS = ("ground_truth", "tests", "problem")


def _text(content: Any) -> str:
    """A chat message's content as text (multimodal content lists keep their text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        return "".join(str(part.get("text", "")) if isinstance(part, Mapping) else str(part) for part in content)
    return "" if content is None else str(content)


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
    def from_row(cls, row: Mapping[str, Any], *, response: str | None = None, domain: str | None = None) -> Sample:
        """The one place a data row becomes a sample: ``cascade score``'s JSONL lines, the local
        host's training and eval rows with the model's response, NeMo RL's ``extra_env_info``.

        - ``ground_truth``, ``tests``, ``problem``: the row's keys of those names;
        - ``prompt``: the row's ``prompt``; a chat row (``messages``: ``{role, content}`` turns)
          without one uses its last user turn;
        - a chat row with none of the three keys above whose last turn is the assistant's has that
          turn as its ``ground_truth`` (the layout of NeMo RL's own datasets);
        - ``response``: the argument (a model's output), else the row's ``response`` key;
        - ``domain``: the argument (the domain the row is scored for), else the row's ``domain``;
        - ``metadata``: the row's ``metadata`` mapping, plus every other key of the row (``messages``
          is the prompt in chat form, not metadata).

        Raises ``TypeError``/``ValueError`` naming the offending key when the row is malformed,
        so callers can turn it into an ``error`` verdict with a line number.
        """
        if not isinstance(row, Mapping):
            raise TypeError(f"a sample must be a JSON object, got {type(row).__name__}")
        metadata = row.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"sample key 'metadata' must be an object, got {type(metadata).__name__}")
        if response is None:
            if "response" not in row:
                raise ValueError("sample has no 'response' key")
            response = row["response"]
        targets = {key: row[key] for key in TARGET_KEYS if key in row}
        prompt = row.get("prompt", "")
        messages = row.get("messages")
        if isinstance(messages, list) and messages:
            turns = [m for m in messages if isinstance(m, Mapping)]
            if "prompt" not in row:
                users = [_text(m.get("content")) for m in turns if m.get("role") == "user"]
                prompt = users[-1] if users else ""
            if not targets and turns and turns[-1] is messages[-1] and turns[-1].get("role") == "assistant":
                targets["ground_truth"] = _text(turns[-1].get("content"))
        if domain is None:
            domain = row.get("domain")
        for key, value in (("response", response), ("prompt", prompt)):
            if not isinstance(value, str):
                raise TypeError(f"sample key {key!r} must be a string, got {type(value).__name__}")
        if domain is not None and not isinstance(domain, str):
            raise TypeError("sample key 'domain' must be a string")
        fields = {"response", "prompt", "messages", "domain", "metadata", *TARGET_KEYS}
        extra = dict(metadata or {})
        extra.update({key: value for key, value in row.items() if key not in fields})
        return cls(response=response, prompt=prompt, domain=domain, metadata=extra, **targets)

    @classmethod
    def from_dict(cls, row: Mapping[str, Any]) -> Sample:
        """A sample from a JSON object that carries its ``response`` (:meth:`from_row`)."""
        return cls.from_row(row)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Verdict:
    """The verdicts every reward uses (:data:`VERDICTS` says what each means).

    A format's own verdict (a contest judge's ``WA``, ``TLE``, ...) goes into the result's
    ``details["judge_verdict"]``; :func:`judged_verdict` maps it onto these.
    """

    CORRECT = "correct"
    PARTIAL = "partial"
    INCORRECT = "incorrect"
    NO_ANSWER = "no_answer"
    TIMEOUT = "timeout"
    RUNTIME_ERROR = "runtime_error"
    COMPILE_ERROR = "compile_error"
    ERROR = "error"
    UNSCORED = "unscored"


#: every verdict a ``RewardResult`` may carry, and what it means
VERDICTS: Mapping[str, str] = MappingProxyType({
    Verdict.CORRECT: "full credit: the answer is right, every test passed",
    Verdict.PARTIAL: "some credit, not all (subtasks, a share of the tests)",
    Verdict.INCORRECT: "an answer was given and judged wrong",
    Verdict.NO_ANSWER: "nothing to judge: no final answer, no code block, a language the task does not take",
    Verdict.TIMEOUT: "a time limit was hit (the program's, or the checker's)",
    Verdict.RUNTIME_ERROR: "the program crashed or went over its memory or output limit",
    Verdict.COMPILE_ERROR: "the program did not compile",
    Verdict.ERROR: "the sample could not be scored: malformed, or the scorer itself failed (not the policy's doing)",
    Verdict.UNSCORED: "no reward ran (a distillation-only domain)",
})

#: contest judges' and the sandbox's verdicts -> the shared verdict
JUDGE_VERDICTS: Mapping[str, str] = MappingProxyType({
    "AC": Verdict.CORRECT,
    "WA": Verdict.INCORRECT,
    "PE": Verdict.INCORRECT,
    "TLE": Verdict.TIMEOUT,
    "MLE": Verdict.RUNTIME_ERROR,
    "OLE": Verdict.RUNTIME_ERROR,
    "RE": Verdict.RUNTIME_ERROR,
    "CE": Verdict.COMPILE_ERROR,
    "JE": Verdict.ERROR,
    "SANDBOX_ERROR": Verdict.ERROR,
})


def judged_verdict(judge_verdict: str) -> str:
    """The shared verdict of a judge's (:data:`JUDGE_VERDICTS`); a shared verdict passes through,
    anything else is ``error``."""
    if judge_verdict in VERDICTS:
        return judge_verdict
    return JUDGE_VERDICTS.get(judge_verdict, Verdict.ERROR)


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
      what it needs lazily), and ``close`` on a closed reward is a no-op;
    - ``verdict`` is one of :data:`VERDICTS`.

    A reward that only names what a backend scores itself (``nemo_rl_env``: NeMo RL's
    environments) sets ``scored_by`` to that backend's name; other backends refuse it at plan time.
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

class LossInput(StrEnum):
    """What a loss reads from a training batch, besides the token mask. As NeMo RL's
    ``LossFunction`` declares its input type, a loss declares the set it needs, and a backend
    refuses at plan time a loss that needs something it cannot feed."""

    #: the trained policy's log-probs of the sampled tokens, ``[B, T]``, with grad
    POLICY_LOGPROBS = "policy_logprobs"
    #: the sampler's (inference engine's) log-probs of the same tokens, ``[B, T]``
    INFERENCE_LOGPROBS = "inference_logprobs"
    #: each sample's routed teacher's log-probs of the sampled tokens, ``[B, T]``
    TEACHER_LOGPROBS = "teacher_logprobs"
    #: the teacher's top-k tokens and their log-probs at each position, ``[B, T, k]`` (and the
    #: policy's log-probs of those tokens, from its full logits)
    TEACHER_TOPK = "teacher_topk"
    #: group-normalized outcome-reward advantages, per sequence or per token
    OUTCOME_ADVANTAGES = "outcome_advantages"


@runtime_checkable
class Loss(Protocol):
    """A training loss. Its call signature is the backend's business (each adapts its own); the
    contract fixes how it is found (by ``name``, through the registry) and what it needs
    (``inputs``, which may depend on its options)."""

    name: str

    @property
    def inputs(self) -> frozenset[LossInput]: ...


def loss_inputs(loss: object) -> frozenset[LossInput] | None:
    """``loss.inputs`` as :class:`LossInput` members; ``None`` when the loss declares none (or
    names an input this contract does not know), so a backend cannot know it can feed it."""
    declared = getattr(loss, "inputs", None)
    if declared is None:
        return None
    try:
        return frozenset(LossInput(item) for item in declared)
    except (TypeError, ValueError):
        return None


def loss_feed_problems(
    stage: str, name: str, loss: object, feeds: frozenset[LossInput], host: str, hint: str | None = None
) -> list[StageProblem]:
    """A backend's refusal of ``loss`` (registered as ``name``) when it needs an input that
    ``host`` does not feed, or declares none; empty when ``host`` feeds everything it needs."""
    needs = loss_inputs(loss)
    if needs is None:
        return [StageProblem(
            stage, ("loss",), f"loss {name!r} declares no inputs, so {host} cannot tell whether it can feed it",
            "give the loss an 'inputs' attribute (a set of cascade_plugins.interfaces.LossInput)",
        )]
    missing = sorted(needs - feeds)
    if not missing:
        return []
    return [StageProblem(
        stage, ("loss",),
        f"loss {name!r} needs {', '.join(missing)}, which {host} does not feed (it feeds {', '.join(sorted(feeds))})",
        hint,
    )]


#: Something that builds a :class:`Loss` from keyword options; it has a ``name`` attribute.
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


ProblemKey = tuple[str | int, ...]

#: where a :class:`StageProblem`'s key starts: a :class:`StageSpec` field, or ``backend`` for the
#: backend's own options (``backend.options`` in a cascade YAML)
STAGE_KEYS = frozenset({
    "name", "kind", "data", "rewards", "hparams", "output_dir", "init", "teachers", "eval", "model", "loss",
    "seed", "logger", "backend",
})


def format_key(key: Sequence[str | int]) -> str:
    """``("hparams", "betas", 1)`` -> ``"hparams.betas[1]"``."""
    out = ""
    for part in key:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True, slots=True)
class StageProblem:
    """What a backend found about one stage, before any compute.

    ``key`` is the key path inside the :class:`StageSpec` the problem is about (``("hparams",
    "lr")``, ``("rewards", "math")``, ``("loss",)``; ``("backend", "python")`` for a backend
    option; ``()`` for the stage as a whole); a dotted string (``"hparams.lr"``) is split for
    you. ``cascade plan`` shows it at the YAML line that set that key. ``hint`` says what to do
    about it. ``severity="note"`` is not a problem but worth telling (it does not stop the plan).
    """

    stage: str
    key: ProblemKey
    message: str
    hint: str | None = None
    severity: Literal["error", "note"] = "error"

    def __post_init__(self) -> None:
        key = self.key
        if isinstance(key, str):
            key = tuple(part for part in key.split(".") if part)
            object.__setattr__(self, "key", key)
        if not isinstance(key, tuple) or not all(isinstance(part, (str, int)) for part in key):
            raise TypeError(f"StageProblem.key must be a tuple of str/int or a dotted string, got {self.key!r}")
        if key and key[0] not in STAGE_KEYS:
            raise ValueError(f"StageProblem.key must start with one of {sorted(STAGE_KEYS)}, got {key!r}")
        if self.severity not in ("error", "note"):
            raise ValueError(f"StageProblem.severity must be 'error' or 'note', got {self.severity!r}")
        if not self.message:
            raise ValueError("StageProblem.message must say what is wrong")

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def text(self) -> str:
        """The message with its hint (``"<message>; <hint>"``)."""
        return f"{self.message}; {self.hint}" if self.hint else self.message

    def __str__(self) -> str:
        where = f"stage {self.stage!r}" + (f": {format_key(self.key)}" if self.key else "")
        return f"{where}: {self.text()}"


class PluginLookup(Protocol):
    """The plugin registry a backend is built with: the plan's, holding only the plugins the
    cascade's ``plugins:`` allow-list (or ``CASCADE_PLUGINS``) lets load. A backend finds rewards
    and losses here and nowhere else, so a plugin the cascade leaves out is invisible to it.

    ``make_reward`` / ``make_loss`` raise ``KeyError`` for a name no loaded plugin registered
    (the message names the ones that are)."""

    #: the plugin names allowed to load (``None``: every installed plugin); a backend that starts
    #: other processes hands it on, so they load the same plugins
    allowed: frozenset[str] | None

    def names(self, kind: Literal["reward", "loss", "backend", "dataset"]) -> list[str]: ...

    def make_reward(self, name: str, **options: Any) -> Reward: ...

    def make_loss(self, name: str, **options: Any) -> Any: ...


@runtime_checkable
class Backend(Protocol):
    """Runs one stage: ``StageSpec`` + its input checkpoint in, ``StageResult`` out.

    ``run_stage`` must be resumable: called again with the same ``spec.output_dir`` after a
    crash, it continues from the stage's own last checkpoint instead of starting over.

    A backend whose class sets ``graceful_stop = True`` promises to poll
    ``reporter.stop_requested()`` at least once per step and then to save a checkpoint and raise
    :class:`StageInterrupted`; on SIGINT / SIGTERM the sequencer gives it a bounded time to do so.
    Without it, a signal interrupts the backend at once.

    A backend is built by its factory as ``factory(registry=<PluginLookup>, **options)``: the
    plan's registry, where it resolves the stage's rewards and loss by name (never in a
    process-wide registry of its own).
    """

    name: str

    def check(self, spec: StageSpec) -> list[StageProblem]:
        """What this backend would hit with ``spec`` (empty list: fine), as :class:`StageProblem`
        items keyed by the spec's key paths; notes (``severity="note"``) are shown with the plan.
        Called before any compute, for every stage of the plan."""
        ...

    def run_stage(self, spec: StageSpec, reporter: StageReporter) -> StageResult: ...


#: Something that builds a backend from keyword options plus ``registry`` (a
#: :class:`PluginLookup`); it has a ``name`` attribute.
BackendFactory = Callable[..., Backend]
