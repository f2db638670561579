"""Find the program in a model response: a fenced block of the final answer, in the right language."""

from __future__ import annotations

import re

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "py3": "python",
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp",
}  # fmt: skip
#: fences naming a C++ standard (``c++20``, ``cpp17``, ``gnu++23``): compiled with that standard
_CXX_DIALECT = re.compile(r"^(?:c\+\+|cpp|gnu\+\+)(?:11|14|17|20|23|2a|2b)$")


def fence_language(info: str) -> str | None:
    """``python``/``cpp`` for a fence's info string, ``""`` when untagged, ``None`` for others."""
    words = info.strip().split()
    if not words:
        return ""
    word = words[0].lower()
    return "cpp" if _CXX_DIALECT.match(word) else _ALIASES.get(word)


def sandbox_language(info: str, language: str) -> str:
    """The name to give the sandbox: the fence's C++ dialect when it names one, else ``language``."""
    words = info.strip().split()
    if language == "cpp" and words and _CXX_DIALECT.match(words[0].lower()):
        return words[0].lower()
    return language


def final_answer(response: str, strip_think: bool = True) -> str | None:
    """The text after the last ``</think>``; ``None`` when a ``<think>`` never closed."""
    if not strip_think:
        return response
    if "</think>" in response:
        return response.rsplit("</think>", 1)[1]
    if "<think>" in response:
        return None
    return response


def extract_program(
    response: str,
    language: str,
    *,
    strip_think: bool = True,
    block: str = "last",
    require_fence: bool = True,
) -> str | None:
    """The program in ``response``, or ``None``.

    Fenced blocks tagged with ``language`` or untagged count; blocks in other languages (a shell
    command, the sample output) are skipped. ``block`` picks the ``last`` or ``first`` candidate.
    """
    found = find_program(response, language, strip_think=strip_think, block=block, require_fence=require_fence)
    return found[0] if found is not None else None


def find_program(
    response: str,
    language: str,
    *,
    strip_think: bool = True,
    block: str = "last",
    require_fence: bool = True,
) -> tuple[str, str] | None:
    """``(program, sandbox language)`` as :func:`extract_program` finds it; a ```` ```c++20 ````
    fence gives ``c++20`` so the program compiles with the standard it was written in."""
    answer = final_answer(response, strip_think)
    if answer is None:
        return None
    candidates = [m for m in _FENCE.finditer(answer) if fence_language(m["info"]) in ("", language)]
    if candidates:
        chosen = candidates[-1] if block == "last" else candidates[0]
        code = chosen["code"]
        return (code, sandbox_language(chosen["info"], language)) if code.strip() else None
    if require_fence or not answer.strip():
        return None
    return answer, language
