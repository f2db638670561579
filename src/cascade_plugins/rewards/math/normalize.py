"""Answer normalization: from what a model wrote to a canonical LaTeX-ish string.

Each rule is a small string rewrite: math delimiters, ``\\left``/``\\right``, spacing commands,
``\\dfrac``-style variants, unicode symbols, thousands separators written as ``{,}`` or ``,\\!``,
degrees, percent, ``\\text{}`` wrappers and trailing units, malformed ``\\frac12``/``\\sqrt3``.
Percent and degrees are removed but remembered (``Normalized.percent``/``degrees``) because they
change which values an answer may equal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Normalized", "canonical_text", "match_brace", "normalize_answer", "parse_unit", "strip_math_delimiters"]

#: Answers longer than this are cut (and will be compared as text only).
MAX_ANSWER_CHARS = 2000

_UNICODE = {
    "≤": r" \leq ",
    "≥": r" \geq ",
    "≠": r" \neq ",
    "−": "-",
    "–": "-",
    "×": r" \times ",
    "·": r" \cdot ",
    "÷": r" \div ",
    "π": r"\pi ",
    "∞": r"\infty ",
    "√": r"\sqrt",
    "²": "^2",
    "³": "^3",
    "∪": r" \cup ",
    "∩": r" \cap ",
    "∈": r" \in ",
    "±": r" \pm ",
    "＞": ">",
    "＜": "<",
    "＝": "=",
    "，": ",",
    "（": "(",
    "）": ")",
    "∣": r" \mid ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_SIZING_RE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg)(?![a-zA-Z])")
_STYLE_RE = re.compile(r"\\(?:displaystyle|textstyle|scriptstyle|limits|nolimits)(?![a-zA-Z])")
_FRAC_VARIANT_RE = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM_VARIANT_RE = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_RELATION_ALIASES = [
    (re.compile(r"\\leqslant(?![a-zA-Z])|\\le(?![a-zA-Z])"), r"\\leq "),
    (re.compile(r"\\geqslant(?![a-zA-Z])|\\ge(?![a-zA-Z])"), r"\\geq "),
    (re.compile(r"\\ne(?![a-zA-Z])"), r"\\neq "),
    (re.compile(r"\\lt(?![a-zA-Z])"), "<"),
    (re.compile(r"\\gt(?![a-zA-Z])"), ">"),
]
_THOUSANDS_RE = re.compile(r"(?<=\d)(?:\{,\}|,\\!\s*|\\,(?=\d{3}(?!\d)))(?=\d)")
_SPACING_RE = re.compile(r"(?<!\\)\\[,;:> ]|\\q?quad(?![a-zA-Z])|~|\\hspace\{[^{}]*\}|\\enspace(?![a-zA-Z])")
_NEGSPACE_RE = re.compile(r"(?<!\\)\\!")
#: ``\\frac`` (a JSON-escaped command) -> ``\frac``; only outside environments, where ``\\`` is a row break
_DOUBLE_BACKSLASH_RE = re.compile(r"\\\\(?=[a-zA-Z])")
_DEGREE_RE = re.compile(
    r"\s*(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|°|\^\s*\{\s*\\text\{\s*o\s*\}\s*\})"
    r"(?:\s*(?:C|F)(?![a-zA-Z]))?"
)
_DEGREE_WORD_RE = re.compile(r"\s*(?:\\text\{\s*)?(?:degrees?|deg)(?:\s*\})?\s*$", re.IGNORECASE)
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|(?:\\text\{\s*)?(?:percentage|percent|pct)(?:\s*\})?)\s*$", re.IGNORECASE)
_TEXT_CMD = (
    r"\\(?:text|textrm|textnormal|textbf|textit|textsf|texttt|mbox|mathrm|mathit|mathbf|mathsf|mathtt"
    r"|boldsymbol|bm|operatorname)"
)
_TEXT_RE = re.compile(_TEXT_CMD + r"\s*\{([^{}]*)\}")
_TRAILING_TEXT_UNIT_RE = re.compile(
    r"^(?P<body>.*?[\w})\]])\s*" + _TEXT_CMD + r"\s*\{\s*(?P<unit>[A-Za-z][A-Za-z .]*?)\s*\}"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*\.?$"
)
#: Unit words that may follow a number without a space (``5cm``); longer words need a space.
_UNITS = (
    "km|cm|mm|nm|m|kg|mg|g|ml|mL|l|L|s|sec|ms|min|h|hr|hrs|mph|kph|ft|in|yd|mi|lb|lbs|oz|units|"
    "dollars|cents|meters|metres|inches|feet|miles|hours|minutes|seconds|days|years|weeks"
)
_TRAILING_UNIT_RE = re.compile(
    rf"^(?P<body>.*?\d)\s*(?:(?:{_UNITS})(?:\s*\^\s*\{{?[23]\}}?)?|\s(?:sq\.?\s*)?[A-Za-z]{{2,}}(?:\s+[A-Za-z]{{2,}}){{0,2}})\.?$"
)
#: names of functions and constants written as words in LaTeX answers (``\sin``, ``\pi``, ``ln``)
MATH_FUNCTION_NAMES = frozenset(
    [
        "sin", "cos", "tan", "cot", "sec", "csc", "log",
        "ln", "exp", "sqrt", "pi", "infty", "arcsin", "arccos",
        "arctan", "sinh", "cosh", "tanh", "mod",
    ]
)
#: words that end an answer without being a unit: function names, connectives, the constants i and e
_MATH_WORDS = MATH_FUNCTION_NAMES | {"and", "or", "i", "e", "pmod"}
#: ``\\frac12``, ``\\frac ab``, ``\\frac{1+a}c``, ``\\frac a{b+1}``: one-character arguments without braces
_MALFORMED_FRAC_DD_RE = re.compile(r"\\frac\s*([0-9A-Za-z])\s*([0-9A-Za-z])")
_MALFORMED_FRAC_BD_RE = re.compile(r"\\frac\s*(\{[^{}]*\})\s*([0-9A-Za-z])")
_MALFORMED_FRAC_DB_RE = re.compile(r"\\frac\s*([0-9A-Za-z])\s*(\{)")
#: a ``\\frac`` or ``\\binom`` whose ``\\f``/``\\b`` was read as a string escape (form feed, backspace:
#: never in an answer); a tab stays whitespace (``\\t`` in ``\\text`` is also a common literal tab)
_ESCAPED_COMMAND_RE = re.compile(r"[\f\b](?=[a-z]{2,})")
_ESCAPED_COMMAND = {"\f": "\\f", "\b": "\\b"}
#: ``10^(-3)``: a parenthesised exponent is the exponent (``10^{-3}``), not ``10^{(}`` then ``-3)``
_PAREN_EXPONENT_RE = re.compile(r"\^\s*\(([^()]*)\)")
#: ``90^`` at the end of an answer: a degree sign whose ``\\circ`` was lost
_BARE_CARET_RE = re.compile(r"(?<=\d)\s*\^\s*$")
#: ``15th``, ``12^{th}``, ``3rd day``: an ordinal is its number (one trailing word allowed)
_ORDINAL_RE = re.compile(r"^(\d+)\s*(?:\^\s*\{?\s*)?(?:st|nd|rd|th)(?:\s*\})?(?:\s+[A-Za-z]+)?$", re.IGNORECASE)
#: ``f(x) = 1 for all x``: a universal qualifier after the answer does not change it
_QUALIFIER_RE = re.compile(r"\s*(?:\\text\{\s*)?\b(?:for\s+(?:all|every|each|any)|for\s+some)\b.*$", re.IGNORECASE)
_MALFORMED_SQRT_RE = re.compile(r"\\sqrt\s*(\d+|[a-zA-Z](?![a-zA-Z]))")
#: ``x_{1}`` -> ``x_1``, but not ``x_{1}2`` (which is ``x_1 \\cdot 2``, not ``x_{12}``)
_SUBSCRIPT_BRACE_RE = re.compile(r"_\{(\w)\}(?!\w)")
_WHITESPACE_RE = re.compile(r"\s+")
_LEADING_NOISE_RE = re.compile(r"^(?:is\b|[:=]\s*(?![=<>]))\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Normalized:
    """A normalized answer and what was stripped from it."""

    text: str
    percent: bool = False
    degrees: bool = False
    #: the whole answer was a ``\\text{...}`` (a word answer such as ``\\text{Evelyn}``)
    text_answer: bool = False
    #: the trailing unit that was removed, as ``name^power`` (``"meter^2"``), when it is a known unit
    unit: str | None = None


def match_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` that closes the ``{`` at ``open_index`` (escaped braces do not count), or
    -1 when it is never closed."""
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _unwrap_command(text: str, commands: tuple[str, ...]) -> str:
    """``\\boxed{X}`` -> ``X`` when the whole string is one such command."""
    s = text.strip()
    for command in commands:
        if s.startswith(command):
            rest = s[len(command) :].lstrip()
            if rest.startswith("{"):
                close = match_brace(rest, 0)
                if close == len(rest) - 1:
                    return rest[1:close].strip()
    return s


