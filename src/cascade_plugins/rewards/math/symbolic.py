"""Symbolic equality with sympy, guarded by the pre-screen. Runs inside worker processes.

LaTeX leaves are parsed by ``latex2sympy2_extended`` (the ANTLR grammar Math-Verify uses) after our
own normalization. Equality is decided in cheap-to-expensive order: structural equality, exact
rational comparison, high-precision numeric evaluation (no free symbols), and for expressions with
variables a numeric identity test at several fixed points (falling back to ``simplify``).
"""

from __future__ import annotations

import itertools
import math
import random
import re
from fractions import Fraction
from functools import lru_cache
from typing import Any

import sympy

from cascade_plugins.rewards.math.numbers import close_enough
from cascade_plugins.rewards.math.screen import screen_expression

__all__ = [
    "Refused",
    "equations_equal",
    "expressions_equal",
    "inequalities_equal",
    "rename_variables",
    "solution_set_equals",
    "to_sympy",
    "warm_up",
]

#: Digits used for numeric evaluation.
PRECISION = 40
#: Relative difference under which two evaluations count as the same exact value.
EXACT_EPS = 1e-30
#: Relative difference under which two expressions agree at a sample point (identity test).
IDENTITY_EPS = 1e-20
IDENTITY_POINTS = 5


class Refused(ValueError):
    """An answer that must not be evaluated (the pre-screen's reason is the message)."""


def warm_up() -> None:
    """Import and exercise the parser once (a worker initializer), so deadlines measure tasks only."""
    for latex in ("\\frac{1}{2}+x", "\\sqrt{2}\\pi", "(1, 2)", "x^{2}-\\sin x", "\\begin{pmatrix}1 & 2\\end{pmatrix}"):
        to_sympy(latex)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    config = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False
    )

    def parse(latex: str) -> Any:
        return latex2sympy(latex, normalization_config=config)

    return parse


_IMAGINARY = sympy.Symbol("i")
#: Plain arithmetic with one-letter variables ("2x+3", "(x+1)^2") skips the (slow) LaTeX grammar.
_PLAIN_EXPRESSION_RE = re.compile(r"^(?!.*[A-Za-z]{2})[0-9A-Za-z+\-*/^(). ]+$")
_PLAIN_NAMES = {"e": sympy.E, "i": sympy.I}


@lru_cache(maxsize=1)
def _plain_transformations() -> tuple[Any, ...]:
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        standard_transformations,
    )

    return (*standard_transformations, implicit_multiplication_application, convert_xor)


def _parse_plain(text: str) -> Any | None:
    from sympy.parsing.sympy_parser import parse_expr

    names = dict(_PLAIN_NAMES)
    names.update({ch: sympy.Symbol(ch) for ch in set(text.lower()) if ch.isalpha() and ch not in names})
    try:
        expr = parse_expr(text.lower(), local_dict=names, transformations=_plain_transformations(), evaluate=False)
    except Exception:
        return None
    return expr if isinstance(expr, sympy.Expr) else None


@lru_cache(maxsize=16384)
def to_sympy(latex: str) -> Any:
    """sympy object for a LaTeX leaf (cached: gold answers repeat). Raises :class:`Refused` when the
    pre-screen rejects it and ``ValueError`` when it does not parse."""
    reason = screen_expression(latex)
    if reason is not None:
        raise Refused(reason)
    expr = _parse_plain(latex) if _PLAIN_EXPRESSION_RE.match(latex) else None
    if expr is None:
        try:
            expr = _parser()(latex)
        except Exception as exc:  # the ANTLR parser raises bare Exception subclasses
            raise ValueError(f"cannot parse {latex!r}: {exc}") from None
    if isinstance(expr, sympy.Basic) and _IMAGINARY in expr.free_symbols:
        expr = expr.subs(_IMAGINARY, sympy.I)
    return expr


def _has_float(expr: Any) -> bool:
    return isinstance(expr, sympy.Basic) and bool(expr.atoms(sympy.Float))


def _numeric(expr: Any) -> complex | None:
    try:
        value = sympy.N(expr, PRECISION)
    except Exception:
        return None
    if not value.is_number:
        return None
    try:
        return complex(value)
    except (TypeError, ValueError):
        return None


def _numbers_equal(a: Any, b: Any, tolerance: float, a_decimal: bool, b_decimal: bool) -> bool:
    """Two closed-form numbers: exact equality, or a decimal within ``tolerance`` of an exact
    non-decimal value (same policy as :func:`numbers.numbers_match`)."""
    a_decimal = a_decimal or _has_float(a)
    b_decimal = b_decimal or _has_float(b)
    if isinstance(a, sympy.Rational) and isinstance(b, sympy.Rational) and not (a_decimal or b_decimal):
        return bool(a == b)
    if a.is_finite is False or b.is_finite is False:
        return bool(a == b)
    va, vb = _numeric(a), _numeric(b)
    if va is None or vb is None or not all(math.isfinite(abs(v)) for v in (va, vb)):
        return False  # overflowing values (10000!) are only equal structurally, checked above
    scale = max(1.0, abs(va), abs(vb))
    if abs(va - vb) <= EXACT_EPS * scale:
        return True
    if a_decimal == b_decimal:
        return False
    exact, exact_value = (b, vb) if a_decimal else (a, va)
    if isinstance(exact, sympy.Integer) or (
        exact_value.imag == 0 and float(exact_value.real).is_integer() and exact.is_integer
    ):
        return False
    if abs(va.imag) > 0 or abs(vb.imag) > 0:
        return close_enough(va.real, vb.real, tolerance) and close_enough(va.imag, vb.imag, tolerance)
    return close_enough(Fraction(va.real), Fraction(vb.real), tolerance)


