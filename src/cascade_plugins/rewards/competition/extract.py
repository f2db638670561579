"""Pull the solution out of a model response: the last fenced code block after ``</think>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^[ \t]*(?P=fence)[ \t]*$", re.M | re.S
)
_LANGUAGE_ALIASES = {
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp", "c++17": "cpp", "c++20": "cpp", "gnu++17": "cpp",
    "python": "python", "python3": "python", "py": "python", "py3": "python",
}  # fmt: skip


@dataclass(frozen=True)
class ExtractedCode:
    code: str
    #: ``python`` or ``cpp``; ``None`` when the fence names a language we cannot run
    language: str | None
    fence_language: str


def normalize_language(name: str) -> str | None:
    return _LANGUAGE_ALIASES.get(name.strip().lower())


def guess_language(code: str) -> str:
    """For an unlabelled fence with no configured language: C++ if it includes a header."""
    return "cpp" if re.search(r"^\s*#\s*include\b", code, re.M) else "python"


def extract_code(response: str, default_language: str | None = None) -> ExtractedCode | None:
    """The last fenced block of the final answer, or ``None`` when there is none.

    Only the text after the last ``</think>`` counts; a response whose thinking never closed has
    no final answer. The fence's info string picks the language; an unlabelled fence takes
    ``default_language`` (or a guess when that is ``None``).
    """
    if "</think>" in response:
        response = response.rsplit("</think>", 1)[1]
    elif "<think>" in response:
        return None
    blocks = list(_FENCE.finditer(response))
    if not blocks:
        return None
    block = blocks[-1]
    code = block["code"]
    info = block["info"].strip().split()
    fence_language = info[0] if info else ""
    language = normalize_language(fence_language) if fence_language else default_language or guess_language(code)
    return ExtractedCode(code=code, language=language, fence_language=fence_language)