def strip_math_delimiters(text: str) -> str:
    """Remove ``$``, ``$$``, ``\\(...\\)``, ``\\[...\\]`` wrappers and stray ``$`` signs."""
    s = text.strip()
    for _ in range(3):
        before = s
        for left, right in (("$$", "$$"), ("\\[", "\\]"), ("\\(", "\\)"), ("$", "$")):
            if s.startswith(left) and s.endswith(right) and len(s) >= len(left) + len(right):
                s = s[len(left) : len(s) - len(right)].strip()
        s = _unwrap_command(s, ("\\boxed", "\\fbox", "\\framebox"))
        if s == before:
            break
    s = s.replace("\\$", "").replace("$", "")
    return s.strip()


#: Spellings of the units a trailing unit is recognised as (plural ``s``/``es`` is removed first).
_UNIT_NAMES = {
    "km": "kilometer", "kilometre": "kilometer", "m": "meter", "metre": "meter", "cm": "centimeter",
    "centimetre": "centimeter", "mm": "millimeter", "millimetre": "millimeter", "nm": "nanometer",
    "ft": "foot", "feet": "foot", "in": "inch", "yd": "yard", "mi": "mile", "kg": "kilogram", "g": "gram",
    "mg": "milligram", "lb": "pound", "lbs": "pound", "oz": "ounce", "s": "second", "sec": "second",
    "ms": "millisecond", "min": "minute", "h": "hour", "hr": "hour", "hrs": "hour", "l": "liter",
    "litre": "liter", "ml": "milliliter", "millilitre": "milliliter", "yr": "year", "mph": "mph", "kph": "kph",
}
_UNIT_CANONICAL = frozenset(_UNIT_NAMES.values()) | {"day", "week", "month", "dollar", "cent"}
_UNIT_POWER_RE = re.compile(r"\^\s*\{?\s*([23])\s*\}?")
_UNIT_WORD_RE = re.compile(r"[A-Za-z]+")


