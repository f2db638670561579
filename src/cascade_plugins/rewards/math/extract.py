"""Answer extraction: find the final answer in a (possibly very long) model response.

Rules, each a small function, enabled by ``MathOptions.extractors``. The explicit ones (``boxed``,
``final_answer``, ``answer_line``) compete: the answer written last in the text wins. Only when none
of them finds anything are the fallbacks tried (``choice``, then a response that is nothing but a
short formula, then the later of ``last_math`` and ``last_number``).

- ``boxed``: the last ``\\boxed{...}``/``\\fbox{...}`` with nested braces. Several boxes written
  side by side at the end (``\\boxed{-2} and \\boxed{1}``) form one list answer; identical repeats
  count once; a box far from the last one (an intermediate result) is ignored. Boxes are never
  glued into one string (``\\boxed{840}\\boxed{840}`` is ``840``, not ``840840``).
- ``final_answer``: "The final answer is X" (the Minerva format).
- ``answer_line``: "Answer: X", "the answer is X", "#### X" (GSM8K).
- ``choice``: a multiple-choice letter ("(C)", "answer is C", "\\textbf{C}").
- ``last_math``: the last ``$...$``, ``$$...$$``, ``\\(...\\)`` or ``\\[...\\]`` span.
- ``last_number``: the last number in the text (not one inside malformed math delimiters).

A ``\\boxed{`` that never closes means the answer was cut off: no answer, no fallback.

Everything here is a linear scan (no backtracking regex over the whole text, no rescanning of earlier
boxes) over at most the last ``MAX_SCANNED_CHARS`` characters, so the cost of one response is bounded
whatever its length; a run of more than ``MAX_LIST_BOXES`` boxes (``\\boxed{1}`` repeated 80,000 times)
is no answer. Only the text after the last ``</think>`` is read when a think block closes;
a ``<think>`` that never closes means the model never gave a final answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Extraction", "extract_answer", "extract_choice_letter", "extract_gold", "strip_think"]

#: Text scanned by the fallback rules (``answer_line``, ``choice``, ``last_math``, ``last_number``).
TAIL_CHARS = 4000
#: Longest answer taken from one line (longer lines are cut).
MAX_LINE_ANSWER = 600
#: Most characters allowed between two boxes of the same list answer.
MAX_BOX_GAP = 40
#: Most boxes one list answer may have; a longer run of boxes is a pattern, not an answer (no answer).
MAX_LIST_BOXES = 64
#: Characters the rules read: the end of the response (after the last ``</think>``). Everything here
#: is linear in this, so the cost of one response is bounded whatever its length.
MAX_SCANNED_CHARS = 1_000_000

_BOX_COMMANDS = ("\\boxed", "\\fbox", "\\framebox")
_BOX_START_RE = re.compile(r"\\(?:boxed|fbox|framebox)(?![a-zA-Z])")
#: What may stand between two boxes of one list answer: separators and a few words ("and", "papers
#: and"), never digits or operators (``x = \boxed{3}. Then y = \boxed{5}`` is two results).
_BOX_GAP_RE = re.compile(
    r"^(?:[\s$,;.&:()A-Za-z]|\\[,;:!]|\\q?quad|\\text\s*\{[A-Za-z\s,.()]*\}|\\\\|\\\)|\\\(|\\\]|\\\[)*$"
)
#: An indexed name assigned a box (``y_1 = \boxed{...}``, ``x_{2} = \boxed{...}``), read backwards from the box.
_BOX_LABEL_RE = re.compile(r"(?<![\\A-Za-z])([A-Za-z])_(?:\{(\w+)\}|(\w))\s*=\s*$")
#: Between labelled boxes only separators and "and" ("y_1 = \boxed{3}. Then y_2 = \boxed{5}" is two results).
_LABELLED_GAP_RE = re.compile(
    r"^(?:[\s$,;&]|\\[,;:!]|\\q?quad|\\text\s*\{\s*and\s*\}|\band\b|\\\\|\\\)|\\\(|\\\]|\\\[)*$"
)
_GAP_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]+")
_FINAL_ANSWER_RE = re.compile(r"final\s+answer\s*(?:is|:|=)?\s*:?", re.IGNORECASE)
_ANSWER_LINE_RE = re.compile(r"(?:\banswer\s*(?:is|:)|\banswer\*\*\s*:?|\banswer\s*:\s*\*\*|####)\s*", re.IGNORECASE)
_HOPE_RE = re.compile(r"\.?\s*I hope it is correct.*$", re.IGNORECASE | re.DOTALL)
_CHOICE_PATTERNS = (
    re.compile(r"(?:answer|option|choice)\s*(?:is|:)?\s*(?:\*\*)?\s*\(?\s*([A-J])\s*\)?(?![A-Za-z])", re.IGNORECASE),
    re.compile(r"\\text(?:bf)?\{\s*\(?([A-J])\)?\s*\}"),
    re.compile(r"\(([A-J])\)"),
    re.compile(r"\*\*\s*\(?([A-J])\)?\s*\*\*"),
)
_LETTER_ANSWER_RE = re.compile(
    r"^\s*(?:\\text(?:bf|rm)?\s*\{\s*)?(?:\(\s*)?(?:option\s+|choice\s+)?([A-Ja-j])(?:\s*\))?(?:\s*\})?"
    r"(?:\s*[:.)]\s*.*|\s*)$",
    re.IGNORECASE | re.DOTALL,
)
#: Math spans. A span never contains its own opening delimiter (``\\[ a \\[ b \\]`` is the span ``b``),
#: which keeps every search linear: a failed attempt stops at the next opening.
_INLINE_MATH_RE = re.compile(
    r"\$\$(.+?)\$\$|(?<!\\)\$((?:[^$\n\\]|\\.)+?)\$|\\\(((?:(?!\\\()[^\n])+?)\\\)|\\\[((?:(?!\\\[).)+?)\\\]",
    re.DOTALL,
)
_NUMBER_RE = re.compile(
    r"(?<![A-Za-z0-9.,])[-+]?(?:\d+\s*/\s*\d+(?!\d|\.\d)|[1-9]\d{0,2}(?:,\d{3})+|[1-9]\d{0,2}(?: \d{3})+(?![\d])|\d+)"
    r"(?:[.,]\d+)?(?:\s*(?:\\%|%))?|(?<![A-Za-z0-9.])\.\d+",
    re.ASCII,
)
#: A response that is nothing but a short formula (``\frac{10}{9}``) is its own answer.
WHOLE_ANSWER_CHARS = 120
_PROSE_WORD_RE = re.compile(r"(?<![\\a-zA-Z])[A-Za-z]{3,}")
_DOUBLE_BACKSLASH_RE = re.compile(r"\\\\(?=(?:boxed|fbox|framebox)\b)")


@dataclass(frozen=True, slots=True)
class Extraction:
    """An extracted answer and the rule that found it."""

    answer: str
    method: str
    #: several boxed answers at the end, read as one list
    multiple: bool = False
    #: where the answer ends in the text (the explicit rule written last wins)
    position: int = -1


def strip_think(response: str) -> str | None:
    """The text after the last ``</think>``; ``None`` when a ``<think>`` never closes."""
    close = response.rfind("</think>")
    if close >= 0:
        return response[close + len("</think>") :]
    if "<think>" in response:
        return None
    return response


#: One pass over the text: a box command (with its opening brace), an escaped character (never the
#: first backslash of ``\\\\boxed``, a JSON-doubled command), or a brace.
_BOX_SCAN_RE = re.compile(
    r"\\(?:boxed|fbox|framebox)(?![a-zA-Z])[ \t]*(\{)?|\\(?!\\(?:boxed|fbox|framebox)(?![a-zA-Z])).|[{}]", re.DOTALL
)


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Top-level boxes as ``(start, end, content)``, in order. Unclosed boxes are skipped. One linear
    scan from the first box matches every box's braces."""
    first = _BOX_START_RE.search(text)
    if first is None:
        return []
    found: list[tuple[int, int]] = []  # (command start, brace or token start)
    closes: dict[int, int] = {}  # brace of a box -> its closing brace
    stack: list[int] = []  # open braces; -1 for those that are not a box's
    for match in _BOX_SCAN_RE.finditer(text, first.start()):
        token = match.group(0)
        if token == "{":
            stack.append(-1)
        elif token == "}":
            if stack:
                opened = stack.pop()
                if opened >= 0:
                    closes[opened] = match.start()
        elif len(token) > 2:  # a box command (an escape is two characters)
            if match.group(1) is None:
                found.append((match.start(), match.end()))
            else:
                brace = match.end() - 1
                found.append((match.start(), brace))
                stack.append(brace)
    boxes: list[tuple[int, int, str]] = []
    last_end = -1
    for start, j in found:
        if start < last_end:
            continue  # nested inside the previous box
        if j < len(text) and text[j] == "{":
            close = closes.get(j)
            if close is None:
                continue
            boxes.append((start, close + 1, text[j + 1 : close].strip()))
            last_end = close + 1
        else:  # "\boxed 5": one token
            k = j
            while k < len(text) and not text[k].isspace() and text[k] not in "$.,;":
                k += 1
            if k > j:
                boxes.append((start, k, text[j:k]))
                last_end = k
    return boxes


