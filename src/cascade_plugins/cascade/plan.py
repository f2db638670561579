"""Resolve a :class:`CascadeConfig` into a plan, checking everything before any compute.

:func:`resolve_plan` does the static checks (unknown domains, rewards, losses, generators and
backends; missing data files; init/teacher references to stages that do not run before; reference
cycles; teachers on the wrong stage kind) and :func:`check_with_backend` asks the backend about
every resolved stage (``Backend.check``). :func:`check_plan` does both in one pass, so a config
with problems of both kinds lists them all at once. Each raises one :class:`ConfigError` naming
file, line and key path of each problem, once: a backend problem that every stage inherits from
one line (``hparams.common``) is one problem naming the stages.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cascade_plugins.config import ConfigError, ConfigProblem, LoadedConfig, format_key_path
from cascade_plugins.config.schema import (
    BEST_PREFIX,
    INIT_BASE,
    INIT_PREVIOUS,
    CascadeConfig,
    NamedOptions,
    StageConfig,
)
from cascade_plugins.interfaces import CheckpointRef, RewardSpec, StageSpec
from cascade_plugins.plugins import PluginError, PluginRegistry, UnknownPluginNameError, get_registry

__all__ = [
    "DatasetSource",
    "InitRef",
    "Plan",
    "PlannedStage",
    "TeacherRef",
    "check_plan",
    "check_with_backend",
    "config_hash",
    "deep_merge",
    "resolve_plan",
]

KeyPath = tuple[str | int, ...]


# ------------------------------------------------------------------------------------------
# Plan data
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSource:
    """Where a stage's or eval set's rows come from."""

    #: the dataset's name under ``data:`` (``None``: a path written directly in a stage)
    name: str | None
    #: absolute JSONL path (generated data: inside the run's data folder, written before stage 1)
    path: str
    generator: str | None = None
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "path": self.path}
        if self.generator:
            out["generator"] = self.generator
            out["kwargs"] = dict(self.kwargs)
        return out


@dataclass(frozen=True)
class InitRef:
    """A stage's starting checkpoint: the base model, an earlier stage's output, or a path."""

    kind: Literal["base", "stage", "path"]
    stage: str | None = None
    path: str | None = None

    def describe(self) -> str:
        if self.kind == "base":
            return "base"
        return f"stage:{self.stage}" if self.kind == "stage" else f"path:{self.path}"


@dataclass(frozen=True)
class TeacherRef:
    """A ``mopd`` teacher: the registry's best checkpoint for a domain, a stage's output, or a path."""

    kind: Literal["best", "stage", "path"]
    #: the domain (``best``), the stage name (``stage``) or the absolute path (``path``)
    value: str

    def describe(self) -> str:
        return f"{BEST_PREFIX}{self.value}" if self.kind == "best" else f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class PlannedStage:
    index: int
    name: str
    kind: Literal["sft", "grpo", "mopd"]
    domains: list[str]
    data: dict[str, DatasetSource]
    rewards: dict[str, RewardSpec]
    hparams: dict[str, Any]
    init: InitRef
    teachers: dict[str, TeacherRef]
    loss: RewardSpec | None
    seed: int
    #: a side branch: its checkpoint does not lead to the last stage's (e.g. a teacher trained
    #: from an earlier checkpoint)
    branch: bool

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "kind": self.kind,
            "domains": list(self.domains),
            "data": {d: src.path for d, src in self.data.items()},
            "rewards": {d: _spec_dict(r) for d, r in self.rewards.items()},
            "init": self.init.describe(),
            "branch": self.branch,
            "teachers": {d: t.describe() for d, t in self.teachers.items()},
            "loss": _spec_dict(self.loss) if self.loss else None,
            "hparams": copy.deepcopy(self.hparams),
            "seed": self.seed,
        }


@dataclass(frozen=True)
class Plan:
    """The resolved cascade: what runs, in which order, from which checkpoints, on which data."""

    config: CascadeConfig
    run_dir: Path
    #: relative paths in the config (data files, checkpoints) are resolved against this folder
    base_dir: Path
    datasets: dict[str, DatasetSource]
    eval: dict[str, tuple[DatasetSource, RewardSpec]]
    stages: list[PlannedStage]
    config_hash: str
    loaded: LoadedConfig | None = None

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "data"

    @property
    def log_dir(self) -> Path:
        """``logger.log_dir`` (relative: inside the run directory), default ``<run_dir>/logs``."""
        configured = self.config.logger.log_dir
        if configured is None:
            return self.run_dir / "logs"
        path = Path(configured).expanduser()
        return path if path.is_absolute() else self.run_dir / path

    def stage_logger(self, stage: PlannedStage) -> dict[str, Any]:
        """The ``logger:`` keys the user set, with this stage's own ``log_dir`` and W&B identity
        (one run per stage, grouped by the cascade); backends add their own defaults."""
        logger = self.config.logger
        section = logger.model_dump(mode="json", exclude_unset=True)
        section["log_dir"] = str(self.log_dir / stage.name)
        section["wandb"] = {
            "group": self.config.name or "cascade", "name": stage.name, "job_type": stage.kind, **logger.wandb,
        }
        return section

    def stage(self, name: str) -> PlannedStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(name)

    def stage_dir(self, name: str) -> Path:
        return self.run_dir / "stages" / name

    def lineage(self, name: str) -> list[str]:
        """The chain of stages whose checkpoints lead to ``name``'s start, oldest first."""
        chain: list[str] = []
        stage: PlannedStage | None = self.stage(name)
        while stage is not None:
            chain.append(stage.name)
            stage = self.stage(stage.init.stage) if stage.init.kind == "stage" and stage.init.stage else None
        return chain[::-1]

    def generated(self) -> dict[str, DatasetSource]:
        return {name: src for name, src in self.datasets.items() if src.generator}

    def with_data_dir(self, data_dir: Path) -> Plan:
        """The same plan with generated datasets written to (and read from) ``data_dir``."""

        def move(src: DatasetSource) -> DatasetSource:
            if not src.generator or src.name is None:
                return src
            return dataclasses.replace(src, path=str(data_dir / f"{src.name}.jsonl"))

        return dataclasses.replace(
            self,
            datasets={n: move(s) for n, s in self.datasets.items()},
            eval={d: (move(s), r) for d, (s, r) in self.eval.items()},
            stages=[dataclasses.replace(st, data={d: move(s) for d, s in st.data.items()}) for st in self.stages],
        )

    def spec_for(
        self,
        stage: PlannedStage,
        init: CheckpointRef | None,
        teachers: Mapping[str, CheckpointRef] | None = None,
    ) -> StageSpec:
        """The backend's view of ``stage`` once its init and teacher checkpoints are known."""
        return StageSpec(
            name=stage.name,
            kind=stage.kind,
            data={d: src.path for d, src in stage.data.items()},
            rewards=dict(stage.rewards),
            hparams=copy.deepcopy(stage.hparams),
            output_dir=str(self.stage_dir(stage.name)),
            init=init,
            teachers=dict(teachers or {}),
            eval={d: (src.path, reward) for d, (src, reward) in self.eval.items()},
            model=copy.deepcopy(self.config.model),
            loss=stage.loss,
            seed=stage.seed,
            logger=self.stage_logger(stage),
        )

    def placeholder_spec(self, stage: PlannedStage) -> StageSpec:
        """``spec_for`` before anything ran. Checkpoints the cascade will make have
        ``CheckpointRef.stage`` set (the stage, or ``best:<domain>`` for registry teachers) and do not
        exist yet, so ``Backend.check`` must only require paths whose ``stage`` is ``None``."""
        teachers = {d: self._placeholder(t) for d, t in stage.teachers.items()}
        init = None
        if stage.init.kind == "stage" and stage.init.stage:
            init = CheckpointRef(path=str(self.stage_dir(stage.init.stage)), stage=stage.init.stage)
        elif stage.init.kind == "path" and stage.init.path:
            init = CheckpointRef(path=stage.init.path)
        return self.spec_for(stage, init, teachers)

    def _placeholder(self, teacher: TeacherRef) -> CheckpointRef:
        if teacher.kind == "stage":
            return CheckpointRef(path=str(self.stage_dir(teacher.value)), stage=teacher.value)
        if teacher.kind == "path":
            return CheckpointRef(path=teacher.value)
        # ``stage`` set: made by the cascade, so backends must not expect it on disk yet
        return CheckpointRef(path=teacher.describe(), stage=teacher.describe())

    def describe(self) -> dict[str, Any]:
        """The plan as JSON-ready data (``cascade plan --json``)."""
        return {
            "name": self.config.name,
            "backend": self.config.backend.model_dump(),
            "run_dir": str(self.run_dir),
            "config_hash": self.config_hash,
            "datasets": {n: s.describe() for n, s in self.datasets.items()},
            "eval": {
                "every_n_steps": self.config.eval.every_n_steps,
                "sets": {d: {"data": s.path, "reward": _spec_dict(r)} for d, (s, r) in self.eval.items()},
            },
            "registry": self.config.registry.model_dump(),
            "stages": [stage.describe() for stage in self.stages],
        }


