"""Pull the solution out of a model response: the last fenced code block after ``</think>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cascade_plugins.rewards.competition.languages import cxx_standard

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^[ \t]*(?P=fence)[ \t]*$", re.M | re.S
)
_LANGUAGE_ALIASES = {
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp",
    "python": "python", "python3": "python", "py": "python", "py3": "python",
}  # fmt: skip


@dataclass(frozen=True)
class ExtractedCode:
    code: str
    #: ``python`` or ``cpp``; ``None`` when the fence names a language we cannot run
    language: str | None
    fence_language: str
    #: the C++ standard the fence (or the default language) names, as compiled (``gnu++20`` for
    #: ``c++20``); ``None``: the judge's default
    standard: str | None = None

    @property
    def judge_language(self) -> str | None:
        """The language to judge with: the C++ dialect when one is named."""
        return self.standard if self.language == "cpp" and self.standard else self.language


def normalize_language(name: str) -> str | None:
    """``python`` / ``cpp`` for a fence's or option's language name (C++ dialects included)."""
    lowered = name.strip().lower()
    if cxx_standard(lowered) is not None:
        return "cpp"
    return _LANGUAGE_ALIASES.get(lowered)


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
    named = fence_language or default_language
    if named:
        language, standard = normalize_language(named), cxx_standard(named)
    else:
        language, standard = guess_language(code), None
    return ExtractedCode(code=code, language=language, fence_language=fence_language, standard=standard)