def _box_label(text: str, box_start: int) -> tuple[int, str, str] | None:
    """``(label start, base letter, index)`` of ``y_1 =`` written right before a box."""
    match = _BOX_LABEL_RE.search(text, max(0, box_start - 24), box_start)
    if match is None:
        return None
    return match.start(), match.group(1), match.group(2) or match.group(3)


class _TooManyBoxes(Exception):
    """A run of more than :data:`MAX_LIST_BOXES` boxes at the end: no answer."""


def _labelled_boxes(text: str, boxes: list[tuple[int, int, str]]) -> Extraction | None:
    """``y_1 = \\boxed{A} and y_2 = \\boxed{B}`` at the end: one answer ``y_1 = A, y_2 = B`` (an indexed
    family with one base letter and distinct indices names the parts of one answer)."""
    label = _box_label(text, boxes[-1][0])
    if label is None:
        return None
    parts = [(label, boxes[-1])]  # last first; reversed below
    indices = {label[2]}
    for box in reversed(boxes[:-1]):
        earlier = _box_label(text, box[0])
        gap = text[box[1] : parts[-1][0][0]]
        if (
            earlier is None
            or earlier[1] != label[1]
            or earlier[2] in indices
            or len(gap) > MAX_BOX_GAP
            or not _LABELLED_GAP_RE.match(gap)
        ):
            break
        if len(parts) == MAX_LIST_BOXES:
            raise _TooManyBoxes
        parts.append((earlier, box))
        indices.add(earlier[2])
    parts.reverse()
    if len(parts) < 2 or not all(content for _, (_, _, content) in parts):
        return None
    answer = ", ".join(f"{base}_{{{index}}} = {content}" for (_, base, index), (_, _, content) in parts)
    return Extraction(answer, "boxed", multiple=True, position=parts[-1][1][1])


