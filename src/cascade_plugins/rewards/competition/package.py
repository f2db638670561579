"""Load and validate a Kattis / ICPC problem package (plus the optional ``grading.yaml``).

Layout read here::

    problem.yaml                 name, type, limits, validation, validator_flags
    .timelimit                   optional: time limit in seconds (DOMjudge/BAPCtools convention)
    data/sample/*.in|.ans        test cases; any directory under data/ is a test group
    data/secret/**/testdata.yaml group settings, inherited by sub-groups
    output_validators/<prog>/    custom validator or interactor (exit 42 = AC, 43 = WA)
    grading.yaml                 optional: checker choice and IOI subtasks (see docs/competition.md)

Everything is checked up front: a package that loads is judged whole or not at all.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cascade_plugins.rewards.competition.checkers import STANDARD_CHECKERS, parse_validator_flags
from cascade_plugins.rewards.competition.errors import ProblemPackageError
from cascade_plugins.rewards.competition.scoretypes import SCORE_TYPES

ProblemKind = Literal["pass-fail", "scoring"]
CheckerKind = Literal["default", "standard", "kattis", "testlib"]

_PROBLEM_KEYS = {
    "problem_format_version", "type", "name", "uuid", "author", "source", "source_url", "license",
    "rights_owner", "limits", "validation", "validator_flags", "keywords", "grading", "credits",
    "version", "languages", "constants", "embargo_until",
}  # fmt: skip
_LIMIT_KEYS = {
    "time_limit", "time_multiplier", "time_multipliers", "time_safety_margin", "time_resolution",
    "memory", "output", "code", "compilation_time", "compilation_memory", "validation_time",
    "validation_memory", "validation_output", "validation_passes",
}  # fmt: skip
_GRADING_KEYS_IN_PROBLEM = {"objective", "show_test_data_groups", "on_reject", "accept_score", "reject_score", "range"}
_TESTDATA_KEYS = {
    "on_reject", "grading", "grader_flags", "input_validator_flags", "output_validator_flags",
    "accept_score", "reject_score", "range",
}  # fmt: skip
_GRADER_FLAGS = {"worst_error", "no_errors", "first_error", "always_accept", "sum", "avg", "min", "max",
                 "ignore_sample", "accept_if_any_accepted"}  # fmt: skip
_GRADING_YAML_KEYS = {"checker", "score_type", "subtasks", "points_per_test"}
_SUBTASK_KEYS = {"name", "points", "tests", "threshold"}
_LANGUAGES = {".py": "python", ".cpp": "cpp", ".cc": "cpp", ".cxx": "cpp", ".c++": "cpp"}

DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_OUTPUT_MB = 8
DEFAULT_COMPILATION_TIME_S = 60.0
DEFAULT_VALIDATION_TIME_S = 60.0
DEFAULT_VALIDATION_MEMORY_MB = 2048


@dataclass(frozen=True)
class ProgramSource:
    """A checker, validator or interactor program shipped in the package (one source file)."""

    path: Path
    language: str
    source: str
    #: other files of the program's directory (headers such as ``testlib.h``), by name
    extra_files: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class ProblemLimits:
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    output_mb: int = DEFAULT_OUTPUT_MB
    compilation_time_s: float = DEFAULT_COMPILATION_TIME_S
    validation_time_s: float = DEFAULT_VALIDATION_TIME_S
    validation_memory_mb: int = DEFAULT_VALIDATION_MEMORY_MB


@dataclass(frozen=True)
class TestCase:
    """One ``.in``/``.ans`` pair; ``name`` is its path under ``data/`` without extension."""

    __test__ = False  # not a pytest test class

    name: str
    input_path: Path
    answer_path: Path
    group: str
    output_validator_flags: tuple[str, ...] = ()


@dataclass(frozen=True)
class TestGroup:
    """A directory under ``data/`` with its merged ``testdata.yaml`` settings."""

    __test__ = False  # not a pytest test class

    name: str
    path: Path
    on_reject: Literal["break", "continue"] = "break"
    grader_flags: tuple[str, ...] = ()
    accept_score: float = 1.0
    reject_score: float = 0.0
    score_range: tuple[float, float] | None = None
    items: tuple[TestCase | TestGroup, ...] = ()

    def tests(self) -> Iterator[TestCase]:
        for item in self.items:
            if isinstance(item, TestCase):
                yield item
            else:
                yield from item.tests()

    def groups(self) -> Iterator[TestGroup]:
        """This group and every group below it, depth first."""
        yield self
        for item in self.items:
            if isinstance(item, TestGroup):
                yield from item.groups()


@dataclass(frozen=True)
class CheckerSpec:
    """How outputs are checked: ``default`` (Kattis default validator with ``flags``),
    ``standard`` (a testlib standard checker by ``name``), or a program speaking the ``kattis``
    (exit 42/43, feedback directory) or ``testlib`` (exit 0/1/2/3/7) protocol."""

    kind: CheckerKind = "default"
    name: str | None = None
    flags: tuple[str, ...] = ()
    program: ProgramSource | None = None


@dataclass(frozen=True)
class Subtask:
    name: str
    points: float
    tests: tuple[str, ...]
    threshold: float | None = None


@dataclass(frozen=True)
class SubtaskScoring:
    """IOI-style scoring with a CMS score type (``Sum`` uses ``points_per_test`` instead)."""

    score_type: str
    subtasks: tuple[Subtask, ...] = ()
    points_per_test: float = 1.0


@dataclass(frozen=True)
class ProblemPackage:
    root: Path
    name: str
    kind: ProblemKind
    limits: ProblemLimits
    checker: CheckerSpec
    interactive: bool
    custom_score: bool
    data: TestGroup
    subtasks: SubtaskScoring | None
    #: changes whenever a file of the package changes (cache key for compiled programs)
    fingerprint: str

    def tests(self) -> list[TestCase]:
        return list(self.data.tests())


# -- helpers ---------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemPackageError(path, f"not UTF-8 text ({exc})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ProblemPackageError(path, f"{where}invalid YAML ({getattr(exc, 'problem', exc)})") from None


def _mapping(value: Any, path: Path, key: str | None = None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProblemPackageError(path, f"expected a mapping, got {type(value).__name__}", key=key)
    return value


def _check_keys(data: Mapping[str, Any], allowed: set[str], path: Path, prefix: str = "") -> None:
    for key in data:
        if key not in allowed:
            raise ProblemPackageError(
                path, f"unknown key (allowed: {', '.join(sorted(allowed))})", key=f"{prefix}{key}"
            )


def _number(value: Any, path: Path, key: str, *, positive: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProblemPackageError(path, f"expected a number, got {value!r}", key=key)
    if positive and not value > 0:
        raise ProblemPackageError(path, f"must be positive, got {value!r}", key=key)
    return float(value)


def _flags(value: Any, path: Path, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(value.split())
    if isinstance(value, list) and all(isinstance(v, str | int | float) for v in value):
        return tuple(str(v) for v in value)
    raise ProblemPackageError(path, f"expected a string of flags, got {value!r}", key=key)


def fingerprint(root: Path) -> str:
    """A hash of every file's relative path, size and modification time under ``root``."""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            full = os.path.join(dirpath, filename)
            stat = os.stat(full)
            digest.update(f"{os.path.relpath(full, root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# -- problem.yaml ----------------------------------------------------------------------------------


def _load_problem_yaml(root: Path) -> dict[str, Any]:
    path = root / "problem.yaml"
    if not path.is_file():
        raise ProblemPackageError(path, "missing (every problem package needs a problem.yaml)")
    data = _mapping(_read_yaml(path), path)
    _check_keys(data, _PROBLEM_KEYS, path)
    return data


def _problem_kind(data: Mapping[str, Any], path: Path) -> tuple[ProblemKind, bool]:
    """(pass-fail | scoring, interactive-from-type) from ``type`` (a string or, in 2023-07, a list)."""
    raw = data.get("type", "pass-fail")
    types = [raw] if isinstance(raw, str) else raw
    if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
        raise ProblemPackageError(path, f"expected a string or a list of strings, got {raw!r}", key="type")
    unknown = set(types) - {"pass-fail", "scoring", "interactive"}
    if unknown:
        raise ProblemPackageError(
            path, f"unsupported problem type {sorted(unknown)} (supported: pass-fail, scoring, interactive)", key="type"
        )
    return ("scoring" if "scoring" in types else "pass-fail"), "interactive" in types


def _validation(data: Mapping[str, Any], path: Path) -> tuple[bool, bool, bool]:
    """(custom, interactive, score) from the legacy ``validation`` string."""
    raw = data.get("validation", "default")
    if not isinstance(raw, str):
        raise ProblemPackageError(path, f"expected a string, got {raw!r}", key="validation")
    words = raw.split()
    if words == ["default"]:
        return False, False, False
    if not words or words[0] != "custom" or not set(words[1:]) <= {"interactive", "score"}:
        raise ProblemPackageError(
            path, f"expected 'default' or 'custom [interactive] [score]', got {raw!r}", key="validation"
        )
    return True, "interactive" in words, "score" in words


def _limits(data: Mapping[str, Any], root: Path) -> ProblemLimits:
    path = root / "problem.yaml"
    limits = _mapping(data.get("limits"), path, "limits")
    _check_keys(limits, _LIMIT_KEYS, path, "limits.")
    time_limit = DEFAULT_TIME_LIMIT_S
    timelimit_file = root / ".timelimit"
    if "time_limit" in limits:
        time_limit = _number(limits["time_limit"], path, "limits.time_limit")
    elif timelimit_file.is_file():
        text = timelimit_file.read_text().strip()
        try:
            time_limit = float(text)
        except ValueError:
            raise ProblemPackageError(timelimit_file, f"expected a number of seconds, got {text!r}") from None
        if not time_limit > 0:
            raise ProblemPackageError(timelimit_file, f"must be positive, got {text!r}")

    def get(key: str, default: float) -> float:
        return _number(limits[key], path, f"limits.{key}") if key in limits else default

    return ProblemLimits(
        time_limit_s=time_limit,
        memory_mb=int(get("memory", DEFAULT_MEMORY_MB)),
        output_mb=int(get("output", DEFAULT_OUTPUT_MB)),
        compilation_time_s=get("compilation_time", DEFAULT_COMPILATION_TIME_S),
        validation_time_s=get("validation_time", DEFAULT_VALIDATION_TIME_S),
        validation_memory_mb=int(get("validation_memory", DEFAULT_VALIDATION_MEMORY_MB)),
    )


# -- programs --------------------------------------------------------------------------------------


def load_program(path: Path) -> ProgramSource:
    """A single-source program: a ``.py``/``.cpp`` file, or a directory holding exactly one of them
    (other files of the directory, such as headers, travel along)."""
    if path.is_file():
        sources, others = [path], []
    else:
        files = sorted(p for p in path.rglob("*") if p.is_file())
        sources = [p for p in files if p.suffix.lower() in _LANGUAGES]
        others = [p for p in files if p.suffix.lower() not in _LANGUAGES]
    if len(sources) != 1:
        found = ", ".join(p.name for p in sources) or "none"
        raise ProblemPackageError(
            path, f"expected exactly one .py or .cpp source (found: {found}); multi-file programs are not supported"
        )
    source = sources[0]
    language = _LANGUAGES.get(source.suffix.lower())
    if language is None:
        raise ProblemPackageError(source, f"unsupported language {source.suffix!r} (supported: .py, .cpp)")
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemPackageError(source, f"not UTF-8 text ({exc})") from None
    extra = {str(p.relative_to(path)): p.read_bytes() for p in others}
    return ProgramSource(path=source, language=language, source=text, extra_files=extra)


def _validator_program(root: Path) -> ProgramSource:
    for folder_name in ("output_validators", "output_validator"):
        folder = root / folder_name
        if folder.is_dir():
            entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
            if len(entries) != 1:
                raise ProblemPackageError(folder, f"expected exactly one validator program, found {len(entries)}")
            return load_program(entries[0])
    raise ProblemPackageError(
        root / "output_validators", "missing: problem.yaml asks for custom validation but there is no validator"
    )


# -- data/ -----------------------------------------------------------------------------------------


_ROOT_SETTINGS: dict[str, Any] = {
    "on_reject": "break",
    "grader_flags": (),
    "accept_score": 1.0,
    "reject_score": 0.0,
    "score_range": None,
    "output_validator_flags": (),
}


def _group_settings(directory: Path, inherited: Mapping[str, Any]) -> dict[str, Any]:
    """This group's settings: its ``testdata.yaml`` over what it inherits from its parent."""
    settings = dict(inherited)
    path = directory / "testdata.yaml"
    if not path.is_file():
        return settings
    data = _mapping(_read_yaml(path), path)
    _check_keys(data, _TESTDATA_KEYS, path)
    if "on_reject" in data:
        if data["on_reject"] not in ("break", "continue"):
            raise ProblemPackageError(
                path, f"expected 'break' or 'continue', got {data['on_reject']!r}", key="on_reject"
            )
        settings["on_reject"] = data["on_reject"]
    if data.get("grading", "default") != "default":
        raise ProblemPackageError(path, "custom graders are not supported (use grader_flags)", key="grading")
    if "grader_flags" in data:
        flags = _flags(data["grader_flags"], path, "grader_flags")
        unknown = set(flags) - _GRADER_FLAGS
        if unknown:
            raise ProblemPackageError(
                path,
                f"unknown grader flags {sorted(unknown)} (known: {', '.join(sorted(_GRADER_FLAGS))})",
                key="grader_flags",
            )
        settings["grader_flags"] = flags
    for key in ("accept_score", "reject_score"):
        if key in data:
            settings[key] = _number(data[key], path, key, positive=False)
    if "range" in data:
        parts = str(data["range"]).split()
        try:
            low, high = (float(p) for p in parts)
        except ValueError:
            raise ProblemPackageError(path, f"expected 'MIN MAX', got {data['range']!r}", key="range") from None
        settings["score_range"] = (low, high)
    if "output_validator_flags" in data:
        settings["output_validator_flags"] = _flags(data["output_validator_flags"], path, "output_validator_flags")
    return settings


def _load_group(
    directory: Path, data_root: Path, inherited: Mapping[str, Any], base_flags: tuple[str, ...]
) -> TestGroup:
    settings = _group_settings(directory, inherited)
    name = directory.relative_to(data_root).as_posix() if directory != data_root else ""
    items: list[TestCase | TestGroup] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_dir():
            items.append(_load_group(entry, data_root, settings, base_flags))
        elif entry.suffix == ".ans":
            if not entry.with_suffix(".in").is_file():
                raise ProblemPackageError(entry, "has no matching .in file")
        elif entry.suffix == ".in":
            answer = entry.with_suffix(".ans")
            if not answer.is_file():
                raise ProblemPackageError(entry, "has no matching .ans file")
            items.append(
                TestCase(
                    name=entry.with_suffix("").relative_to(data_root).as_posix(),
                    input_path=entry,
                    answer_path=answer,
                    group=name,
                    output_validator_flags=base_flags + settings["output_validator_flags"],
                )
            )
    return TestGroup(
        name=name,
        path=directory,
        on_reject=settings["on_reject"],
        grader_flags=settings["grader_flags"],
        accept_score=settings["accept_score"],
        reject_score=settings["reject_score"],
        score_range=settings["score_range"],
        items=tuple(items),
    )


# -- grading.yaml ----------------------------------------------------------------------------------


def _select_tests(selector: Any, names: list[str], cursor: int, path: Path, key: str) -> tuple[tuple[str, ...], int]:
    """CMS test selection: an int takes the next N tests in order, a string is a regular
    expression matched against whole test names, a list names the tests."""
    if isinstance(selector, int) and not isinstance(selector, bool):
        if selector <= 0 or cursor + selector > len(names):
            raise ProblemPackageError(
                path, f"asks for {selector} tests after test {cursor}, but the package has {len(names)}", key=key
            )
        return tuple(names[cursor : cursor + selector]), cursor + selector
    if isinstance(selector, str):
        try:
            pattern = re.compile(selector)
        except re.error as exc:
            raise ProblemPackageError(path, f"invalid regular expression {selector!r} ({exc})", key=key) from None
        chosen = tuple(n for n in names if pattern.fullmatch(n))
    elif isinstance(selector, list) and all(isinstance(s, str) for s in selector):
        missing = [s for s in selector if s not in names]
        if missing:
            raise ProblemPackageError(path, f"no such tests: {missing}", key=key)
        chosen = tuple(selector)
    else:
        raise ProblemPackageError(
            path, f"expected a test count, a regex or a list of test names, got {selector!r}", key=key
        )
    if not chosen:
        raise ProblemPackageError(path, f"{selector!r} matches no test (tests are named like {names[0]!r})", key=key)
    return chosen, cursor


def _load_grading_yaml(
    root: Path, tests: list[TestCase], custom: bool, interactive: bool, score: bool, flags: tuple[str, ...]
) -> tuple[CheckerSpec, SubtaskScoring | None]:
    path = root / "grading.yaml"
    data = _mapping(_read_yaml(path), path) if path.is_file() else {}
    _check_keys(data, _GRADING_YAML_KEYS, path)
    checker_name = data.get("checker", "custom" if custom else "default")
    if not isinstance(checker_name, str):
        raise ProblemPackageError(path, f"expected a checker name, got {checker_name!r}", key="checker")
    if custom and checker_name not in ("custom", "testlib"):
        raise ProblemPackageError(
            path,
            f"problem.yaml asks for custom validation, so the checker must be 'custom' or 'testlib', "
            f"not {checker_name!r}",
            key="checker",
        )
    if interactive and checker_name != "custom":
        raise ProblemPackageError(path, "interactors speak the Kattis protocol: use checker 'custom'", key="checker")
    if checker_name == "default":
        try:
            parse_validator_flags(flags)
        except ValueError as exc:
            raise ProblemPackageError(root / "problem.yaml", str(exc), key="validator_flags") from None
        checker = CheckerSpec(kind="default", flags=flags)
    elif checker_name in STANDARD_CHECKERS:
        checker = CheckerSpec(kind="standard", name=checker_name)
    elif checker_name in ("custom", "testlib"):
        kind: CheckerKind = "kattis" if checker_name == "custom" else "testlib"
        checker = CheckerSpec(kind=kind, flags=flags, program=_validator_program(root))
    else:
        known = ", ".join(["default", "custom", "testlib", *STANDARD_CHECKERS])
        raise ProblemPackageError(path, f"unknown checker {checker_name!r} (known: {known})", key="checker")
    if score and checker.kind != "kattis":
        raise ProblemPackageError(
            root / "problem.yaml", "'custom score' needs a Kattis-protocol validator", key="validation"
        )

    if "score_type" not in data:
        for key in ("subtasks", "points_per_test"):
            if key in data:
                raise ProblemPackageError(path, "needs 'score_type' next to it", key=key)
        return checker, None
    score_type = data["score_type"]
    if score_type not in SCORE_TYPES:
        raise ProblemPackageError(
            path, f"unknown score type {score_type!r} (known: {', '.join(SCORE_TYPES)})", key="score_type"
        )
    names = [t.name for t in tests]
    if score_type == "Sum":
        if "subtasks" in data:
            raise ProblemPackageError(
                path, "Sum scores every test alike: use points_per_test, not subtasks", key="subtasks"
            )
        per_test = _number(data.get("points_per_test", 1), path, "points_per_test")
        return checker, SubtaskScoring(score_type="Sum", points_per_test=per_test)
    raw_subtasks = data.get("subtasks")
    if not isinstance(raw_subtasks, list) or not raw_subtasks:
        raise ProblemPackageError(path, f"{score_type} needs a non-empty list of subtasks", key="subtasks")
    subtasks: list[Subtask] = []
    cursor = 0
    for index, raw in enumerate(raw_subtasks):
        key = f"subtasks[{index}]"
        raw = _mapping(raw, path, key)
        _check_keys(raw, _SUBTASK_KEYS, path, f"{key}.")
        for required in ("points", "tests"):
            if required not in raw:
                raise ProblemPackageError(path, "missing", key=f"{key}.{required}")
        points = _number(raw["points"], path, f"{key}.points", positive=False)
        if points < 0:
            raise ProblemPackageError(path, f"must not be negative, got {raw['points']!r}", key=f"{key}.points")
        chosen, cursor = _select_tests(raw["tests"], names, cursor, path, f"{key}.tests")
        threshold = None
        if score_type == "GroupThreshold":
            if "threshold" not in raw:
                raise ProblemPackageError(path, "GroupThreshold needs a threshold per subtask", key=f"{key}.threshold")
            threshold = _number(raw["threshold"], path, f"{key}.threshold")
        elif "threshold" in raw:
            raise ProblemPackageError(
                path, f"only GroupThreshold takes a threshold, not {score_type}", key=f"{key}.threshold"
            )
        name = str(raw.get("name", f"subtask{index + 1}"))
        if any(s.name == name for s in subtasks):
            raise ProblemPackageError(path, f"duplicate subtask name {name!r}", key=f"{key}.name")
        subtasks.append(Subtask(name=name, points=points, tests=chosen, threshold=threshold))
    return checker, SubtaskScoring(score_type=score_type, subtasks=tuple(subtasks))


# -- entry point -----------------------------------------------------------------------------------


def load_problem(path: str | os.PathLike[str]) -> ProblemPackage:
    """Load and validate the package at ``path``; raise :class:`ProblemPackageError` naming the
    file (and key) at fault."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ProblemPackageError(root, "not a directory (a problem package is a directory with problem.yaml)")
    data = _load_problem_yaml(root)
    yaml_path = root / "problem.yaml"
    kind, interactive_type = _problem_kind(data, yaml_path)
    custom, interactive, custom_score = _validation(data, yaml_path)
    if interactive_type and not interactive:
        if "validation" in data:
            raise ProblemPackageError(
                yaml_path, "type says interactive but validation is not 'custom interactive'", key="validation"
            )
        custom = interactive = True
    grading = _mapping(data.get("grading"), yaml_path, "grading")
    _check_keys(grading, _GRADING_KEYS_IN_PROBLEM, yaml_path, "grading.")
    base_flags = _flags(data.get("validator_flags"), yaml_path, "validator_flags")
    limits = _limits(data, root)

    data_root = root / "data"
    if not data_root.is_dir():
        raise ProblemPackageError(data_root, "missing (test data lives in data/sample and data/secret)")
    tree = _load_group(data_root, data_root, _ROOT_SETTINGS, base_flags)
    tests = list(tree.tests())
    if not tests:
        raise ProblemPackageError(data_root, "holds no test case (.in/.ans pairs)")
    if kind == "scoring" and custom_score and tree.score_range is None:
        raise ProblemPackageError(
            data_root / "testdata.yaml",
            "'custom score' validation needs 'range: MIN MAX' to normalise scores",
            key="range",
        )
    checker, subtasks = _load_grading_yaml(root, tests, custom, interactive, custom_score, base_flags)
    if subtasks is not None and kind != "scoring":
        raise ProblemPackageError(
            root / "grading.yaml", "subtasks need 'type: scoring' in problem.yaml", key="score_type"
        )
    name = data.get("name", root.name)
    if isinstance(name, dict):  # 2023-07: a name per language
        name = name.get("en", next(iter(name.values()), root.name))
    return ProblemPackage(
        root=root,
        name=str(name),
        kind=kind,
        limits=limits,
        checker=checker,
        interactive=interactive,
        custom_score=custom_score,
        data=tree,
        subtasks=subtasks,
        fingerprint=fingerprint(root),
    )