def _unit_name(word: str) -> str | None:
    """The canonical name of a unit word (``"cm"``, ``"meters"``, ``"Feet"``), or ``None``."""
    if word in ("mL", "L"):
        word = word.lower()
    lowered = word if len(word) <= 2 else word.lower()  # "m" and "M" differ; "Meters" is "meters"
    for candidate in (
        lowered,
        lowered[:-1] if lowered.endswith("s") else None,
        lowered[:-2] if lowered.endswith("es") else None,
    ):
        if candidate is None:
            continue
        name = _UNIT_NAMES.get(candidate, candidate)
        if name in _UNIT_CANONICAL:
            return name
    return None


def parse_unit(tail: str) -> str | None:
    """``" \\text{ cm}^2"``, ``"square meters"``, ``"km"`` -> ``"centimeter^2"``, ``"meter^2"``, ``"kilometer^1"``;
    ``None`` for anything that is not one known unit (``"apples"``, ``"square units"``, ``"km/h"``)."""
    words = _UNIT_WORD_RE.findall(_TEXT_RE.sub(lambda m: m.group(1), tail))
    power = 1
    if words and words[0].lower() in ("sq", "square", "cubic"):
        power = 3 if words.pop(0).lower() == "cubic" else 2
    if len(words) != 1 or "/" in tail:
        return None
    name = _unit_name(words[0])
    if name is None:
        return None
    match = _UNIT_POWER_RE.search(tail)
    if match:
        power = int(match.group(1))
    return f"{name}^{power}"


def _strip_units(s: str) -> tuple[str, str | None]:
    """``s`` without a trailing unit, and that unit when it is a known one (see :func:`_parse_unit`)."""
    unit = None
    match = _TRAILING_TEXT_UNIT_RE.match(s)
    if match and match["unit"].strip().lower() not in _MATH_WORDS:
        unit = parse_unit(s[len(match["body"]) :])
        s = match["body"].strip()
    match = _TRAILING_UNIT_RE.match(s)
    if match:
        tail = s[len(match["body"]) :].strip().rstrip(".")
        if not any(word in _MATH_WORDS for word in tail.lower().split()):
            unit = unit or parse_unit(tail)
            s = match["body"].strip()
    return s, unit