def extract_boxed(text: str) -> Extraction | None:
    boxes = _boxes(text)
    if not boxes:
        return None
    try:
        if len(boxes) > 1:
            labelled = _labelled_boxes(text, boxes)
            if labelled is not None:
                return labelled
        cluster = [boxes[-1]]  # last first; reversed below
        for box in reversed(boxes[:-1]):
            gap = text[box[1] : cluster[-1][0]]
            if len(gap) > MAX_BOX_GAP or not _BOX_GAP_RE.match(gap) or len(_GAP_WORD_RE.findall(gap)) > 4:
                break
            if len(cluster) == MAX_LIST_BOXES:
                raise _TooManyBoxes
            cluster.append(box)
    except _TooManyBoxes:
        return None
    cluster.reverse()
    contents = list(dict.fromkeys(content for _, _, content in cluster if content))  # repeats count once
    if not contents:
        return None
    end = cluster[-1][1]
    if len(contents) == 1:
        return Extraction(contents[0], "boxed", position=end)
    return Extraction(", ".join(contents), "boxed", multiple=True, position=end)


def _rest_of_line(text: str, start: int) -> str:
    end = text.find("\n", start)
    line = text[start : end if end >= 0 else len(text)][:MAX_LINE_ANSWER]
    line = _HOPE_RE.sub("", line).strip()
    if line.startswith("$") or line.startswith("\\(") or line.startswith("\\["):
        spans = list(_INLINE_MATH_RE.finditer(line))
        if spans and spans[0].start() == 0:
            return next(g for g in spans[0].groups() if g is not None).strip()
    return line.rstrip(" .")


