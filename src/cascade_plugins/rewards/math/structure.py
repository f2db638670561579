"""The shape of an answer: numbers, tuples, lists, sets, intervals, unions, matrices, relations.

:func:`parse_structure` splits a normalized answer at its top level (commas, ``\\cup``, relation
signs, brackets) into small nodes. Leaves are plain numbers (:class:`Num`, exact, no sympy), words
(:class:`Text`) or LaTeX left for sympy (:class:`Sym`). Keeping the structure ourselves, instead of
letting a LaTeX parser guess, is what keeps ``(2, 1)`` a point (not an empty open interval) and
``3x+4y+14=0`` an equation (not ``0``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Literal

from cascade_plugins.rewards.math.normalize import MATH_FUNCTION_NAMES
from cascade_plugins.rewards.math.numbers import PlainNumber, parse_plain_number

__all__ = [
    "Alt",
    "Interval",
    "Matrix",
    "Node",
    "Num",
    "Relation",
    "Seq",
    "Sym",
    "Text",
    "Union",
    "is_symbol",
    "parse_structure",
    "scaled",
]

MAX_DEPTH = 12
MAX_ITEMS = 64


@dataclass(frozen=True, slots=True)
class Num:
    number: PlainNumber
    src: str


@dataclass(frozen=True, slots=True)
class Sym:
    """LaTeX that needs sympy to be understood."""

    src: str


@dataclass(frozen=True, slots=True)
class Text:
    src: str


@dataclass(frozen=True, slots=True)
class Seq:
    kind: Literal["tuple", "list", "set"]
    items: tuple[Node, ...]
    src: str


@dataclass(frozen=True, slots=True)
class Interval:
    left_closed: bool
    low: Node
    high: Node
    right_closed: bool
    src: str
    #: the variable when the interval was written as an inequality (``-2 \le x \le 7``)
    var: str | None = None
    #: that inequality, kept for comparison with inequalities that are not intervals (``-x > -1``)
    relation: Relation | None = None


@dataclass(frozen=True, slots=True)
class Union:
    parts: tuple[Node, ...]
    src: str


@dataclass(frozen=True, slots=True)
class Matrix:
    rows: tuple[tuple[Node, ...], ...]
    src: str


@dataclass(frozen=True, slots=True)
class Relation:
    """A chain ``t0 op0 t1 op1 t2 ...`` (``=``, ``\\neq``, ``<``, ``\\leq``, ``>``, ``\\geq``, ``\\in``)."""

    ops: tuple[str, ...]
    terms: tuple[Node, ...]
    src: str


@dataclass(frozen=True, slots=True)
class Alt:
    """An ambiguous answer: it matches when any reading matches (``2,74`` is 2.74 or [2, 74])."""

    options: tuple[Node, ...]
    src: str


Node = Num | Sym | Text | Seq | Interval | Union | Matrix | Relation | Alt

_OPEN, _CLOSE = "([{", ")]}"
_RELATION_TOKENS = (
    ("\\leq", "<="),
    ("\\geq", ">="),
    ("\\neq", "!="),
    ("\\approx", "~"),
    ("\\in", "in"),
    ("<=", "<="),
    (">=", ">="),
    ("!=", "!="),
    ("<", "<"),
    (">", ">"),
    ("=", "="),
)
_LIST_WORD_RE = re.compile(
    r"\s+(?:and|or)\s+|\\text\{\s*(?:and|or)\s*\}|(?<=[)\]])\s*(?:and|or)\s*(?=[(\[])", re.IGNORECASE
)
_SYMBOL_RE = re.compile(r"^(?:[A-Za-z]|\\(?!infty|pi)[a-zA-Z]+)(?:_\{?\w+\}?)?'*$")
_FUNCTION_VALUE_RE = re.compile(r"^[A-Za-z]\(\s*[A-Za-z]\s*\)$|^\|\s*[A-Za-z]\s*\|$")
_TEXT_RE = re.compile(r"^[A-Za-z][A-Za-z'\- ]*[A-Za-z]\.?$")
_CLOCK_OR_BASE_RE = re.compile(r"^\d+:\d+(?::\d+)?$|^\d+_\{?\d+\}?$")
#: words that mark an answer as math rather than text
_MATH_WORDS = MATH_FUNCTION_NAMES | {"frac", "min", "max", "gcd", "lcm", "det"}
_DECIMAL_COMMA_RE = re.compile(r"^[-+]?\d+,\d+$")
_MATRIX_RE = re.compile(r"^\\begin\{([pbBvV]?matrix|array)\}(?:\{[^{}]*\})?(.*)\\end\{\1\}$", re.DOTALL)


def is_symbol(text: str) -> bool:
    """A single variable name (``x``, ``a_1``, ``\\alpha``)."""
    return bool(_SYMBOL_RE.match(text.strip()))


def _looks_like_text(s: str) -> bool:
    if _CLOCK_OR_BASE_RE.match(s):
        return True
    if not _TEXT_RE.match(s):
        return False
    words = re.findall(r"[A-Za-z]+", s)
    return any(len(w) >= 3 and w.lower() not in _MATH_WORDS for w in words)


def _scan_top_level(s: str) -> list[tuple[int, str]]:
    """Top-level positions of separators and relation tokens in ``s`` (outside any brackets)."""
    found: list[tuple[int, str]] = []
    depth = 0
    i, n = 0, len(s)
    while i < n:
        ch = s[i]
        if ch == "\\":
            if s.startswith("\\{", i) or s.startswith("\\}", i):
                depth += 1 if s[i + 1] == "{" else -1
                i += 2
                continue
            if depth == 0:
                for token, name in _RELATION_TOKENS:
                    if (
                        token.startswith("\\")
                        and s.startswith(token, i)
                        and not s[i + len(token) : i + len(token) + 1].isalpha()
                    ):
                        found.append((i, name + "|" + token))
                        i += len(token)
                        break
                else:
                    if s.startswith("\\cup", i) and not s[i + 4 : i + 5].isalpha():
                        found.append((i, "cup|\\cup"))
                        i += 4
                    else:
                        i += 1
                continue
            i += 1
            continue
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif depth == 0:
            if ch in ",;":
                found.append((i, ch + "|" + ch))
            else:
                for token, name in _RELATION_TOKENS:
                    if not token.startswith("\\") and s.startswith(token, i):
                        found.append((i, name + "|" + token))
                        i += len(token) - 1
                        break
        i += 1
    return found


def _split_at(s: str, marks: list[tuple[int, str]]) -> list[str]:
    parts, start = [], 0
    for position, mark in marks:
        parts.append(s[start:position])
        start = position + len(mark.split("|", 1)[1])
    parts.append(s[start:])
    return parts


def _matching_close(s: str, open_index: int) -> int:
    depth = 0
    for i in range(open_index, len(s)):
        if s[i] in _OPEN and not (i > 0 and s[i - 1] == "\\"):
            depth += 1
        elif s[i] in _CLOSE and not (i > 0 and s[i - 1] == "\\"):
            depth -= 1
            if depth == 0:
                return i
    return -1


def _is_numeric_leaf(node: Node) -> bool:
    return isinstance(node, Num) or (
        isinstance(node, Sym) and not re.search(r"[a-zA-Z](?<!\\infty)", _strip_commands(node.src))
    )


def _strip_commands(latex: str) -> str:
    return re.sub(r"\\(?:infty|pi|frac|sqrt|cdot|times|left|right|dfrac)", "", latex)


_INFINITY = {"lower": "-\\infty", "upper": "\\infty"}


def _relation_to_interval(ops: list[str], terms: list[str], src: str, depth: int) -> Node | None:
    """``a < x \\leq b``, ``x > 3``, ``2 \\geq x`` -> an interval over one variable, else ``None``."""
    if any(op not in ("<", "<=", ">", ">=") for op in ops):
        return None
    as_written = Relation(tuple(ops), tuple(_parse(t, depth + 1) for t in terms), src)
    if all(op in (">", ">=") for op in ops):  # flip to ascending
        ops = ["<" if op == ">" else "<=" for op in reversed(ops)]
        terms = list(reversed(terms))
    if not all(op in ("<", "<=") for op in ops):
        return None
    if len(terms) == 3 and (is_symbol(terms[1]) or _FUNCTION_VALUE_RE.match(terms[1])):
        low, high = _parse(terms[0], depth + 1), _parse(terms[2], depth + 1)
        if _is_numeric_leaf(low) and _is_numeric_leaf(high):
            return Interval(ops[0] == "<=", low, high, ops[1] == "<=", src, var=terms[1].strip(), relation=as_written)
    if len(terms) == 2:
        if is_symbol(terms[0]):
            high = _parse(terms[1], depth + 1)
            if _is_numeric_leaf(high):
                return Interval(
                    False, Sym(_INFINITY["lower"]), high, ops[0] == "<=", src, var=terms[0].strip(), relation=as_written
                )
        if is_symbol(terms[1]):
            low = _parse(terms[0], depth + 1)
            if _is_numeric_leaf(low):
                return Interval(
                    ops[0] == "<=", low, Sym(_INFINITY["upper"]), False, src, var=terms[1].strip(), relation=as_written
                )
    return None


def _leaf(s: str) -> Node:
    number = parse_plain_number(s)
    if number is not None:
        return Num(number, s)
    if _looks_like_text(s):
        return Text(s)
    return Sym(s)


def _parse(s: str, depth: int = 0) -> Node:
    s = s.strip().rstrip(".").strip()
    if depth > MAX_DEPTH or not s:
        return Text(s)
    for _ in range(MAX_DEPTH):  # "{{x}}" -> "x"; deeper wrapping is not an answer
        if not (s.startswith("{") and _matching_close(s, 0) == len(s) - 1):
            break
        s = s[1:-1].strip()
    else:
        return Text(s)
    if not s:
        return Text(s)
    number = parse_plain_number(s)
    if number is not None:
        if _DECIMAL_COMMA_RE.match(s):  # "2,74": a decimal comma or a list of two numbers
            items = tuple(_leaf(p) for p in s.split(","))
            return Alt((Num(number, s), Seq("list", items, s)), s)
        return Num(number, s)
    marks = _scan_top_level(s)
    kinds = [mark.split("|", 1)[0] for _, mark in marks]

    # 1. unions of intervals/sets
    cups = [m for m, k in zip(marks, kinds, strict=True) if k == "cup"]
    if cups:
        parts = tuple(_parse(p, depth + 1) for p in _split_at(s, cups))
        return Union(parts, s)

    # 2. lists: commas, semicolons, "and"/"or"
    separators = [m for m, k in zip(marks, kinds, strict=True) if k in (",", ";")]
    if separators or _LIST_WORD_RE.search(s):
        pieces = [p for p in _split_list(s, separators) if p.strip()]
        if len(pieces) > 1:
            pieces = pieces[:MAX_ITEMS]
            # "n = 1, 2, 3": a relation whose right side is the list
            relation_in = [bool(_relation_marks(p)) for p in pieces]
            if relation_in[0] and not any(relation_in[1:]):
                head_marks = _relation_marks(pieces[0])
                if len(head_marks) == 1 and head_marks[0][1].startswith("=|"):
                    lhs, first = _split_at(pieces[0], head_marks)
                    items = tuple(_parse(p, depth + 1) for p in [first, *pieces[1:]])
                    return Relation(("=",), (_parse(lhs, depth + 1), Seq("list", items, s)), s)
            items = _expand_pm(tuple(_parse(_without_trailing_words(p), depth + 1) for p in pieces))
            return _group_assignments(items, s) or Seq("list", items, s)

    # 3. relations
    relations = [m for m, k in zip(marks, kinds, strict=True) if k in ("=", "!=", "<", "<=", ">", ">=", "in", "~")]
    approx = next((i for i, (_, m) in enumerate(relations) if m.startswith("~|")), None)
    if approx is not None:  # "x = 1/3 \approx 0.33": the approximation is commentary
        if approx == 0:
            head = s[: relations[0][0]].strip()
            if is_symbol(head) and len(relations) == 1:  # "x \approx 11": the value is the answer
                value = s[relations[0][0] + len(relations[0][1].split("|", 1)[1]) :]
                return Relation(("=",), (_parse(head, depth + 1), _parse(value, depth + 1)), s)
            return _parse(head, depth + 1)
        s = s[: relations[approx][0]].strip()
        relations = relations[:approx]
    if relations:
        terms = _split_at(s, relations)
        ops = [m.split("|", 1)[0] for _, m in relations]
        if all(t.strip() for t in terms):
            if ops == ["in"]:
                return Relation(("in",), (_parse(terms[0], depth + 1), _parse(terms[1], depth + 1)), s)
            interval = _relation_to_interval(ops, [t.strip() for t in terms], s, depth)
            if interval is not None:
                return interval
            return Relation(tuple(ops), tuple(_parse(t, depth + 1) for t in terms), s)

    # 4. \pm at the top level: two answers
    pm = s.find("\\pm")
    if pm >= 0 and s.count("\\pm") == 1 and _depth_at(s, pm) == 0 and not s[pm + 3 : pm + 4].isalpha():
        head, tail = s[:pm].strip(), s[pm + 3 :].strip()
        if head:
            items = (Sym(f"{head}+{tail}"), Sym(f"{head}-{tail}"))
        else:
            items = (_parse(tail, depth + 1), _parse(f"-{tail}", depth + 1))
        return Seq("list", items, s)

    # 5. brackets: tuples and intervals
    if s[0] in "([" and s[-1] in ")]" and _matching_close(s, 0) == len(s) - 1:
        inner = s[1:-1]
        inner_marks = [m for m in _scan_top_level(inner) if m[1][0] in ",;"]
        items = [p for p in _split_at(inner, inner_marks)]
        if len(items) == 2 and (s[0] == "[" or s[-1] == "]") and all(i.strip() for i in items):
            return Interval(s[0] == "[", _parse(items[0], depth + 1), _parse(items[1], depth + 1), s[-1] == "]", s)
        if len(items) >= 2:
            parsed = tuple(_parse(p, depth + 1) for p in items[:MAX_ITEMS])
            return _tuple_pm_expansion(parsed, s) or Seq("tuple", parsed, s)
        if s[0] == "(" or (s[0] == "[" and "\\begin" in inner):
            return _parse(inner, depth + 1)
    if s.startswith("\\{") and s.endswith("\\}"):
        inner = s[2:-2]
        builder = _SET_BUILDER_RE.match(inner)
        if builder and _depth_at(inner, builder.end()) == 0:
            # {x | -2 < x < 3}: the set is its condition, an inequality over the named variable
            condition = _parse(inner[builder.end() :], depth + 1)
            if (
                isinstance(condition, Interval)
                and condition.var is not None
                and canonical_var(condition.var) == canonical_var(builder.group(1))
            ):
                return condition
        inner_marks = [m for m in _scan_top_level(inner) if m[1][0] in ",;"]
        items = [p for p in _split_at(inner, inner_marks) if p.strip()]
        return Seq("set", _expand_pm(tuple(_parse(p, depth + 1) for p in items[:MAX_ITEMS])), s)
    if s.startswith("{") and _matching_close(s, 0) == len(s) - 1:
        return _parse(s[1:-1], depth + 1)

    # 6. matrices
    match = _MATRIX_RE.match(s)
    if match and "\\begin{" not in match.group(2) and "\\end{" not in match.group(2):
        body = match.group(2).strip()
        rows = [r for r in re.split(r"\\\\", body) if r.strip()]
        cells = tuple(tuple(_parse(c, depth + 1) for c in row.split("&")) for row in rows[:MAX_ITEMS])
        return Matrix(cells, s)

    return _leaf(s)


_SET_BUILDER_RE = re.compile(r"^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*(?:\||\\mid(?![a-zA-Z])|:)\s*")
#: ``7 stuffed goats`` in a list: a number followed by a few words (not a unit) is that number
_NUMBER_WORDS_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s+([A-Za-z]{3,}(?:\s+[A-Za-z]+){0,3})\s*$")
#: ``Minimum: 1`` or ``Paolo: 18`` in a list: a label before a colon names the value
_LABELLED_VALUE_RE = re.compile(r"^\s*[A-Za-z][A-Za-z ]{2,30}:\s*(?=\S)")


def canonical_var(name: str) -> str:
    return re.sub(r"[{}\s]", "", name)


def _without_trailing_words(piece: str) -> str:
    """A list item without a label before it or words after its number (``Paolo: 18`` -> ``18``,
    ``7 stuffed goats`` -> ``7``); a known unit stays (``5 cm`` is not ``5 m``)."""
    from cascade_plugins.rewards.math.normalize import parse_unit

    piece = _LABELLED_VALUE_RE.sub("", piece, count=1)
    match = _NUMBER_WORDS_RE.match(piece)
    if match and parse_unit(match.group(2)) is None and not any(
        w.lower() in _MATH_WORDS or w.lower() in ("and", "or") for w in match.group(2).split()
    ):
        return match.group(1)
    return piece


def _pm_pair(node: Node) -> tuple[Node, Node] | None:
    """The two readings of an item written with one top-level ``\\pm`` (parsed as a two-item list)."""
    pm_item = isinstance(node, Seq) and node.kind == "list" and len(node.items) == 2
    if pm_item and node.src.count("\\pm") == 1 and "," not in node.src:  # type: ignore[union-attr]
        return node.items[0], node.items[1]  # type: ignore[union-attr]
    return None


def _expand_pm(items: tuple[Node, ...]) -> tuple[Node, ...]:
    """``\\{1 \\pm \\sqrt{5}, -2\\}`` -> ``\\{1 + \\sqrt{5}, 1 - \\sqrt{5}, -2\\}``."""
    expanded: list[Node] = []
    for item in items:
        pair = _pm_pair(item)
        expanded.extend(pair if pair else (item,))
    return tuple(expanded[:MAX_ITEMS])


def _tuple_pm_expansion(items: tuple[Node, ...], src: str) -> Seq | None:
    """``(\\pm\\sqrt{2}, 0, \\pm\\sqrt{2})`` -> the four points, one for each choice of signs."""
    choices = [_pm_pair(item) or (item,) for item in items]
    if all(len(c) == 1 for c in choices):
        return None
    points: list[tuple[Node, ...]] = [()]
    for choice in choices:
        points = [(*point, option) for point in points for option in choice]
        if len(points) > MAX_ITEMS:
            return None
    return Seq("list", tuple(Seq("tuple", p, "(" + ", ".join(i.src for i in p) + ")") for p in points), src)


def _group_assignments(items: tuple[Node, ...], src: str) -> Seq | None:
    """``p=5, q=2; p=7, q=2`` -> ``(5, 2), (7, 2)``: assignments to a repeating cycle of variables."""
    names: list[str] = []
    for item in items:
        if not (isinstance(item, Relation) and item.ops == ("=",) and is_symbol(item.terms[0].src)):
            return None
        names.append(item.terms[0].src.strip())
    cycle = len(dict.fromkeys(names))
    if cycle < 2 or len(items) % cycle or len(items) == cycle:
        return None
    if any(names[i] != names[i % cycle] for i in range(len(names))):
        return None
    groups = tuple(_tuple_of_values(items[i : i + cycle]) for i in range(0, len(items), cycle))
    return Seq("list", groups, src)


def _tuple_of_values(assignments: tuple[Node, ...]) -> Seq:
    values = tuple(a.terms[1] for a in assignments)  # type: ignore[union-attr]
    return Seq("tuple", values, "(" + ", ".join(v.src for v in values) + ")")


def _relation_marks(piece: str) -> list[tuple[int, str]]:
    return [m for m in _scan_top_level(piece) if m[1].split("|", 1)[0] in ("=", "!=", "<", "<=", ">", ">=", "in", "~")]


def _depth_at(s: str, index: int) -> int:
    depth = 0
    for ch in s[:index]:
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
    return depth


def _split_list(s: str, separators: list[tuple[int, str]]) -> list[str]:
    pieces = []
    for piece in _split_at(s, separators):
        for sub in _LIST_WORD_RE.split(piece):
            sub = re.sub(r"^\s*(?:and|or)\s+", "", sub, flags=re.IGNORECASE)
            pieces.append(sub)
    return pieces


@lru_cache(maxsize=8192)
def parse_structure(text: str) -> Node:
    """The structure of a normalized answer (cached: gold answers repeat across a batch)."""
    return _parse(text)


def scaled(node: Node, factor: Fraction) -> Node | None:
    """``node`` times ``factor`` for a number-like node (used for percent), else ``None``."""
    if isinstance(node, Num):
        if node.number.huge_digits is not None:
            return None
        value = node.number.value * factor
        places = node.number.decimal_places
        return Num(PlainNumber(value, places + 2 if places is not None else None), f"({node.src})*{factor}")
    if isinstance(node, Sym):
        return Sym(
            f"\\frac{{{node.src}}}{{{factor.denominator}}}" if factor.numerator == 1 else f"{factor}*({node.src})"
        )
    return None