def normalize_answer(text: str) -> Normalized:
    """Normalize one extracted answer (see the module docstring for the rules)."""
    s = text[:MAX_ANSWER_CHARS]
    if "\\begin" not in s:
        s = _DOUBLE_BACKSLASH_RE.sub(r"\\", s)
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = _ESCAPED_COMMAND_RE.sub(lambda m: _ESCAPED_COMMAND[m.group(0)], s)
    s = s.replace('\\"', "").strip().strip('"')
    s = strip_math_delimiters(s)
    s = _SIZING_RE.sub("", s)
    s = _STYLE_RE.sub("", s)
    s = _FRAC_VARIANT_RE.sub(r"\\frac", s)
    s = _BINOM_VARIANT_RE.sub(r"\\binom", s)
    for pattern, replacement in _RELATION_ALIASES:
        s = pattern.sub(replacement, s)
    s = _THOUSANDS_RE.sub("", s)
    s = _NEGSPACE_RE.sub("", s)
    s = _SPACING_RE.sub(" ", s)
    s = _WHITESPACE_RE.sub(" ", s).strip()
    s = s.rstrip(" .;")
    s = _LEADING_NOISE_RE.sub("", s)
    s = _PAREN_EXPONENT_RE.sub(r"^{\1}", s)
    qualifier = _QUALIFIER_RE.search(s)
    if qualifier and qualifier.start() > 0:
        s = s[: qualifier.start()].rstrip(" ,")

    stripped_text = _TEXT_RE.fullmatch(s)
    text_answer = stripped_text is not None and any(c.isalpha() for c in stripped_text.group(1))

    percent = False
    match = _PERCENT_RE.search(s)
    if match and match.start() > 0:
        s = s[: match.start()].rstrip()
        percent = True
    degrees = False
    if _BARE_CARET_RE.search(s):
        s = _BARE_CARET_RE.sub("", s)
        degrees = True
    if _DEGREE_RE.search(s):
        s = _DEGREE_RE.sub("", s)
        degrees = True
    match = _DEGREE_WORD_RE.search(s)
    if match and match.start() > 0 and s[: match.start()].rstrip()[-1:].isdigit():
        s = s[: match.start()].rstrip()
        degrees = True
    unit = None
    if not text_answer:
        s, unit = _strip_units(s)
    # unwrap \text{...} and friends (innermost first), keeping their words
    for _ in range(4):
        new = _TEXT_RE.sub(lambda m: m.group(1), s)
        if new == s:
            break
        s = new
    s = _MALFORMED_FRAC_DD_RE.sub(r"\\frac{\1}{\2}", s)
    s = _MALFORMED_FRAC_BD_RE.sub(r"\\frac\1{\2}", s)
    s = _MALFORMED_FRAC_DB_RE.sub(r"\\frac{\1}\2", s)
    s = _MALFORMED_SQRT_RE.sub(r"\\sqrt{\1}", s)
    s = _SUBSCRIPT_BRACE_RE.sub(r"_\1", s)
    s = _WHITESPACE_RE.sub(" ", s).strip().rstrip(" .;,")
    ordinal = _ORDINAL_RE.match(s)
    if ordinal:
        s = ordinal.group(1)
    if not percent:  # "28 \%" inside text that came out of \text{...}
        match = _PERCENT_RE.search(s)
        if match and match.start() > 0:
            s = s[: match.start()].rstrip()
            percent = True
    return Normalized(s, percent=percent, degrees=degrees, text_answer=text_answer, unit=unit)


#: LaTeX tokens: control words, control symbols, whitespace runs, single characters.
_TOKEN_RE = re.compile(r"\\[a-zA-Z]+|\\.|\s+|.", re.DOTALL)
#: Tokens that only change spacing (already mostly removed by :func:`normalize_answer`).
_SPACING_TOKENS = frozenset({"\\,", "\\;", "\\:", "\\!", "\\ "})


def _latex_units(text: str) -> list[tuple[str, ...]]:
    """``text`` as a list of units (one token, or a braced group of several), with every brace pair
    around exactly one unit removed (``x^{2}`` is ``x^2``, ``\\frac{1}{2}`` is ``\\frac12``) and empty
    groups dropped. Braces around two or more units are kept: they decide the meaning
    (``2^{n+1}`` is not ``2^{n}+1``, ``\\frac{12}{3}`` is not ``\\frac{1}{23}``)."""
    stack: list[list[tuple[str, ...]]] = [[]]
    for match in _TOKEN_RE.finditer(text):
        token = match.group(0)
        if token.isspace() or token in _SPACING_TOKENS:
            continue
        if token == "{":
            stack.append([])
        elif token == "}" and len(stack) > 1:
            group = stack.pop()
            if len(group) == 1:
                stack[-1].append(group[0])
            elif group:
                stack[-1].append(("{", *(t for unit in group for t in unit), "}"))
        else:
            stack[-1].append((token,))
    while len(stack) > 1:  # an unclosed group keeps its brace
        group = stack.pop()
        stack[-1].append(("{", *(t for unit in group for t in unit)))
    return stack[0]


def canonical_text(text: str, *, fold_case: bool = False) -> str:
    """A comparison key for answers compared as text: LaTeX tokens without spacing, and without the
    braces that do not change the meaning (see :func:`_latex_units`). Letter case is kept (``X`` and
    ``x`` are different variables) unless ``fold_case`` is set, which is for word answers only
    (``\\text{Yes}`` is ``yes``)."""
    units = _latex_units(text)
    if len(units) == 1 and units[0][:1] == ("{",) and units[0][-1:] == ("}",):
        units = [units[0][1:-1]]  # "{x+1}" is "x+1"
    key = " ".join(token for unit in units for token in unit)
    return key.casefold() if fold_case else key