def _sample_points(symbols: list[Any]) -> list[dict[Any, Any]]:
    rng = random.Random(1234)  # fixed: the same input always gets the same verdict
    return [{s: sympy.Rational(rng.randint(1100, 2900), 1000) for s in symbols} for _ in range(IDENTITY_POINTS)]


def _identity(a: Any, b: Any) -> bool:
    """``a == b`` for all values of their variables, by evaluation at fixed points."""
    difference = a - b
    symbols = sorted(difference.free_symbols, key=str)
    checked = 0
    for point in _sample_points(symbols):
        try:
            d = complex(sympy.N(difference.subs(point), 30))
            scale = max(1.0, abs(complex(sympy.N(a.subs(point), 30))))
        except (TypeError, ValueError, ZeroDivisionError):
            continue
        if d != d or abs(d) == float("inf"):  # nan / inf: domain trouble at this point
            continue
        if abs(d) > IDENTITY_EPS * scale:
            return False
        checked += 1
    if checked >= 3:
        return True
    try:
        return bool(sympy.simplify(difference) == 0)
    except Exception:
        return False


def expressions_equal(a: Any, b: Any, tolerance: float, a_decimal: bool = False, b_decimal: bool = False) -> bool:
    """Equality of two sympy expressions (numbers, expressions with variables, sets)."""
    if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
        if a == b:
            return True
        if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
            return (
                isinstance(a, sympy.Set)
                and isinstance(b, sympy.Set)
                and bool(a.symmetric_difference(b) == sympy.S.EmptySet)
            )
        if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
            return False
        if not a.free_symbols and not b.free_symbols:
            return _numbers_equal(a, b, tolerance, a_decimal, b_decimal)
        return _identity(a, b)
    return bool(a == b)


def _constant_ratio(a: Any, b: Any) -> Any | None:
    """``c`` with ``a == c * b`` for a nonzero constant ``c``, or ``None``."""
    if b == 0:
        return None
    try:
        ratio = sympy.cancel(sympy.together(a / b))
    except Exception:
        return None
    if ratio.free_symbols or ratio == 0:
        return None
    return ratio


def equations_equal(l1: Any, r1: Any, l2: Any, r2: Any) -> bool:
    """``l1 = r1`` and ``l2 = r2`` are the same equation: ``l1 - r1`` and ``l2 - r2`` are equal up
    to a nonzero constant factor (``2x + 2 = 0`` is ``x + 1 = 0``)."""
    e1, e2 = sympy.expand(l1 - r1), sympy.expand(l2 - r2)
    if e1 == e2 or e1 == -e2:
        return True
    if {str(s) for s in e1.free_symbols} != {str(s) for s in e2.free_symbols}:
        return False
    return _constant_ratio(e1, e2) is not None


def inequalities_equal(l1: Any, r1: Any, l2: Any, r2: Any) -> bool:
    """``l1 < r1`` and ``l2 < r2`` (same strictness, already oriented) are the same inequality:
    ``r1 - l1`` is a positive constant times ``r2 - l2``."""
    e1, e2 = sympy.expand(r1 - l1), sympy.expand(r2 - l2)
    if e1 == e2:
        return True
    ratio = _constant_ratio(e1, e2)
    return ratio is not None and bool(ratio.is_positive)


_RELATIONS = {"<": sympy.StrictLessThan, "<=": sympy.LessThan, ">": sympy.StrictGreaterThan, ">=": sympy.GreaterThan}
#: Bounds on the renamings tried for ``strict=False`` (permutations of the differing variables).
MAX_RENAMED_VARIABLES = 3


def solution_set_equals(
    ops: list[str], terms: list[Any], intervals: list[tuple[Any, Any, bool, bool]], variable: Any | None
) -> bool:
    """The real solutions of the chain ``terms[0] ops[0] terms[1] ...`` (one variable, which must be
    ``variable`` when given) are exactly the union of ``intervals`` (``(low, high, low_closed,
    high_closed)``, real bounds)."""
    free = set().union(*(t.free_symbols for t in terms))
    if len(free) != 1 or (variable is not None and free != {variable}):
        return False
    (symbol,) = free
    real = sympy.Dummy(str(symbol), real=True)
    solutions: Any = sympy.S.Reals
    for op, left, right in zip(ops, terms, terms[1:], strict=False):
        relation = _RELATIONS[op](left.subs(symbol, real), right.subs(symbol, real))
        solutions = solutions.intersect(sympy.solveset(relation, real, sympy.S.Reals))
    if not isinstance(solutions, sympy.Interval | sympy.Union | sympy.FiniteSet) and solutions != sympy.S.EmptySet:
        return False  # sympy could not solve it (a ConditionSet): no verdict from an unsolved form
    parts = [
        sympy.Interval(low, high, not closed_low, not closed_high) for low, high, closed_low, closed_high in intervals
    ]
    if any(part == sympy.S.EmptySet for part in parts):
        return False  # "[2, 1]" is a malformed interval, not a way of writing nothing
    expected = sympy.Union(*parts)
    if expected.free_symbols or solutions.free_symbols:
        return False
    return bool(solutions.symmetric_difference(expected) == sympy.S.EmptySet)


def rename_variables(a: Any, b: Any) -> list[Any]:
    """``b`` with its own variables renamed to ``a``'s own, in every bijective way (``f(y)`` -> ``f(x)``);
    empty when the counts differ or there are too many to try."""
    if not (isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic)):
        return []
    only_a = sorted(a.free_symbols - b.free_symbols, key=str)
    only_b = sorted(b.free_symbols - a.free_symbols, key=str)
    if not only_b or len(only_a) != len(only_b) or len(only_b) > MAX_RENAMED_VARIABLES:
        return []
    return [b.xreplace(dict(zip(only_b, target, strict=True))) for target in itertools.permutations(only_a)]
