"""Find the program in a model response: a fenced block of the final answer, in the right language."""

from __future__ import annotations

import re

_FENCE = re.compile(
    r"^[ \t]*(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)\n(?P<code>.*?)^[ \t]*(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_ALIASES = {
    "python": "python", "python3": "python", "py": "python", "py3": "python",
    "cpp": "cpp", "c++": "cpp", "cxx": "cpp", "cc": "cpp", "c++17": "cpp", "c++20": "cpp", "gnu++17": "cpp",
}  # fmt: skip


def fence_language(info: str) -> str | None:
    """``python``/``cpp`` for a fence's info string, ``""`` when untagged, ``None`` for others."""
    words = info.strip().split()
    if not words:
        return ""
    return _ALIASES.get(words[0].lower())


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
    answer = final_answer(response, strip_think)
    if answer is None:
        return None
    candidates = [m["code"] for m in _FENCE.finditer(answer) if fence_language(m["info"]) in ("", language)]
    if candidates:
        code = candidates[-1] if block == "last" else candidates[0]
        return code if code.strip() else None
    if require_fence or not answer.strip():
        return None
    return answer