def _spec_dict(spec: RewardSpec) -> dict[str, Any]:
    return {"name": spec.name, "options": dict(spec.options)}


def _as_spec(named: NamedOptions) -> RewardSpec:
    return RewardSpec(named.name, dict(named.options))


def deep_merge(*layers: Mapping[str, Any]) -> dict[str, Any]:
    """Merge mappings left to right; nested mappings merge, anything else is replaced."""
    out: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, Mapping) and isinstance(out.get(key), dict):
                out[key] = deep_merge(out[key], value)
            else:
                out[key] = copy.deepcopy(value)
    return out


def config_hash(config: CascadeConfig) -> str:
    """A hash of the config's meaning (not its formatting); ``run_dir`` is left out because the
    same run may be moved or named on the command line, ``logger`` because tracking can be turned
    on or off for a run that goes on."""
    data = config.model_dump(mode="json", exclude={"run_dir", "logger"})
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


# ------------------------------------------------------------------------------------------
# Resolution
# ------------------------------------------------------------------------------------------


class _Problems:
    def __init__(self, loaded: LoadedConfig | None):
        self.loaded = loaded
        self.items: list[ConfigProblem] = []
        #: the key path of each item, as a tuple (which stage a problem belongs to)
        self.keys: list[KeyPath] = []

    def add(self, key_path: Sequence[str | int], message: str) -> None:
        self.keys.append(tuple(key_path))
        if self.loaded is not None:
            self.items.append(self.loaded.problem(key_path, message))
        else:
            self.items.append(ConfigProblem(None, format_key_path(key_path), None, message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Resolver:
    def __init__(
        self,
        config: CascadeConfig,
        loaded: LoadedConfig | None,
        run_dir: Path,
        base_dir: Path,
        registry: PluginRegistry | None,
    ):
        self.config = config
        self.run_dir = run_dir
        self.base_dir = base_dir
        self.problems = _Problems(loaded)
        self.registry = registry
        self.datasets: dict[str, DatasetSource] = {}
        self._checked_plugins: dict[tuple[str, str], str | None] = {}
        self._checked_datasets: set[str] = set()
        self.stage_index: dict[str, int] = {}
        #: (referring stage, referred stage, key, verb) for references to stages not listed before
        self._forward_refs: list[tuple[int, int, KeyPath, str]] = []
        #: stages that lost an input to a problem found while resolving something they use (a
        #: dataset, a domain's reward): the backend's view of them is incomplete
        self._incomplete: set[int] = set()

    def stages_with_problems(self) -> set[str]:
        """Names of stages whose resolution found a problem of theirs or of an input they use."""
        names = [s.name for s in self.config.stages]
        flagged = set(self._incomplete)
        for key in self.problems.keys:
            if len(key) >= 2 and key[0] == "stages" and isinstance(key[1], int):
                flagged.add(key[1])
        return {names[i] for i in flagged if i < len(names)}

    # -- plugins ------------------------------------------------------------------------------

    def check_plugin(
        self, kind: Literal["reward", "loss"], spec: NamedOptions, key: KeyPath, context: str = ""
    ) -> None:
        """Is ``spec`` registered, and does its factory accept the options? (built and closed)"""
        if self.registry is None:
            return
        cache_key = (kind, json.dumps([spec.name, spec.options], sort_keys=True, default=str))
        if cache_key not in self._checked_plugins:
            self._checked_plugins[cache_key] = self._try_build(kind, spec)
        message = self._checked_plugins[cache_key]
        if message:
            self.problems.add(key, context + message)

    def plugin_failed(self, kind: Literal["reward", "loss"], spec: NamedOptions) -> bool:
        """Did :meth:`check_plugin` already find ``spec`` broken?"""
        cache_key = (kind, json.dumps([spec.name, spec.options], sort_keys=True, default=str))
        return bool(self._checked_plugins.get(cache_key))

    def _try_build(self, kind: Literal["reward", "loss"], spec: NamedOptions) -> str | None:
        assert self.registry is not None
        try:
            registration = self.registry.get(kind, spec.name)
        except PluginError as exc:
            return str(exc)
        try:
            built = registration.factory(**spec.options)
        except Exception as exc:
            return f"{kind} {spec.name!r} rejected its options {dict(spec.options)}: {exc}"
        close = getattr(built, "close", None)
        if callable(close):
            close()
        return None

    # -- data ---------------------------------------------------------------------------------

    def data_ref(self, ref: str, key: KeyPath) -> DatasetSource | None:
        """A dataset name from ``data:`` or a JSONL path (relative to ``base_dir``)."""
        if ref in self.config.data:
            return self.named_dataset(ref)
        path = self._path(ref)
        if path.is_file():
            return DatasetSource(name=None, path=str(path))
        known = sorted(self.config.data)
        self.problems.add(
            key,
            f"{ref!r} is neither a dataset under data: ({', '.join(known) or 'none defined'}) "
            f"nor an existing file ({path}){_did_you_mean(ref, known)}",
        )
        return None

    def named_dataset(self, name: str) -> DatasetSource | None:
        dataset = self.config.data[name]
        if name not in self._checked_datasets:
            self._checked_datasets.add(name)
            if dataset.path is not None:
                path = self._path(dataset.path)
                if not path.is_file():
                    self.problems.add(("data", name, "path"), f"data file not found: {path}")
                else:
                    self.datasets[name] = DatasetSource(name=name, path=str(path))
            else:
                assert dataset.generator is not None
                if self._check_generator(name, dataset.generator, dataset.generator_kwargs()):
                    self.datasets[name] = DatasetSource(
                        name=name,
                        path=str(self.run_dir / "data" / f"{name}.jsonl"),
                        generator=dataset.generator,
                        kwargs=dataset.generator_kwargs(),
                    )
        return self.datasets.get(name)

    def _check_generator(self, name: str, generator: str, kwargs: dict[str, Any]) -> bool:
        if self.registry is None:
            return True
        try:
            factory = self.registry.get("dataset", generator).factory
        except PluginError as exc:
            self.problems.add(("data", name, "generator"), str(exc))
            return False
        try:
            # generators are cheap; building one here catches bad options before any compute
            factory(**kwargs)
        except Exception as exc:
            self.problems.add(("data", name), f"generator {generator!r} rejected {kwargs}: {exc}")
            return False
        return True

    def _path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    # -- domains and rewards ------------------------------------------------------------------

    def known_domain(self, domain: str, key: KeyPath) -> bool:
        if domain in self.config.domains:
            return True
        known = sorted(self.config.domains)
        self.problems.add(
            key, f"unknown domain {domain!r} (domains: {', '.join(known)}){_did_you_mean(domain, known)}"
        )
        return False

    def domain_reward(self, domain: str) -> NamedOptions | None:
        entry = self.config.domains.get(domain)
        return entry.reward if entry else None

    # -- the whole plan -----------------------------------------------------------------------

    def resolve(self, *, raise_problems: bool = True) -> Plan:
        """The plan; with ``raise_problems=False`` also when problems were found (to check it
        further, never to run it: inputs with problems are missing from it)."""
        config = self.config
        if self.registry is not None and config.backend.name not in self.registry.names("backend"):
            try:
                self.registry.get("backend", config.backend.name)
            except PluginError as exc:
                self.problems.add(("backend", "name"), str(exc))

        for domain, entry in config.domains.items():
            if entry.reward is not None:
                self.check_plugin("reward", entry.reward, ("domains", domain, "reward"))

        eval_sets = self._resolve_eval()
        stages = self._resolve_stages()
        self._check_references()
        if raise_problems:
            self.problems.raise_if_any()
        return Plan(
            config=config,
            run_dir=self.run_dir,
            base_dir=self.base_dir,
            datasets=dict(self.datasets),
            eval=eval_sets,
            stages=stages,
            config_hash=config_hash(config),
            loaded=self.problems.loaded,
        )

    def _resolve_eval(self) -> dict[str, tuple[DatasetSource, RewardSpec]]:
        out: dict[str, tuple[DatasetSource, RewardSpec]] = {}
        for domain, eval_set in self.config.eval.sets.items():
            key: KeyPath = ("eval", "sets", domain)
            known = self.known_domain(domain, key)
            source = self.data_ref(eval_set.data, (*key, "data"))
            reward = eval_set.reward or (self.domain_reward(domain) if known else None)
            if eval_set.reward is not None:
                self.check_plugin("reward", eval_set.reward, (*key, "reward"))
            elif reward is None and known:
                self.problems.add(
                    key, f"no reward to score it: set {format_key_path(key)}.reward or domains.{domain}.reward"
                )
            if source is not None and reward is not None and not self.plugin_failed("reward", reward):
                out[domain] = (source, _as_spec(reward))
        return out

    def _resolve_stages(self) -> list[PlannedStage]:
        config = self.config
        first_index: dict[str, int] = {}
        for index, stage in enumerate(config.stages):
            if stage.name in (INIT_PREVIOUS, INIT_BASE):
                self.problems.add(("stages", index, "name"), f"{stage.name!r} is reserved for init:")
            if stage.name in first_index:
                self.problems.add(
                    ("stages", index, "name"),
                    f"duplicate stage name {stage.name!r} (first used by stages[{first_index[stage.name]}])",
                )
            else:
                first_index[stage.name] = index
        self.stage_index = first_index

        planned = [self._resolve_stage(index, stage) for index, stage in enumerate(config.stages)]
        return _mark_branches(planned)

    def _resolve_stage(self, index: int, stage: StageConfig) -> PlannedStage:
        key: KeyPath = ("stages", index)
        domains = stage.trained_domains()
        if not domains:
            self.problems.add((*key, "data"), "the stage trains on no domain: map each domain to its dataset here")
        if stage.domains is not None:
            for position, domain in enumerate(stage.domains):
                if self.known_domain(domain, (*key, "domains", position)) and domain not in stage.data:
                    self.problems.add((*key, "data"), f"no data for domain {domain!r} of this stage")
        data: dict[str, DatasetSource] = {}
        for domain, ref in stage.data.items():
            if stage.domains is not None and domain not in stage.domains:
                self.problems.add((*key, "data", domain), f"domain {domain!r} is not in this stage's domains {domains}")
                continue
            if stage.domains is None:
                self.known_domain(domain, (*key, "data", domain))
            source = self.data_ref(ref, (*key, "data", domain))
            if source is not None:
                data[domain] = source
            else:
                self._incomplete.add(index)

        rewards: dict[str, RewardSpec] = {}
        for domain, reward in stage.rewards.items():
            if domain not in domains:
                self.problems.add((*key, "rewards", domain), f"domain {domain!r} is not trained by this stage")
            else:
                self.check_plugin("reward", reward, (*key, "rewards", domain))
        for domain in domains:
            reward = stage.rewards.get(domain) or self.domain_reward(domain)
            if reward is not None and self.plugin_failed("reward", reward):
                self._incomplete.add(index)
            elif reward is not None:
                rewards[domain] = _as_spec(reward)
            elif stage.kind == "grpo" and domain in self.config.domains:
                self.problems.add(
                    (*key, "rewards"),
                    f"grpo needs a reward for domain {domain!r}: set it here or in domains.{domain}.reward",
                )

        hparams = deep_merge(
            self.config.hparams.common, getattr(self.config.hparams, stage.kind), stage.hparams
        )
        if self.config.eval.every_n_steps and "eval_every" not in hparams:
            hparams["eval_every"] = self.config.eval.every_n_steps

        init = self._resolve_init(index, stage)
        teachers = self._resolve_teachers(index, stage, domains)

        loss: RewardSpec | None = None
        if stage.loss is not None:
            self.check_plugin("loss", stage.loss, (*key, "loss"))
            loss = _as_spec(stage.loss)
        elif stage.kind == "mopd":
            default = NamedOptions(name="mopd")
            self.check_plugin("loss", default, (*key, "kind"), "mopd stages use the loss 'mopd' unless 'loss' is set: ")
            loss = _as_spec(default)

        return PlannedStage(
            index=index,
            name=stage.name,
            kind=stage.kind,
            domains=domains,
            data=data,
            rewards=rewards,
            hparams=hparams,
            init=init,
            teachers=teachers,
            loss=loss,
            seed=self.config.seed + index,
            branch=False,  # set once every stage is known (see _mark_branches)
        )

    def _stage_ref(self, index: int, target: str, key: KeyPath, what: str) -> bool:
        """Is ``target`` a stage that runs before stage ``index``? Forward and self references are
        recorded for the cycle check, which reports them."""
        target_index = self.stage_index[target]
        if target_index < index:
            return True
        self._forward_refs.append((index, target_index, key, what))
        return False

    def _resolve_init(self, index: int, stage: StageConfig) -> InitRef:
        key: KeyPath = ("stages", index, "init")
        value = stage.init
        if value == INIT_PREVIOUS:
            if index == 0:
                return InitRef("base")
            return InitRef("stage", stage=self.config.stages[index - 1].name)
        if value == INIT_BASE:
            return InitRef("base")
        if value in self.stage_index:
            self._stage_ref(index, value, key, "start from")
            return InitRef("stage", stage=value)
        path = self._path(value)
        if not path.exists():
            names = list(self.stage_index)
            self.problems.add(
                key,
                f"{value!r} is not 'previous', 'base', a stage name ({', '.join(names)}) or an existing "
                f"checkpoint ({path}){_did_you_mean(value, names)}",
            )
        return InitRef("path", path=str(path))

    def _resolve_teachers(self, index: int, stage: StageConfig, domains: list[str]) -> dict[str, TeacherRef]:
        key: KeyPath = ("stages", index, "teachers")
        if stage.kind != "mopd":
            if stage.teachers:
                self.problems.add(key, f"only mopd stages have teachers (this stage is {stage.kind})")
            return {}
        teachers: dict[str, TeacherRef] = {}
        missing = [d for d in domains if d not in stage.teachers]
        if missing:
            self.problems.add(key, f"no teacher for domain(s) {', '.join(missing)}: every mopd domain needs one")
        for domain, value in stage.teachers.items():
            teacher_key = (*key, domain)
            if domain not in domains:
                self.problems.add(teacher_key, f"domain {domain!r} is not trained by this stage")
                continue
            ref = self._teacher(index, value, teacher_key)
            if ref is not None:
                teachers[domain] = ref
        return teachers

    def _teacher(self, index: int, value: str, key: KeyPath) -> TeacherRef | None:
        if value.startswith(BEST_PREFIX):
            domain = value[len(BEST_PREFIX):]
            if domain not in self.config.eval.sets:
                sets = sorted(self.config.eval.sets)
                self.problems.add(
                    key,
                    f"{value!r} cannot exist: the registry only ranks domains with an eval set "
                    f"(eval.sets: {', '.join(sets) or 'none'}){_did_you_mean(domain, sets)}",
                )
                return None
            if index == 0:
                self.problems.add(key, f"{value!r} cannot exist yet: no stage runs before this one")
                return None
            return TeacherRef("best", domain)
        if value in self.stage_index:
            self._stage_ref(index, value, key, "learn from")
            return TeacherRef("stage", value)
        path = self._path(value)
        if not path.exists():
            self.problems.add(
                key,
                f"{value!r} is not 'best:<domain>', a stage name or an existing checkpoint ({path})"
                f"{_did_you_mean(value, list(self.stage_index))}",
            )
            return None
        return TeacherRef("path", str(path))

    def _check_references(self) -> None:
        """Report reference cycles as cycles, other forward references as ordering errors."""
        forward = self._forward_refs
        if not forward:
            return
        names = [s.name for s in self.config.stages]
        # every stage->stage reference (backward ones included) can take part in a cycle
        edges: dict[int, set[int]] = {}
        for index, stage in enumerate(self.config.stages):
            targets = [stage.init, *stage.teachers.values()] if stage.kind == "mopd" else [stage.init]
            if stage.init == INIT_PREVIOUS and index > 0:
                targets.append(names[index - 1])
            edges[index] = {self.stage_index[t] for t in targets if t in self.stage_index}
        for index, target, key, what in forward:
            cycle = _find_path(edges, target, index)
            if index == target:
                self.problems.add(key, f"stage {names[index]!r} cannot {what} itself (a cycle)")
            elif cycle is not None:
                chain = " -> ".join(names[i] for i in [index, *cycle])
                self.problems.add(key, f"stages form a cycle: {chain}")
            else:
                self.problems.add(
                    key,
                    f"stage {names[target]!r} (stages[{target}]) runs after {names[index]!r} "
                    f"(stages[{index}]), so its checkpoint cannot exist yet; a stage can only {what} "
                    "a stage listed before it",
                )


def _mark_branches(stages: list[PlannedStage]) -> list[PlannedStage]:
    """A side branch is a stage whose checkpoint does not lead to the last stage's."""
    by_name = {s.name: s for s in stages}
    main: set[str] = set()
    current = stages[-1] if stages else None
    while current is not None and current.name not in main:
        main.add(current.name)
        parent = current.init.stage if current.init.kind == "stage" else None
        current = by_name.get(parent) if parent else None
    return [dataclasses.replace(s, branch=s.name not in main) for s in stages]


def _find_path(edges: Mapping[int, set[int]], start: int, goal: int) -> list[int] | None:
    """A path start -> ... -> goal along ``edges`` (depth first), or None."""
    stack: list[tuple[int, list[int]]] = [(start, [start])]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        if node in seen:
            continue
        seen.add(node)
        stack.extend((nxt, [*path, nxt]) for nxt in edges.get(node, ()))
    return None


def _resolver(
    config: CascadeConfig,
    loaded: LoadedConfig | None,
    run_dir: str | Path,
    base_dir: str | Path | None,
    registry: PluginRegistry | None,
) -> tuple[_Resolver, PluginRegistry]:
    base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    if registry is None:
        try:
            registry = get_registry(config.plugins)
        except PluginError as exc:
            problems = _Problems(loaded)
            key: tuple[str | int, ...] = ("plugins",)
            if isinstance(exc, UnknownPluginNameError) and config.plugins and exc.unknown[0] in config.plugins:
                key = ("plugins", config.plugins.index(exc.unknown[0]))  # the line of the misspelt name
            problems.add(key, str(exc))
            problems.raise_if_any()
    assert registry is not None
    return _Resolver(config, loaded, Path(run_dir).resolve(), base, registry), registry


def resolve_plan(
    config: CascadeConfig,
    loaded: LoadedConfig | None = None,
    *,
    run_dir: str | Path,
    base_dir: str | Path | None = None,
    registry: PluginRegistry | None = None,
) -> Plan:
    """Resolve and statically check ``config``; raises :class:`ConfigError` with every problem.

    ``registry`` defaults to the plugins allowed by ``config.plugins``; relative paths resolve
    against ``base_dir`` (default: the current directory).
    """
    resolver, _ = _resolver(config, loaded, run_dir, base_dir, registry)
    return resolver.resolve()


def check_plan(
    config: CascadeConfig,
    loaded: LoadedConfig | None = None,
    *,
    run_dir: str | Path,
    base_dir: str | Path | None = None,
    registry: PluginRegistry | None = None,
    notes: list[str] | None = None,
) -> Plan:
    """:func:`resolve_plan` and :func:`check_with_backend` in one pass: raises one
    :class:`ConfigError` listing every problem of both kinds, each once, in file order.

    With ``notes``, the backend's remarks on each stage (``plan_notes(spec)``, for backends that
    have one) are appended to it as ``"<stage>: <note>"``.

    Nothing is written to the run directory: generated datasets go to a temporary folder for the
    backend's checks. A stage with a problem of its own (or of a dataset or reward it uses) is
    still checked by the backend, but only the backend's problems with a config key
    (``hparams.*``, ``model.*``, ``logger.*``) are kept for it; the others would repeat, in the
    backend's words, what the static check already said.
    """
    resolver, registry = _resolver(config, loaded, run_dir, base_dir, registry)
    plan = resolver.resolve(raise_problems=False)
    problems = list(resolver.problems.items)
    partial = resolver.stages_with_problems()
    if ("backend", "name") not in resolver.problems.keys:
        with tempfile.TemporaryDirectory(prefix="cascade-plan-") as tmp:
            scratch = plan.with_data_dir(Path(tmp))
            from cascade_plugins.cascade.generated_data import write_generated_dataset

            failed = _Problems(loaded)
            for name, source in scratch.generated().items():
                try:
                    write_generated_dataset(source, registry)
                except Exception as exc:
                    failed.add(("data", name), f"generator {source.generator!r} failed: {exc}")
                    partial |= {s.name for s in plan.stages if any(d.name == name for d in s.data.values())}
            problems += failed.items
            backend, build_problems = _build_backend(scratch, registry)
            problems += build_problems
            if backend is not None:
                problems += _backend_problems(scratch, backend, partial)
                plan_notes = getattr(backend, "plan_notes", None)
                if notes is not None and plan_notes is not None:
                    for stage in scratch.stages:
                        notes.extend(f"{stage.name}: {note}" for note in plan_notes(scratch.placeholder_spec(stage)))
    if problems:
        raise ConfigError(_in_file_order(problems))
    return plan


def _in_file_order(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file or "", p.line if p.line is not None else 1 << 30))


# ------------------------------------------------------------------------------------------
# Backend checks
# ------------------------------------------------------------------------------------------

_BACKEND_KEY = re.compile(r"^(hparams|model|logger)((?:\.[A-Za-z0-9_]+)*)\s*:\s*(.+)$", re.DOTALL)
_STAGE_PREFIX = re.compile(r"^stage '[^']*':\s*")


def _backend_key(plan: Plan, stage: PlannedStage, message: str) -> tuple[KeyPath | None, str]:
    """The config key a backend's message names (``hparams.lr: ...`` -> the line that set it),
    or ``None`` when it names none; and the message without that key."""
    match = _BACKEND_KEY.match(message.strip())
    if match is None:
        return None, message.strip()
    section, rest, text = match.groups()
    parts = tuple(p for p in rest.split(".") if p)
    if section != "hparams":
        return (section, *parts), text
    candidates: list[KeyPath] = [
        ("stages", stage.index, "hparams", *parts),
        ("hparams", stage.kind, *parts),
        ("hparams", "common", *parts),
    ]
    sources = plan.loaded.sources if plan.loaded is not None else {}
    return next((c for c in candidates if c in sources), candidates[0]), text


def _split_messages(message: str) -> list[str]:
    """Backends may prefix ``stage '<name>': `` (the stage is named anyway) and join several
    ``key: problem`` messages with ``"; "``; report each on its own."""
    message = _STAGE_PREFIX.sub("", message.strip())
    pieces = [p.strip() for p in message.split("; ")]
    if len(pieces) > 1 and all(_BACKEND_KEY.match(p) for p in pieces):
        return pieces
    return [message]


def _which_stages(plan: Plan, names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"stage {names[0]!r}"
    if len(names) == len(plan.stages):
        return f"all {len(names)} stages"
    return "stages " + ", ".join(repr(n) for n in names)


def _build_backend(plan: Plan, registry: PluginRegistry) -> tuple[Any, list[ConfigProblem]]:
    backend_cfg = plan.config.backend
    try:
        return registry.make_backend(backend_cfg.name, **backend_cfg.options), []
    except Exception as exc:
        problems = _Problems(plan.loaded)
        problems.add(("backend",), f"backend {backend_cfg.name!r} could not be built: {exc}")
        return None, problems.items


def _backend_problems(plan: Plan, backend: Any, partial: Set[str] = frozenset()) -> list[ConfigProblem]:
    """Every stage through ``Backend.check``. The same message from several stages is one problem
    naming them: at the key it names, else at the stage (one stage) or at ``backend`` (several).
    Messages without a key from the ``partial`` stages are left out."""
    problems = _Problems(plan.loaded)
    backend_cfg = plan.config.backend
    #: (key or None, text) -> stages, in the order first seen
    found: dict[tuple[KeyPath | None, str], list[PlannedStage]] = {}
    for stage in plan.stages:
        try:
            messages = list(backend.check(plan.placeholder_spec(stage)))
        except Exception as exc:  # a crashing check is still a refusal, reported like the others
            messages = [f"check failed: {type(exc).__name__}: {exc}"]
        for message in messages:
            for piece in _split_messages(message):
                key, text = _backend_key(plan, stage, piece)
                if key is None and stage.name in partial:
                    continue
                stages = found.setdefault((key, text), [])
                if stage not in stages:
                    stages.append(stage)
    for (key, text), stages in found.items():
        where = key
        if where is None:
            where = ("stages", stages[0].index) if len(stages) == 1 else ("backend",)
        who = _which_stages(plan, [s.name for s in stages])
        problems.add(where, f"backend {backend_cfg.name!r} ({who}): {text}")
    return problems.items


def check_with_backend(plan: Plan, registry: PluginRegistry | None = None) -> Any:
    """Build the backend and run ``Backend.check`` on every stage; returns the backend.

    Generated datasets must already exist where ``plan`` points (``check_plan`` writes them to a
    temporary folder first). Raises :class:`ConfigError` with every problem of every stage.
    """
    registry = registry or get_registry(plan.config.plugins)
    backend, problems = _build_backend(plan, registry)
    if backend is not None:
        problems = _backend_problems(plan, backend)
    if problems:
        raise ConfigError(problems)
    return backend
