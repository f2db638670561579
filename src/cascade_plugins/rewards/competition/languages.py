"""Languages of the problem package format: which language a program is in, and which we can run.

The language table is the format's (``appendix/languages.md``): a file's extension names its
language, except that a ``.py`` file whose first line is a ``python2`` shebang is Python 2 (the
legacy rule, which problemtools still applies). The sandbox runs Python 3 and C++; C is compiled
with the system's C compiler. Every other language is an :class:`UnsupportedFeature`, never a
run-time error of the submission.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cascade_plugins.rewards.competition.errors import ProblemPackageError, UnsupportedFeature
from cascade_plugins.sandbox import language_and_standard

#: extension -> language code of the format's table (extensions in parentheses there are left out)
EXTENSIONS: dict[str, str] = {
    ".adb": "ada", ".ads": "ada", ".a68": "algol68", ".apl": "apl", ".sh": "bash", ".c": "c",
    ".cob": "cobol", ".cc": "cpp", ".cpp": "cpp", ".cxx": "cpp", ".c++": "cpp", ".C": "cpp",
    ".cr": "crystal", ".cs": "csharp", ".d": "d", ".dart": "dart", ".ex": "elixir", ".erl": "erlang",
    ".fth": "forth", ".4th": "forth", ".forth": "forth", ".frt": "forth", ".f90": "fortran",
    ".fs": "fsharp", ".ss": "gerbil", ".go": "go", ".hs": "haskell", ".java": "java", ".js": "javascript",
    ".jl": "julia", ".kt": "kotlin", ".lisp": "lisp", ".cl": "lisp", ".lua": "lua", ".mod": "modula2",
    ".def": "modula2", ".nim": "nim", ".m": "objectivec", ".ml": "ocaml", ".odin": "odin",
    ".pas": "pascal", ".pm": "perl", ".php": "php", ".pl": "prolog", ".py2": "python2", ".py": "python3",
    ".py3": "python3", ".rkt": "racket", ".rb": "ruby", ".rs": "rust", ".scala": "scala", ".sim": "simula",
    ".st": "smalltalk", ".sno": "snobol", ".swift": "swift", ".ts": "typescript", ".vb": "visualbasic",
    ".zig": "zig",
}  # fmt: skip
#: every code of the table (``problem.yaml`` ``languages`` must use these)
KNOWN_LANGUAGES = frozenset(EXTENSIONS.values()) | {"cgmp", "cppgmp", "javaalgs4", "octave", "python3numpy"}
#: what the judge runs: language code -> how (``python``/``cpp``: the sandbox's own; ``c``: compiled here)
RUNNABLE: dict[str, str] = {"python3": "python", "cpp": "cpp", "c": "c"}
#: the names the rest of the project (code fences, ``--language``) uses for the runnable codes
ALIASES: dict[str, str] = {
    "python": "python3", "py": "python3", "python3": "python3", "cpp": "cpp", "c++": "cpp", "c": "c",
}  # fmt: skip
HEADER_SUFFIXES = frozenset({".h", ".hh", ".hpp", ".hxx", ".h++", ".H", ".inc", ".tcc", ".ipp"})
_PYTHON2_SHEBANG = re.compile(rb"^#!.*python2(\b|$)")


def language_of_file(path: Path, head: bytes | None = None) -> str | None:
    """The format's language code of one file (``None``: not a source file)."""
    language = EXTENSIONS.get(path.suffix) or EXTENSIONS.get(path.suffix.lower())
    if path.suffix == ".C":
        language = "cpp"
    if language == "python3" and path.suffix == ".py":
        first = head if head is not None else path.read_bytes()[:200]
        if _PYTHON2_SHEBANG.match(first.split(b"\n", 1)[0]):
            return "python2"
    return language


def cxx_standard(name: str) -> str | None:
    """The C++ standard a language name asks for (``c++20``, ``cpp17``, ``gnu++23``: ``gnu++20``...,
    compiled with GNU extensions as judges do); ``None`` for any other name, plain ``cpp``
    included (the sandbox's default standard)."""
    lowered = name.strip().lower()
    if lowered in ALIASES or lowered in KNOWN_LANGUAGES:
        return None
    try:
        language, standard = language_and_standard(lowered)
    except ValueError:
        return None
    return standard if language == "cpp" else None


def language_code(name: str) -> str:
    """A language name as the project spells it (``python``, ``cpp``, a C++ dialect such as
    ``c++20``) or a code of the format's table."""
    lowered = name.strip().lower()
    if cxx_standard(lowered) is not None:
        return "cpp"
    code = ALIASES.get(lowered, lowered)
    if code not in KNOWN_LANGUAGES:
        raise ValueError(f"unknown language {name!r} (the format's codes: python3, cpp, c, java, ...)")
    return code