def _last_match(pattern: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in pattern.finditer(text):  # noqa: B007 - we want the last one
        pass
    return last


def extract_final_answer(text: str) -> Extraction | None:
    offset = max(0, len(text) - TAIL_CHARS * 4)
    match = _last_match(_FINAL_ANSWER_RE, text[offset:])
    if match is None:
        return None
    answer = _rest_of_line(text[offset:], match.end())
    return Extraction(answer, "final_answer", position=offset + match.end()) if answer else None


def extract_answer_line(text: str) -> Extraction | None:
    offset = max(0, len(text) - TAIL_CHARS)
    match = _last_match(_ANSWER_LINE_RE, text[offset:])
    if match is None:
        return None
    answer = _rest_of_line(text[offset:], match.end()).strip("* ")
    return Extraction(answer, "answer_line", position=offset + match.end()) if answer else None


def extract_last_math(text: str) -> Extraction | None:
    match = _last_match(_INLINE_MATH_RE, text[-TAIL_CHARS:])
    if match is None:
        return None
    answer = next(g for g in match.groups() if g is not None).strip()
    return Extraction(answer, "last_math") if answer else None


def extract_last_number(text: str) -> Extraction | None:
    match = _last_match(_NUMBER_RE, text[-TAIL_CHARS:])
    if match is None:
        return None
    return Extraction(match.group(0).strip(), "last_number")


def extract_last_value(text: str, use_math: bool, use_number: bool) -> Extraction | None:
    """Whichever of the last math span and the last number comes later in the text."""
    candidates: list[tuple[int, Extraction]] = []
    tail = text[-TAIL_CHARS:]
    if use_math:
        match = _last_match(_INLINE_MATH_RE, tail)
        if match is not None:
            answer = next(g for g in match.groups() if g is not None).strip()
            if answer:
                candidates.append((match.end(), Extraction(answer, "last_math")))
    if use_number:
        match = _last_match(_NUMBER_RE, tail)
        if match is not None and not _inside_broken_math(tail, match.start()):
            candidates.append((match.end(), Extraction(match.group(0).strip(), "last_number")))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _inside_broken_math(text: str, position: int) -> bool:
    """A number between ``$``/``\\(`` delimiters that did not form a valid span (one that crosses
    lines, for instance) is part of malformed math, not a final answer."""
    dollars_before = len(re.findall(r"(?<!\\)\$", text[:position]))
    if dollars_before % 2 == 1 and re.search(r"(?<!\\)\$", text[position:]):
        return True
    return text.rfind("\\(", 0, position) > text.rfind("\\)", 0, position) and "\\)" in text[position:]


def extract_whole(text: str) -> Extraction | None:
    """The whole response when it is a short bare formula (no prose)."""
    stripped = text.strip()
    if not stripped or len(stripped) > WHOLE_ANSWER_CHARS or "\n" in stripped:
        return None
    if _PROSE_WORD_RE.search(re.sub(r"\\text\{[^{}]*\}", "", stripped)):
        return None
    return Extraction(stripped, "whole")


def _within_prose(found: Extraction) -> Extraction:
    """An answer line that is a sentence ("The volume is 120") -> the value inside it."""
    answer = found.answer
    if not _PROSE_WORD_RE.search(re.sub(r"\\text\{[^{}]*\}|\$[^$]*\$", "", answer)):
        return found
    words = _PROSE_WORD_RE.findall(answer)
    if len(words) < 2:
        return found
    inner = extract_last_value(answer, use_math=True, use_number=True)
    return Extraction(inner.answer, found.method, position=found.position) if inner is not None else found


def extract_choice_letter(answer: str, letters: str) -> str | None:
    """The choice letter an extracted answer names (``"(C)"``, ``"\\text{C}"``, ``"C) 42"``)."""
    match = _LETTER_ANSWER_RE.match(answer.replace("$", ""))
    if match and match.group(1).upper() in letters:
        return match.group(1).upper()
    return None


def extract_choice(text: str, letters: str) -> Extraction | None:
    tail = text[-TAIL_CHARS:]
    for pattern in _CHOICE_PATTERNS:
        match = _last_match(pattern, tail)
        if match is not None and match.group(1).upper() in letters:
            return Extraction(match.group(1).upper(), "choice")
    return None


_EXPLICIT_RULES = ("boxed", "final_answer", "answer_line")
_RULES = (*_EXPLICIT_RULES, "choice", "last_math", "last_number")


def extract_answer(
    response: str, extractors: Iterable[str], *, strip_think_block: bool = True, choices: str | None = None
) -> Extraction | None:
    """The final answer of ``response`` by the first rule of ``extractors`` that finds one."""
    text: str | None = response
    if strip_think_block:
        text = strip_think(response)
        if text is None:
            return None
    assert text is not None
    text = text[-MAX_SCANNED_CHARS:]
    if "\\\\" in text:
        text = _DOUBLE_BACKSLASH_RE.sub(r"\\", text)
    rules = list(extractors)
    unknown = [r for r in rules if r not in _RULES]
    if unknown:
        raise ValueError(f"unknown extraction rule(s) {unknown}")
    explicit: list[Extraction] = []
    if "boxed" in rules:
        found = extract_boxed(text)
        if found is not None:
            explicit.append(found)
    if "final_answer" in rules:
        found = extract_final_answer(text)
        if found is not None:
            explicit.append(_within_prose(found))
    if "answer_line" in rules:
        found = extract_answer_line(text)
        if found is not None:
            explicit.append(_within_prose(found))
    explicit = [e for e in explicit if e.answer]
    if explicit:  # the answer written last is the final one
        return max(explicit, key=lambda e: e.position)
    if "boxed" in rules and _BOX_START_RE.search(text[-TAIL_CHARS:]):
        return None  # a box that never closes: the answer was cut off

    for rule in rules:
        found = None
        if rule in _EXPLICIT_RULES:
            continue
        if rule == "choice":
            found = extract_choice(text, choices) if choices else None
        elif rule in ("last_math", "last_number"):
            # the two fallbacks compete: the later one in the text wins
            found = extract_whole(text) or extract_last_value(
                text, use_math="last_math" in rules, use_number="last_number" in rules
            )
        if found is not None and found.answer:
            return found
    return None


def extract_gold(ground_truth: str) -> str:
    """The reference answer: the boxed part of a worked solution, else the string itself."""
    if _BOX_START_RE.search(ground_truth):
        found = extract_boxed(ground_truth)
        if found is not None:
            return found.answer
    if len(ground_truth) > MAX_LINE_ANSWER:
        found = extract_final_answer(ground_truth) or extract_answer_line(ground_truth)
        if found is not None:
            return found.answer
    return ground_truth.strip()
