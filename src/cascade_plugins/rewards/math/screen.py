"""Pre-screening: refuse what would make sympy explode before sympy sees it.

sympy evaluates ``9^{9^{9^9}}``, ``100000!`` or a 10,000-digit power eagerly in C, where no deadline
but a process kill can stop it. These checks are cheap string scans that estimate the size of every
power, factorial and binomial written with literal numbers. They are deliberately conservative: an
answer they refuse is compared as text only (never evaluated), so a refusal can cost a rare false
negative on an absurd answer, never a hang.
"""

from __future__ import annotations

import math
import re

__all__ = ["MAX_SYMBOLIC_CHARS", "screen_expression"]

#: Answers longer than this are not handed to the LaTeX parser.
MAX_SYMBOLIC_CHARS = 600
#: Largest number of decimal digits a literal power/factorial may produce.
MAX_RESULT_DIGITS = 5_000
#: Deepest nesting of braces/parentheses accepted (the LaTeX grammar recurses per level).
MAX_NESTING = 24
#: Most ``^`` a symbolic answer may contain.
MAX_POWERS = 30

_NUMBER = r"(?:\d+(?:\.\d+)?)"
_POWER_RE = re.compile(rf"({_NUMBER}|\\pi|e|\))\s*\^\s*(\{{|{_NUMBER}|\()")
_BIG_FACTORIAL_RE = re.compile(r"(\d+)\s*\)?\s*!")
_BINOM_RE = re.compile(r"\\binom\s*\{\s*(\d+)\s*\}")
_BIG_OPERATOR_RE = re.compile(r"\\(?:sum|prod)(?![a-zA-Z])")
_SCRIPT_TOKEN_RE = re.compile(rf"{_NUMBER}|\\[a-zA-Z]+|.", re.DOTALL)
#: Largest literal upper bound of a written-out sum or product.
MAX_OPERATOR_BOUND = 1000
_DIGITS_RE = re.compile(r"\d{400,}")
_EXP_NOTATION_RE = re.compile(r"[eE]\s*\+?\s*(\d{4,})")


def _script(text: str, start: int, mark: str) -> tuple[str, int] | None:
    """The ``_``/``^`` argument of a big operator at ``start`` (a brace group or one token) and where
    it ends, or ``None`` when there is none."""
    i = start
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text) or text[i] != mark:
        return None
    i += 1
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        return None
    if text[i] == "{":
        end = _group_end(text, i)
        return text[i + 1 : end - 1], end
    match = _SCRIPT_TOKEN_RE.match(text, i)
    assert match is not None  # "." matches any character
    return match.group(0), match.end()


def _operator_bounds(text: str, start: int) -> list[str]:
    """The literal bounds of ``\\sum_{k=a}^{b}`` (either order of the scripts) at ``start``."""
    bounds: list[str] = []
    position = start
    for _ in range(2):
        for mark in "_^":
            found = _script(text, position, mark)
            if found is not None:
                argument, position = found
                bounds.append(argument.split("=", 1)[1] if mark == "_" and "=" in argument else argument)
                break
    return bounds


def _too_large(bound: str) -> bool:
    """A bound whose magnitude is a literal number above :data:`MAX_OPERATOR_BOUND`."""
    size = _log10_value(bound.strip().lstrip("+-"))
    return size is not None and size > math.log10(MAX_OPERATOR_BOUND)


def _nesting_depth(text: str) -> int:
    depth = best = 0
    for ch in text:
        if ch in "{([":
            depth += 1
            best = max(best, depth)
        elif ch in "})]":
            depth -= 1
    return best


def _group_end(text: str, start: int) -> int:
    """End index (exclusive) of the exponent group that starts at ``start``."""
    opening = text[start]
    if opening not in "{(":
        match = re.match(_NUMBER, text[start:])
        return start + (match.end() if match else 1)
    closing = "}" if opening == "{" else ")"
    depth = 0
    for i in range(start, len(text)):
        if text[i] == opening:
            depth += 1
        elif text[i] == closing:
            depth -= 1
            if depth == 0:
                return i + 1
    return len(text)