def parse_languages(value: object, path: Path) -> tuple[str, ...] | None:
    """``problem.yaml`` ``languages``: ``all`` (``None``), a list of codes, or a space-separated string."""
    if value is None or value == "all":
        return None
    if isinstance(value, str):
        items = value.split()
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        items = list(value)
    else:
        raise ProblemPackageError(path, f"expected 'all' or a list of language codes, got {value!r}", key="languages")
    unknown = [v for v in items if v not in KNOWN_LANGUAGES]
    if unknown:
        raise ProblemPackageError(path, f"unknown language codes {unknown}", key="languages")
    return tuple(items)


def check_allowed(code: str, allowed: Sequence[str] | None, where: Path | str) -> None:
    """Raise :class:`UnsupportedFeature` unless the package lets submissions use ``code``."""
    if code not in RUNNABLE:
        runnable = ", ".join(RUNNABLE)
        raise UnsupportedFeature(where, f"unsupported language {code!r} (the judge runs {runnable})")
    if allowed is not None and code not in allowed:
        raise UnsupportedFeature(
            where, f"language {code!r} is not allowed by problem.yaml languages ({', '.join(allowed)})"
        )


@dataclass(frozen=True)
class SubmissionFiles:
    """A submission ready for the sandbox: ``language`` is a code of :data:`RUNNABLE`."""

    language: str
    #: the entry file's name (Python) or the sources to compile together (C, C++), in order
    main: str
    sources: tuple[str, ...]
    #: every file of the submission by relative name, text with constants substituted
    files: Mapping[str, bytes] = field(default_factory=dict)
    #: C++ only: the standard asked for (``gnu++20``); ``None`` is the sandbox's default
    standard: str | None = None

    @property
    def main_text(self) -> str:
        return self.files[self.main].decode("utf-8", "replace")

    def others(self) -> dict[str, bytes]:
        return {name: data for name, data in self.files.items() if name != self.main}


def _entry_point(path: Path, sources: list[str], entrypoint: str | None) -> str:
    if entrypoint is not None:
        if entrypoint not in sources:
            raise ProblemPackageError(path, f"entry point {entrypoint!r} is not one of its sources {sources}")
        return entrypoint
    for preferred in ("__main__.py", "main.py"):
        if preferred in sources:
            return preferred
    if len(sources) == 1:
        return sources[0]
    mains = [s for s in sources if Path(s).name.lower().startswith("main")]
    if len(mains) == 1:
        return mains[0]
    raise ProblemPackageError(
        path, f"cannot tell the entry point among {sources}: name it __main__.py (or pass an entry point)"
    )


def submission_files(
    path: Path,
    files: Mapping[str, bytes],
    *,
    language: str | None = None,
    entrypoint: str | None = None,
    allowed: Sequence[str] | None = None,
) -> SubmissionFiles:
    """Decide the language of a submission (``files``: its files by relative name) as the format
    does: the given ``language``, else the language most of its source files are in."""
    detected: dict[str, list[str]] = {}
    for name, data in files.items():
        code = language_of_file(Path(name), data[:200])
        if code is not None:
            detected.setdefault(code, []).append(name)
    if language is not None:
        code = language_code(language)
    elif not detected:
        raise UnsupportedFeature(path, "no source file of a known language (by extension)")
    else:
        # The format: the language most files are in; C++ wins ties (problemtools' priorities).
        order = ["cpp", "python3", "c"]
        code = max(detected, key=lambda c: (len(detected[c]), -order.index(c) if c in order else -len(order)))
    check_allowed(code, allowed, path)
    standard = cxx_standard(language) if language is not None else None
    sources = sorted(detected.get(code, []))
    if not sources and len(files) == 1:  # one file in a language given by name: whatever its extension
        sources = list(files)
    if not sources:
        raise ProblemPackageError(path, f"no {code} source file in the submission")
    if code == "python3":
        main = _entry_point(path, sources, entrypoint)
        return SubmissionFiles(code, main, (main,), dict(files))
    return SubmissionFiles(code, sources[0], tuple(sources), dict(files), standard)


__all__ = [
    "ALIASES",
    "EXTENSIONS",
    "KNOWN_LANGUAGES",
    "RUNNABLE",
    "SubmissionFiles",
    "check_allowed",
    "cxx_standard",
    "language_code",
    "language_of_file",
    "parse_languages",
    "submission_files",
]
