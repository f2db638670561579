"""Load and validate a Kattis / ICPC problem package (plus the optional ``grading.yaml``).

Both versions of the format in use are read: ``legacy`` (no ``problem_format_version``, or
``legacy``/``legacy-icpc``) and ``2023-07`` / ``2025-09`` (and their drafts). Layout::

    problem.yaml                 name, type, limits, languages, constants (legacy: validation, validator_flags)
    .timelimit                   optional: time limit in seconds (DOMjudge/BAPCtools convention)
    data/sample/, data/secret/   test cases (.in/.ans, optional .yaml and .files/); directories are groups
    **/testdata.yaml             group settings (2025-09: test_group.yaml), inherited by sub-groups
    output_validator/            custom validator or interactor: one program (2023-07 and later)
    output_validators/<prog>/    the same, legacy layout
    include/<language>/          files added to every submission in that language (include/default/)
    grading.yaml                 optional: checker choice and IOI subtasks (see docs/competition.md)

Only what grading needs is read: input and answer validators, statements, generators, attachments
and visualizers are never opened (a broken symlink there cannot stop a judging). Everything read is
checked up front: a package that loads is judged whole or not at all. Where the format allows
something the judge does not do, :class:`UnsupportedFeature` names the file and the feature.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from cascade_plugins.rewards.competition.checkers import STANDARD_CHECKERS, parse_validator_flags
from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.rewards.competition.languages import (
    language_of_file,
    parse_languages,
)
from cascade_plugins.rewards.competition.scoretypes import SCORE_TYPES

ProblemKind = Literal["pass-fail", "scoring"]
CheckerKind = Literal["default", "standard", "kattis", "testlib"]
FormatVersion = Literal["legacy", "2023-07", "2025-09"]
#: how a package program is built and run (``script``: its own ``build`` / ``run`` scripts)
ProgramLanguage = Literal["python", "cpp", "c", "script"]
#: whether a validator's ``score.txt`` counts: legacy ``custom score`` needs one; in 2023-07 and
#: later any scoring problem may have one
ScoreFile = Literal["required", "optional", "ignored"]

_FORMAT_VERSIONS: dict[str, FormatVersion] = {
    "legacy": "legacy", "legacy-icpc": "legacy", "2023-07": "2023-07", "2023-07-draft": "2023-07",
    "2025-09": "2025-09", "2025-09-draft": "2025-09", "draft": "2025-09",
}  # fmt: skip
_PROBLEM_KEYS = {
    "problem_format_version", "type", "name", "uuid", "author", "source", "source_url", "license",
    "rights_owner", "limits", "validation", "validator_flags", "keywords", "grading", "credits",
    "version", "languages", "constants", "embargo_until", "allow_file_writing", "scoring", "libraries",
}  # fmt: skip
_LIMIT_KEYS = {
    "time_limit", "time_multiplier", "time_multipliers", "time_safety_margin", "time_resolution",
    "memory", "output", "code", "compilation_time", "compilation_memory", "validation_time",
    "validation_memory", "validation_output", "validation_passes",
}  # fmt: skip
_GRADING_KEYS_IN_PROBLEM = {"objective", "show_test_data_groups", "on_reject", "accept_score", "reject_score", "range"}
_TESTDATA_KEYS = {
    # legacy
    "on_reject", "grading", "grader_flags", "input_validator_flags", "output_validator_flags",
    "accept_score", "reject_score", "range",
    # 2023-07 drafts
    "scoring",
    # 2025-09
    "max_score", "score_aggregation", "static_validation_score", "require_pass", "args", "input_validator_args",
    "static_validator_args", "output_validator_args", "input_visualizer_args", "output_visualizer_args",
    "full_feedback", "answer_validator_args",
}  # fmt: skip
_TEST_CASE_KEYS = {
    "args", "input_validator_args", "output_validator_args", "input_visualizer_args", "output_visualizer_args",
    "full_feedback", "hint", "description", "answer_validator_args",
}  # fmt: skip
_GROUP_FILES = ("testdata.yaml", "test_group.yaml")
_GRADER_FLAGS = {"worst_error", "no_errors", "first_error", "always_accept", "sum", "avg", "min", "max",
                 "ignore_sample", "accept_if_any_accepted"}  # fmt: skip
_GRADING_YAML_KEYS = {"checker", "score_type", "subtasks", "points_per_test"}
_SUBTASK_KEYS = {"name", "points", "tests", "threshold"}
_PROBLEM_TYPES = {"pass-fail", "scoring", "interactive", "multi-pass", "submit-answer"}
_CONSTANT = re.compile(rb"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)(?:\.([a-zA-Z_][a-zA-Z0-9_]*))?\s*\}\}")
#: a folder copied into a program is capped (a validator folder is sources, not data)
_MAX_PROGRAM_BYTES = 64 * 1024 * 1024

DEFAULT_TIME_LIMIT_S = 2.0
DEFAULT_MEMORY_MB = 2048
DEFAULT_OUTPUT_MB = 8
DEFAULT_COMPILATION_TIME_S = 60.0
DEFAULT_VALIDATION_TIME_S = 60.0
DEFAULT_VALIDATION_MEMORY_MB = 2048
DEFAULT_VALIDATION_PASSES = 2


@dataclass(frozen=True)
class ProgramSource:
    """A program of the package (validator, interactor, checker): one file or a folder.

    ``files`` holds every file of the program by its path inside the program folder (symbolic
    links resolved, constants substituted); ``language`` says how it is built: ``python`` (run
    ``main``), ``cpp``/``c`` (compile ``sources`` together, headers alongside) or ``script`` (the
    folder's ``build`` script, then its ``run`` file).
    """

    path: Path
    language: ProgramLanguage
    files: Mapping[str, bytes]
    main: str = ""
    sources: tuple[str, ...] = ()
    #: files that are executable in the package (scripts the ``run`` script calls, say)
    executables: frozenset[str] = frozenset()

    @property
    def source(self) -> str:
        """The entry file's text (Python), or the first source's (C, C++)."""
        return self.files[self.main].decode("utf-8", "replace") if self.main in self.files else ""

    @property
    def main_path(self) -> Path:
        return self.path / self.main if self.path.is_dir() else self.path

    @property
    def extra_files(self) -> dict[str, bytes]:
        return {name: data for name, data in self.files.items() if name != self.main}


@dataclass(frozen=True)
class ProblemLimits:
    time_limit_s: float = DEFAULT_TIME_LIMIT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    output_mb: int = DEFAULT_OUTPUT_MB
    compilation_time_s: float = DEFAULT_COMPILATION_TIME_S
    validation_time_s: float = DEFAULT_VALIDATION_TIME_S
    validation_memory_mb: int = DEFAULT_VALIDATION_MEMORY_MB
    validation_passes: int = DEFAULT_VALIDATION_PASSES


@dataclass(frozen=True)
class TestCase:
    """One ``.in``/``.ans`` pair; ``name`` is its path under ``data/`` without extension."""

    __test__ = False  # not a pytest test class

    name: str
    input_path: Path
    answer_path: Path
    group: str
    output_validator_flags: tuple[str, ...] = ()
    #: command-line arguments of the submission (2025-09 ``args``)
    args: tuple[str, ...] = ()
    #: the test's ``.files`` folder: files put in the submission's working directory
    files_dir: Path | None = None
    score_file: ScoreFile = "ignored"

    def input_files(self) -> dict[str, bytes]:
        if self.files_dir is None:
            return {}
        return {
            p.relative_to(self.files_dir).as_posix(): p.read_bytes()
            for p in sorted(self.files_dir.rglob("*"))
            if p.is_file()
        }


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
    #: 2025-09 ``pass-fail`` aggregation: the group scores this when all of it is accepted, else 0
    fixed_score: float | None = None

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
    #: changes whenever a file grading reads changes (cache key for compiled programs)
    fingerprint: str
    format_version: FormatVersion = "legacy"
    #: ``type: multi-pass``: the validator may ask for another run with ``nextpass.in``
    multi_pass: bool = False
    #: ``problem.yaml`` ``languages`` (codes of the format's table); ``None`` means all
    languages: tuple[str, ...] | None = None
    #: ``include/``: files added to every submission, per language code (``default`` for the rest)
    include: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    #: ``problem.yaml`` ``constants``: ``name`` and ``name.variant`` -> text
    constants: Mapping[str, str] = field(default_factory=dict)

    def tests(self) -> list[TestCase]:
        return list(self.data.tests())

    def included_files(self, language_code: str) -> dict[str, bytes]:
        """What ``include/`` adds to a submission in ``language_code`` (the format's code)."""
        return dict(self.include.get(language_code, self.include.get("default", {})))


# -- helpers ---------------------------------------------------------------------------------------


def _read_yaml(path: Path, constants: Mapping[str, str] | None = None) -> Any:
    """The YAML document at ``path``, ``{{constants}}`` substituted first when given."""
    try:
        raw = path.read_bytes()
        text = substitute_constants(raw, constants or {}).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemPackageError(path, f"not UTF-8 text ({exc})") from None
    except OSError as exc:
        raise ProblemPackageError(path, f"cannot be read ({exc.strerror})") from None
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
    if isinstance(value, dict):
        raise UnsupportedFeature(path, "flags per named validator are not supported (one validator only)", key=key)
    raise ProblemPackageError(path, f"expected a string of flags, got {value!r}", key=key)


def _visible(path: Path) -> bool:
    """The format ignores files and folders whose name starts with a dot or a dash."""
    return not path.name.startswith((".", "-"))


#: what grading reads; everything else in a package (validators of the input, statements, ...) is ignored
GRADING_PATHS = ("problem.yaml", ".timelimit", "grading.yaml", "data", "output_validator", "output_validators",
                 "include")  # fmt: skip


def fingerprint(root: Path) -> str:
    """A hash of the relative path, size and modification time of every file grading reads.

    Symbolic links count by their target (or, dangling, by the link itself): a link that points
    nowhere never stops the hash, and what it points to is caught where it is read."""
    digest = hashlib.sha256()
    for top in GRADING_PATHS:
        start = root / top
        if start.is_file() or (start.is_symlink() and not start.is_dir()):
            paths: list[str] = [str(start)]
        elif start.is_dir():
            paths = []
            for dirpath, dirnames, filenames in os.walk(start, followlinks=True):
                dirnames.sort()
                paths.extend(os.path.join(dirpath, name) for name in sorted(filenames))
        else:
            continue
        for full in paths:
            try:
                info = os.stat(full)
            except OSError:
                info = os.lstat(full)
            digest.update(f"{os.path.relpath(full, root)}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


# -- problem.yaml ----------------------------------------------------------------------------------


def _load_problem_yaml(root: Path) -> dict[str, Any]:
    path = root / "problem.yaml"
    if not path.is_file():
        raise ProblemPackageError(path, "missing (every problem package needs a problem.yaml)")
    data = _mapping(_read_yaml(path), path)
    _check_keys(data, _PROBLEM_KEYS, path)
    return data


def _format_version(data: Mapping[str, Any], path: Path) -> FormatVersion:
    raw = data.get("problem_format_version", "legacy")
    version = _FORMAT_VERSIONS.get(str(raw))
    if version is None:
        known = ", ".join(_FORMAT_VERSIONS)
        raise UnsupportedFeature(path, f"unknown format version {raw!r} (known: {known})", key="problem_format_version")
    return version


def _problem_types(data: Mapping[str, Any], path: Path) -> set[str]:
    """The problem's types: ``type`` is one string (several space-separated ones allowed) or a list."""
    raw = data.get("type", "pass-fail")
    items = raw.split() if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or not all(isinstance(t, str) for t in items):
        raise ProblemPackageError(path, f"expected a string or a list of strings, got {raw!r}", key="type")
    types = set(items)
    unknown = types - _PROBLEM_TYPES
    if unknown:
        raise ProblemPackageError(
            path, f"unknown problem type {sorted(unknown)} (known: {', '.join(sorted(_PROBLEM_TYPES))})", key="type"
        )
    for first, second in (("pass-fail", "scoring"), ("multi-pass", "submit-answer"), ("interactive", "submit-answer")):
        if {first, second} <= types:
            raise ProblemPackageError(path, f"{first} and {second} exclude each other", key="type")
    if "submit-answer" in types:
        raise UnsupportedFeature(path, "submit-answer problems (answers instead of programs) are not supported",
                                 key="type")  # fmt: skip
    return types


def _validation(data: Mapping[str, Any], path: Path) -> tuple[bool, bool, bool] | None:
    """(custom, interactive, score) from the legacy ``validation`` string (``None``: not given)."""
    if "validation" not in data:
        return None
    raw = data["validation"]
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

    passes = get("validation_passes", DEFAULT_VALIDATION_PASSES)
    if passes != int(passes) or passes < 2:
        raise ProblemPackageError(path, f"must be a whole number >= 2, got {passes:g}", key="limits.validation_passes")
    return ProblemLimits(
        time_limit_s=time_limit,
        memory_mb=int(get("memory", DEFAULT_MEMORY_MB)),
        output_mb=int(get("output", DEFAULT_OUTPUT_MB)),
        compilation_time_s=get("compilation_time", DEFAULT_COMPILATION_TIME_S),
        validation_time_s=get("validation_time", DEFAULT_VALIDATION_TIME_S),
        validation_memory_mb=int(get("validation_memory", DEFAULT_VALIDATION_MEMORY_MB)),
        validation_passes=int(passes),
    )


def _constants(data: Mapping[str, Any], path: Path) -> dict[str, str]:
    """``constants``: ``{{name}}`` and ``{{name.variant}}`` -> text (a scalar is its own ``value``)."""
    raw = _mapping(data.get("constants"), path, "constants")
    table: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", name):
            raise ProblemPackageError(path, f"invalid constant name {name!r}", key="constants")
        variants = value if isinstance(value, dict) else {"value": value}
        if "value" not in variants:
            raise ProblemPackageError(path, "a constant given as a map needs a 'value'", key=f"constants.{name}")
        for variant, text in variants.items():
            if isinstance(text, bool) or not isinstance(text, str | int | float):
                raise ProblemPackageError(path, f"expected a number or a string, got {text!r}",
                                          key=f"constants.{name}.{variant}")  # fmt: skip
            table[f"{name}.{variant}"] = str(text)
        table[name] = table[f"{name}.value"]
    return table


def substitute_constants(data: bytes, constants: Mapping[str, str]) -> bytes:
    """Replace ``{{name}}`` / ``{{name.variant}}`` as the format does (unknown names stay as they are)."""
    if not constants or b"{{" not in data:
        return data

    def replace(match: re.Match[bytes]) -> bytes:
        key = match[1].decode() + (f".{match[2].decode()}" if match[2] else "")
        value = constants.get(key)
        return value.encode() if value is not None else match[0]

    return _CONSTANT.sub(replace, data)


# -- programs --------------------------------------------------------------------------------------


def _read_file(path: Path, inside: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        if path.is_symlink():
            target = os.readlink(path)
            raise ProblemPackageError(
                path, f"symbolic link to {target!r}, which does not exist (copy the file into {inside.name}/)"
            ) from None
        raise ProblemPackageError(path, "missing") from None
    except OSError as exc:
        raise ProblemPackageError(path, f"cannot be read ({exc.strerror})") from None


def program_files(path: Path, constants: Mapping[str, str] | None = None) -> tuple[dict[str, bytes], frozenset[str]]:
    """Every file of a program (a file or a folder), by path relative to the program folder, and
    which of them are executable. Symbolic links are followed; hidden files are left out."""
    constants = constants or {}
    if not path.is_dir():
        data = _read_file(path, path.parent)
        executable = frozenset([path.name]) if os.access(path, os.X_OK) else frozenset()
        return {path.name: substitute_constants(data, constants)}, executable
    files: dict[str, bytes] = {}
    executables: set[str] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if _visible(Path(d)))
        if len(Path(dirpath).relative_to(path).parts) > 8:
            raise ProblemPackageError(dirpath, "nested too deep (a symbolic link loop?)")
        for filename in sorted(filenames):
            full = Path(dirpath) / filename
            if not _visible(full):
                continue
            name = full.relative_to(path).as_posix()
            data = _read_file(full, path)
            total += len(data)
            if total > _MAX_PROGRAM_BYTES:
                raise ProblemPackageError(path, f"holds more than {_MAX_PROGRAM_BYTES >> 20} MiB")
            files[name] = substitute_constants(data, constants)
            with_mode = os.stat(full)
            if with_mode.st_mode & stat.S_IXUSR:
                executables.add(name)
    return files, frozenset(executables)


def load_program(path: Path, constants: Mapping[str, str] | None = None) -> ProgramSource:
    """A validator, interactor or checker program, as the format defines "other programs": a
    folder with ``build`` and/or ``run`` scripts; or a single Python file, or a folder of Python
    files with ``__main__.py``; or one or more C or C++ sources (headers alongside)."""
    files, executables = program_files(path, constants)
    if not files:
        raise ProblemPackageError(path, "is empty")
    if path.is_dir() and ("build" in files or "run" in files):
        return ProgramSource(path, "script", files, "run", executables=executables)
    by_language: dict[str, list[str]] = {}
    for name, data in files.items():
        code = language_of_file(Path(name), data[:200])
        if code is not None:
            by_language.setdefault(code, []).append(name)
    runnable = {code: names for code, names in by_language.items() if code in ("python3", "cpp", "c")}
    if not runnable:
        found = ", ".join(sorted(by_language)) or "no source file"
        raise UnsupportedFeature(
            path, f"program in an unsupported language ({found}); supported: Python 3, C, C++, build/run scripts"
        )
    if len(runnable) > 1:
        raise ProblemPackageError(path, f"sources in several languages ({', '.join(sorted(runnable))}): "
                                        "add a build or run script")  # fmt: skip
    code, sources = next(iter(runnable.items()))
    sources = sorted(sources)
    if code == "python3":
        if len(sources) == 1:
            main = sources[0]
        elif "__main__.py" in sources:
            main = "__main__.py"
        else:
            raise ProblemPackageError(path, f"several Python files ({', '.join(sources)}) but no __main__.py")
        return ProgramSource(path, "python", files, main, (main,), executables)
    language: ProgramLanguage = "cpp" if code == "cpp" else "c"
    return ProgramSource(path, language, files, sources[0], tuple(sources), executables)


def _validator_program(root: Path, constants: Mapping[str, str]) -> ProgramSource | None:
    """The output validator (or interactor): ``output_validator/`` is the program (2023-07 and
    later) or holds one; legacy ``output_validators/`` holds one program (a file or a folder)."""
    found: list[Path] = []
    for folder_name in ("output_validator", "output_validators"):
        folder = root / folder_name
        if folder.is_dir() and any(_visible(p) for p in folder.iterdir()):
            found.append(folder)
    if not found:
        return None
    if len(found) > 1:
        raise ProblemPackageError(root, "has both output_validator/ and output_validators/: keep one")
    folder = found[0]
    entries = sorted(p for p in folder.iterdir() if _visible(p))
    if len(entries) == 1 and (folder.name == "output_validators" or entries[0].is_dir()):
        return load_program(entries[0], constants)
    if all(p.is_dir() for p in entries):
        names = ", ".join(p.name for p in entries)
        raise UnsupportedFeature(folder, f"several output validators ({names}): only one is supported")
    return load_program(folder, constants)


def _include(root: Path, constants: Mapping[str, str]) -> dict[str, dict[str, bytes]]:
    folder = root / "include"
    if not folder.is_dir():
        return {}
    return {
        language.name: program_files(language, constants)[0]
        for language in sorted(folder.iterdir())
        if language.is_dir() and _visible(language)
    }


# -- data/ -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Settings:
    """What a group passes down to its sub-groups and tests."""

    version: FormatVersion
    kind: ProblemKind
    on_reject: Literal["break", "continue"] = "break"
    grader_flags: tuple[str, ...] = ()
    accept_score: float = 1.0
    reject_score: float = 0.0
    score_range: tuple[float, float] | None = None
    output_validator_flags: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    score_file: ScoreFile = "ignored"
    #: 2025-09 scoring: this group's aggregation and maximum score
    aggregation: str | None = None
    max_score: float | None = None
    #: ``{{constants}}`` to substitute in group settings files (2023-07 and later)
    constants: tuple[tuple[str, str], ...] = ()


def _group_config(directory: Path, constants: Mapping[str, str]) -> tuple[Path | None, dict[str, Any]]:
    present = [directory / name for name in _GROUP_FILES if (directory / name).is_file()]
    if len(present) > 1:
        raise ProblemPackageError(directory, "has both testdata.yaml and test_group.yaml: keep one")
    if not present:
        return None, {}
    path = present[0]
    data = _mapping(_read_yaml(path, constants), path)
    _check_keys(data, _TESTDATA_KEYS, path)
    return path, data


def _legacy_settings(data: Mapping[str, Any], path: Path, settings: dict[str, Any]) -> None:
    if "on_reject" in data:
        if data["on_reject"] not in ("break", "continue"):
            raise ProblemPackageError(
                path, f"expected 'break' or 'continue', got {data['on_reject']!r}", key="on_reject"
            )
        settings["on_reject"] = data["on_reject"]
    if data.get("grading", "default") != "default":
        raise UnsupportedFeature(path, "custom graders are not supported (use grader_flags)", key="grading")
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


def _draft_scoring(data: Mapping[str, Any], path: Path, settings: dict[str, Any]) -> None:
    """The 2023-07 drafts' ``scoring: {score, max_score, aggregation}``: a test's score, the
    group's maximum and how its children combine (legacy ``accept_score``, ``range``, flags)."""
    scoring = _mapping(data["scoring"], path, "scoring")
    _check_keys(scoring, {"score", "max_score", "aggregation"}, path, "scoring.")
    if "score" in scoring:
        settings["accept_score"] = _number(scoring["score"], path, "scoring.score", positive=False)
    if "aggregation" in scoring:
        if scoring["aggregation"] not in ("sum", "min"):
            raise ProblemPackageError(path, f"expected 'sum' or 'min', got {scoring['aggregation']!r}",
                                      key="scoring.aggregation")  # fmt: skip
        settings["grader_flags"] = (scoring["aggregation"],)
        settings["on_reject"] = "continue" if scoring["aggregation"] == "sum" else "break"
    if "max_score" in scoring:
        settings["score_range"] = (0.0, _number(scoring["max_score"], path, "scoring.max_score", positive=False))


def _current_scoring(data: Mapping[str, Any], path: Path, settings: dict[str, Any], is_secret: bool) -> None:
    """2025-09: ``score_aggregation`` (``pass-fail``, ``sum``, ``min``) and ``max_score`` per group."""
    for key in ("require_pass", "static_validation_score"):
        if key in data:
            feature = "group dependencies" if key == "require_pass" else "static validation"
            raise UnsupportedFeature(path, f"{feature} are not supported", key=key)
    aggregation = data.get("score_aggregation", "sum" if is_secret else "pass-fail")
    if aggregation not in ("pass-fail", "sum", "min"):
        raise ProblemPackageError(path, f"expected pass-fail, sum or min, got {aggregation!r}", key="score_aggregation")
    raw_max = data.get("max_score", 100 if is_secret else "unbounded")
    if raw_max == "unbounded":
        raise UnsupportedFeature(
            path, "an unbounded max_score (scores are normalised by the maximum)", key="max_score"
        )
    settings["max_score"] = _number(raw_max, path, "max_score", positive=False)
    settings["aggregation"] = aggregation
    settings["on_reject"] = "continue" if aggregation == "sum" else "break"


def _group_settings(directory: Path, inherited: _Settings, is_secret: bool) -> _Settings:
    """This group's settings: its ``testdata.yaml`` over what it inherits from its parent."""
    path, data = _group_config(directory, dict(inherited.constants))
    settings = dict(inherited.__dict__)
    settings["aggregation"] = settings["max_score"] = None  # not inherited
    new_scoring = inherited.version != "legacy" and inherited.kind == "scoring"
    if path is None:
        if new_scoring and is_secret:
            _current_scoring({}, directory / "test_group.yaml", settings, is_secret)
        return _Settings(**settings)
    _legacy_settings(data, path, settings)
    if "scoring" in data:
        _draft_scoring(data, path, settings)
    elif new_scoring and (is_secret or "score_aggregation" in data or "max_score" in data):
        _current_scoring(data, path, settings, is_secret)
    for key in ("output_validator_flags", "output_validator_args"):
        if key in data:
            settings["output_validator_flags"] = _flags(data[key], path, key)
    if "args" in data:
        settings["args"] = _flags(data["args"], path, "args")
    return _Settings(**settings)


def _test_case(entry: Path, data_root: Path, group: str, settings: _Settings, base_flags: tuple[str, ...]) -> TestCase:
    answer = entry.with_suffix(".ans")
    if not answer.is_file():
        raise ProblemPackageError(entry, "has no matching .ans file")
    flags, args = settings.output_validator_flags, settings.args
    config = entry.with_suffix(".yaml")
    if config.is_file():
        data = _mapping(_read_yaml(config), config)
        _check_keys(data, _TEST_CASE_KEYS, config)
        if "output_validator_args" in data:
            flags = _flags(data["output_validator_args"], config, "output_validator_args")
        if "args" in data:
            args = _flags(data["args"], config, "args")
    files_dir = entry.with_suffix(".files")
    return TestCase(
        name=entry.with_suffix("").relative_to(data_root).as_posix(),
        input_path=entry,
        answer_path=answer,
        group=group,
        output_validator_flags=base_flags + flags,
        args=args,
        files_dir=files_dir if files_dir.is_dir() else None,
        score_file=settings.score_file,
    )


def _load_group(
    directory: Path, data_root: Path, inherited: _Settings, base_flags: tuple[str, ...], is_secret: bool = False
) -> TestGroup:
    settings = _group_settings(directory, inherited, is_secret)
    name = directory.relative_to(data_root).as_posix() if directory != data_root else ""
    items: list[TestCase | TestGroup] = []
    for entry in sorted(directory.iterdir()):
        if not _visible(entry):
            continue
        if entry.is_dir():
            if entry.suffix != ".files":
                items.append(_load_group(entry, data_root, settings, base_flags))
        elif entry.suffix == ".ans":
            if not entry.with_suffix(".in").exists():
                raise ProblemPackageError(entry, "has no matching .in file")
        elif entry.suffix == ".in":
            if not entry.exists():
                raise ProblemPackageError(entry, f"symbolic link to {os.readlink(entry)!r}, which does not exist")
            items.append(_test_case(entry, data_root, name, settings, base_flags))
    accept_score, fixed_score, flags = settings.accept_score, None, settings.grader_flags
    if settings.aggregation is not None:
        assert settings.max_score is not None
        tests = [i for i in items if isinstance(i, TestCase)]
        if settings.aggregation == "sum":
            accept_score, flags = settings.max_score / max(1, len(tests)), ("sum",)
        elif settings.aggregation == "min":
            accept_score, flags = settings.max_score, ("min",)
        else:
            fixed_score, flags = settings.max_score, ("min",)
    return TestGroup(
        name=name,
        path=directory,
        on_reject=settings.on_reject,
        grader_flags=flags,
        accept_score=accept_score,
        reject_score=settings.reject_score,
        score_range=settings.score_range if settings.aggregation is None else (0.0, settings.max_score or 0.0),
        items=tuple(items),
        fixed_score=fixed_score,
    )


def _generates_secret(generators: Path) -> bool:
    """Does a BAPCtools ``generators.yaml`` declare secret test cases (``secret: {data: []}`` does not)?"""
    try:
        config = yaml.safe_load(generators.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return True  # unreadable: the tests may well be written by it
    secret = config.get("data", {}).get("secret") if isinstance(config, dict) and isinstance(
        config.get("data"), dict) else None  # fmt: skip
    if not isinstance(secret, dict):
        return bool(secret)
    return bool(secret.get("data") or secret.get("include"))


def _load_data(root: Path, root_settings: _Settings, base_flags: tuple[str, ...]) -> TestGroup:
    """``data/sample`` and ``data/secret`` (the other folders of ``data/`` hold validation tests)."""
    data_root = root / "data"
    generators = root / "generators" / "generators.yaml"
    how = (
        f"; its tests are written by {generators.relative_to(root)}: run `bt generate` (BAPCtools) in {root} first"
        if generators.is_file()
        else ""
    )
    if not data_root.is_dir():
        raise ProblemPackageError(data_root, f"missing (test data lives in data/sample and data/secret){how}")
    settings = _group_settings(data_root, root_settings, False)
    items: list[TestCase | TestGroup] = []
    for part in ("sample", "secret"):
        folder = data_root / part
        if folder.is_dir():
            items.append(_load_group(folder, data_root, settings, base_flags, is_secret=part == "secret"))
    flags = settings.grader_flags
    if root_settings.version != "legacy" and root_settings.kind == "scoring":
        flags = ("ignore_sample",)  # 2023-07 and later: samples never count towards the score
    tree = TestGroup(
        name="",
        path=data_root,
        on_reject="continue" if "ignore_sample" in flags and root_settings.version != "legacy" else settings.on_reject,
        grader_flags=flags,
        accept_score=settings.accept_score,
        reject_score=settings.reject_score,
        score_range=settings.score_range,
        items=tuple(items),
    )
    secret = next((g for g in items if isinstance(g, TestGroup) and g.name == "secret"), None)
    if how and (secret is None or not any(True for _ in secret.tests())) and _generates_secret(generators):
        raise ProblemPackageError(data_root / "secret", f"holds no test case{how}")
    if not any(True for _ in tree.tests()):
        raise ProblemPackageError(data_root, "holds no test case (.in/.ans pairs in data/sample or data/secret)")
    return tree


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
    root: Path,
    tests: list[TestCase],
    custom: bool,
    interactive: bool,
    score: bool,
    flags: tuple[str, ...],
    program: ProgramSource | None,
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
            f"the package has a custom validator, so the checker must be 'custom' or 'testlib', not {checker_name!r}",
            key="checker",
        )
    if interactive and checker_name != "custom":
        raise ProblemPackageError(path, "interactors speak the Kattis protocol: use checker 'custom'", key="checker")
    if checker_name == "default":
        for test_flags in {t.output_validator_flags for t in tests} | {flags}:
            try:
                parse_validator_flags(test_flags)
            except ValueError as exc:
                raise ProblemPackageError(root / "problem.yaml", str(exc), key="validator_flags") from None
        checker = CheckerSpec(kind="default", flags=flags)
    elif checker_name in STANDARD_CHECKERS:
        checker = CheckerSpec(kind="standard", name=checker_name)
    elif checker_name in ("custom", "testlib"):
        if program is None:
            raise ProblemPackageError(
                root / "output_validators", "missing: the package asks for custom validation but there is no validator"
            )
        kind: CheckerKind = "kattis" if checker_name == "custom" else "testlib"
        checker = CheckerSpec(kind=kind, flags=flags, program=program)
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


def _objective(data: Mapping[str, Any], yaml_path: Path) -> None:
    for key in ("grading", "scoring"):
        section = _mapping(data.get(key), yaml_path, key)
        _check_keys(section, _GRADING_KEYS_IN_PROBLEM, yaml_path, f"{key}.")
        if section.get("objective", "max") != "max":
            raise UnsupportedFeature(
                yaml_path, "minimisation problems are not supported (scores are maximised)", key=f"{key}.objective"
            )


def load_problem(path: str | os.PathLike[str]) -> ProblemPackage:
    """Load and validate the package at ``path``; raise :class:`ProblemPackageError` naming the
    file (and key) at fault (:class:`UnsupportedFeature` for what the format allows but the judge
    does not do)."""
    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise ProblemPackageError(root, "not a directory (a problem package is a directory with problem.yaml)")
    data = _load_problem_yaml(root)
    yaml_path = root / "problem.yaml"
    version = _format_version(data, yaml_path)
    types = _problem_types(data, yaml_path)
    kind: ProblemKind = "scoring" if "scoring" in types else "pass-fail"
    _objective(data, yaml_path)
    constants = _constants(data, yaml_path)
    languages = parse_languages(data.get("languages"), yaml_path)
    base_flags = _flags(data.get("validator_flags"), yaml_path, "validator_flags")
    limits = _limits(data, root)
    program = _validator_program(root, constants)

    validation = _validation(data, yaml_path)
    if validation is not None:
        custom, interactive, custom_score = validation
    else:  # 2023-07 and later: a validator program means custom validation
        custom, interactive, custom_score = program is not None, False, False
    if "interactive" in types and not interactive:
        if validation is not None:
            raise ProblemPackageError(
                yaml_path, "type says interactive but validation is not 'custom interactive'", key="validation"
            )
        custom = interactive = True
    multi_pass = "multi-pass" in types
    if multi_pass and program is None:
        raise ProblemPackageError(root / "output_validator", "missing: a multi-pass problem needs an output validator")
    if multi_pass:
        custom = True
    score_file: ScoreFile = "ignored"
    if custom_score:
        score_file = "required"
    elif custom and kind == "scoring" and version != "legacy":
        score_file = "optional"

    # The format substitutes constants in test_group.yaml (2023-07 on), not in legacy testdata.yaml.
    group_constants = tuple(sorted(constants.items())) if version != "legacy" else ()
    root_settings = _Settings(version=version, kind=kind, score_file=score_file, constants=group_constants)
    tree = _load_data(root, root_settings, base_flags)
    tests = list(tree.tests())
    if kind == "scoring" and custom_score and tree.score_range is None:
        raise ProblemPackageError(
            root / "data" / "testdata.yaml",
            "'custom score' validation needs 'range: MIN MAX' to normalise scores",
            key="range",
        )
    checker, subtasks = _load_grading_yaml(root, tests, custom, interactive, custom_score, base_flags, program)
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
        format_version=version,
        multi_pass=multi_pass,
        languages=languages,
        include=_include(root, constants),
        constants=constants,
    )