def _log10_value(text: str, depth: int = 0) -> float | None:
    """log10 of the magnitude of a literal exponent expression such as ``{9^{9^9}}`` or ``(5^5)-4``;
    ``None`` when it holds something other than numbers, powers and + - * (then sympy keeps it
    symbolic, which is cheap); ``inf`` when it is astronomically large."""
    s = text.strip()
    while s and s[0] in "{(" and _group_end(s, 0) == len(s):
        s = s[1:-1].strip()
    if depth > 8:
        return math.inf
    if re.fullmatch(_NUMBER, s):
        value = float(s) if len(s) < 300 else math.inf
        return math.log10(value) if value > 0 else -math.inf
    # a + b, a - b, a * b: the size is dominated by the largest term (or the sum of logs for *)
    terms = _split_top_level(s, "+-")
    if len(terms) > 1:
        logs = [_log10_value(t, depth + 1) for t in terms if t.strip()]
        if any(v is None for v in logs):
            return None
        return max(logs) + 1 if logs else None  # type: ignore[type-var]
    factors = (
        _split_top_level(s, "*")
        if "*" in s
        else _split_top_level(s.replace("\\cdot", "*").replace("\\times", "*"), "*")
    )
    if len(factors) > 1:
        logs = [_log10_value(f, depth + 1) for f in factors]
        if any(v is None for v in logs):
            return None
        return sum(logs)  # type: ignore[arg-type]
    caret = _top_level_caret(s)
    if caret is not None:
        base = _log10_value(s[:caret], depth + 1)
        exponent = _log10_value(s[caret + 1 :], depth + 1)
        if base is None or exponent is None:
            return None
        if exponent > 300:
            return math.inf
        return abs(base) * (10**exponent) if base > 0 else 0.0
    return None


def _split_top_level(text: str, operators: str) -> list[str]:
    parts, depth, current = [], 0, []
    for i, ch in enumerate(text):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if depth == 0 and ch in operators and i > 0 and text[i - 1] not in "^eE":
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _top_level_caret(text: str) -> int | None:
    depth = 0
    for i, ch in enumerate(text):
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        elif ch == "^" and depth == 0:
            return i
    return None


def screen_expression(text: str) -> str | None:
    """Why ``text`` must not be evaluated symbolically, or ``None`` when it is safe."""
    if len(text) > MAX_SYMBOLIC_CHARS:
        return f"answer too long for symbolic evaluation ({len(text)} > {MAX_SYMBOLIC_CHARS} chars)"
    if _nesting_depth(text) > MAX_NESTING:
        return f"brackets nested deeper than {MAX_NESTING}"
    if text.count("^") > MAX_POWERS:
        return f"more than {MAX_POWERS} powers"
    if _DIGITS_RE.search(text):
        return "a number literal with 400 or more digits"
    match = _EXP_NOTATION_RE.search(text)
    if match and int(match.group(1)) > 1000:
        return "scientific notation exponent above 1000"
    for match in _BIG_FACTORIAL_RE.finditer(text):
        if int(match.group(1)) > 1000:
            return f"factorial of {match.group(1)}"
    for match in _BINOM_RE.finditer(text):
        if len(match.group(1)) > 6:
            return "binomial coefficient of a huge number"
    for match in _BIG_OPERATOR_RE.finditer(text):
        for bound in _operator_bounds(text, match.end()):
            if _too_large(bound):
                return f"a sum or product with a bound of {bound.strip()}"
    for match in _POWER_RE.finditer(text):
        base_text = match.group(1)
        exponent_start = match.start(2)
        exponent_text = text[exponent_start : _group_end(text, exponent_start)]
        log_exponent = _log10_value(exponent_text)
        if log_exponent is None:
            continue
        if base_text == ")":
            log_base = 1.0  # unknown base: assume it is at least 10 (conservative)
        elif base_text in ("\\pi", "e"):
            log_base = 0.5
        else:
            value = float(base_text)
            if value in (0.0, 1.0):
                continue
            log_base = abs(math.log10(value)) if value > 0 else 0.0
        if log_exponent > 12:
            return "power tower with an astronomically large exponent"
        digits = log_base * (10**log_exponent)
        if digits > MAX_RESULT_DIGITS:
            return f"a power with about {digits:.3g} digits"
    return None
