"""Where in the cascade YAML each problem is, and how it reads.

The resolver finds problems at YAML key paths already (:class:`ProblemList`). A backend finds them
in its view of a stage, the :class:`~cascade_plugins.interfaces.StageSpec`: a
:class:`~cascade_plugins.interfaces.StageProblem` keyed ``("hparams", "lr")`` is about the value the
stage's ``hparams.lr`` resolved to, which the YAML may have set in the stage, in
``hparams.<kind>`` or in ``hparams.common``. :func:`yaml_key` finds the key that set it, so the
problem is shown at that line; :func:`backend_findings` turns every stage's problems into located
:class:`~cascade_plugins.config.ConfigProblem` items (the same problem from several stages, from
one line, is one item naming the stages) and notes into :class:`PlanNote` items.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Any

from cascade_plugins.cascade.plan import KeyPath, Plan, PlannedStage, PlanNote
from cascade_plugins.config import ConfigError, ConfigProblem, LoadedConfig, format_key_path
from cascade_plugins.interfaces import StageProblem

__all__ = ["ProblemList", "backend_findings", "in_file_order", "which_stages", "yaml_key"]

#: backend problems about these StageSpec keys are kept for a stage that has static problems of
#: its own (the others would repeat, in the backend's words, what the static check said)
CONFIG_KEYS = frozenset({"hparams", "model", "logger", "backend"})


class ProblemList:
    """Problems at YAML key paths, with file and line when the config was loaded from a file."""

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


def in_file_order(problems: Iterable[ConfigProblem]) -> list[ConfigProblem]:
    unique = list(dict.fromkeys(problems))
    return sorted(unique, key=lambda p: (p.file or "", p.line if p.line is not None else 1 << 30))


def which_stages(plan: Plan, names: Sequence[str]) -> str:
    if len(names) == 1:
        return f"stage {names[0]!r}"
    if len(names) == len(plan.stages):
        return f"all {len(names)} stages"
    return "stages " + ", ".join(repr(n) for n in names)


def _candidates(stage: PlannedStage, key: KeyPath) -> list[KeyPath]:
    """YAML keys that may have set ``key`` of ``stage``'s spec, most specific first."""
    own: KeyPath = ("stages", stage.index)
    root, rest = key[0], key[1:]
    if root == "hparams":
        return [(*own, "hparams", *rest), ("hparams", stage.kind, *rest), ("hparams", "common", *rest)]
    if root in ("model", "logger"):
        return [(root, *rest)]
    if root == "backend":
        return [("backend", "options", *rest), ("backend",)]
    if root == "rewards" and rest:
        # the stage's own reward, else the domain's (``domains.<d>.reward``, or ``domains.<d>: name``)
        domain = rest[0]
        return [(*own, "rewards", *rest), ("domains", domain, "reward", *rest[1:]), ("domains", domain),
                (*own, "data", domain)]
    if root == "eval" and rest:
        domain, sub = rest[0], rest[1:]
        if sub[:1] == ("reward",):
            return [("eval", "sets", domain, *sub), ("domains", domain, *sub), ("domains", domain),
                    ("eval", "sets", domain)]
        return [("eval", "sets", domain, *sub)]
    if root == "loss":
        return [(*own, "loss", *rest), (*own, "kind")]  # a mopd stage without one uses the default loss
    if root == "seed":
        return [("seed",)]
    if root == "output_dir":
        return [("run_dir",)]
    return [(*own, *key)]


def yaml_key(plan: Plan, stage: PlannedStage, key: KeyPath) -> KeyPath | None:
    """The YAML key path a backend problem keyed ``key`` (a StageSpec key path) is about: the
    candidate the YAML set exactly, else the one whose set part reaches deepest; ``None`` for a
    problem about the stage as a whole (``key == ()``)."""
    if not key:
        return None
    candidates = _candidates(stage, key)
    sources: Mapping[KeyPath, Any] = plan.loaded.sources if plan.loaded is not None else {}
    for candidate in candidates:
        if candidate in sources:
            return candidate

    def depth(candidate: KeyPath) -> int:
        return max((n for n in range(len(candidate) + 1) if candidate[:n] in sources), default=0)

    return max(candidates, key=depth)  # ties go to the earlier, more specific one


def _as_problem(stage: PlannedStage, item: Any) -> StageProblem:
    """A backend's item; a plain string (a backend written before problems had structure) is a
    problem of the stage as a whole, its text taken as is."""
    if isinstance(item, StageProblem):
        return item
    if isinstance(item, str):
        return StageProblem(stage.name, (), item)
    return StageProblem(stage.name, (), f"check returned {type(item).__name__} {item!r}, not a StageProblem")


def backend_findings(
    plan: Plan, backend: Any, partial: Set[str] = frozenset()
) -> tuple[list[ConfigProblem], list[PlanNote]]:
    """Every stage through ``Backend.check``, located in the YAML. The same finding from several
    stages is one item naming them: at the key it names, else at the stage (one stage) or at
    ``backend`` (several). For the ``partial`` stages (they have static problems), only problems
    about :data:`CONFIG_KEYS` are kept."""
    backend_name = plan.config.backend.name
    #: (severity, yaml key or None, text) -> stages, in the order first seen
    found: dict[tuple[str, KeyPath | None, str], list[PlannedStage]] = {}
    for stage in plan.stages:
        try:
            items = list(backend.check(plan.placeholder_spec(stage)))
        except Exception as exc:  # a crashing check is still a refusal, reported like the others
            items = [StageProblem(stage.name, (), f"check failed: {type(exc).__name__}: {exc}")]
        for item in items:
            problem = _as_problem(stage, item)
            if problem.is_error and stage.name in partial and (not problem.key or problem.key[0] not in CONFIG_KEYS):
                continue
            stages = found.setdefault((problem.severity, yaml_key(plan, stage, problem.key), problem.text()), [])
            if stage not in stages:
                stages.append(stage)
    problems = ProblemList(plan.loaded)
    notes: list[PlanNote] = []
    for (severity, key, text), stages in found.items():
        where = key
        if where is None:
            where = ("stages", stages[0].index) if len(stages) == 1 else ("backend",)
        if severity == "error":
            problems.add(where, f"backend {backend_name!r} ({which_stages(plan, [s.name for s in stages])}): {text}")
        else:
            file, line = plan.loaded.locate(where) if plan.loaded is not None else (None, None)
            notes.append(PlanNote(tuple(s.name for s in stages), format_key_path(where), file, line, text))
    return problems.items, notes
