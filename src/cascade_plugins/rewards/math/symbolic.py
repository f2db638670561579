"""Symbolic equality with sympy, guarded by the pre-screen. Runs inside worker processes.

LaTeX leaves are parsed by ``latex2sympy2_extended`` (the ANTLR grammar Math-Verify uses) after our
own normalization, keeping letter case (``X`` is not ``x``). Equality is decided in cheap-to-expensive
order: structural equality, exact rational comparison, evaluation to 40 digits (no free symbols: two
values are equal only when their difference vanishes at that precision, so ``2^{100}+1`` is not
``2^{100}``), and for expressions with variables an identity test as real functions at 16 fixed points
of both signs and several magnitudes (``x`` is not ``|x|``, ``\\ln x`` is not ``\\ln|x|``), falling back
to ``simplify`` over real variables when the points cannot decide.
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

from cascade_plugins.rewards.math.numbers import close_enough, rounds_to
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
#: Size of an evaluated difference (relative below 1, absolute above) under which two values are the
#: same: sympy evaluates a difference that is exactly zero as zero, so this only absorbs rounding.
EXACT_EPS = 1e-30
#: Sample points of the identity test.
IDENTITY_POINTS = 16
#: Relative size, in double precision, of an imaginary part below which a value counts as real, and of
#: a difference above which two values differ (closer ones are compared at full precision).
REAL_EPS = 1e-12


class Refused(ValueError):
    """An answer that must not be evaluated (the pre-screen's reason is the message)."""


def warm_up() -> None:
    """Import and exercise the parser once (a worker initializer), so deadlines measure tasks only."""
    for latex in ("\\frac{1}{2}+x", "\\sqrt{2}\\pi", "(1, 2)", "x^{2}-\\sin x", "\\begin{pmatrix}1 & 2\\end{pmatrix}"):
        to_sympy(latex)


@lru_cache(maxsize=1)
def _parser() -> Any:
    from latex2sympy2_extended import latex2sympy
    from latex2sympy2_extended.latex2sympy2 import ConversionConfig
    from latex2sympy2_extended.math_normalization import NormalizationConfig

    config = NormalizationConfig(
        basic_latex=True, units=False, malformed_operators=True, nits=False, boxed="none", equations=False
    )
    # letter case is part of a variable's name: X and x are different unknowns
    conversion = ConversionConfig(lowercase_symbols=False)

    def parse(latex: str) -> Any:
        return latex2sympy(latex, normalization_config=config, conversion_config=conversion)

    return parse


_IMAGINARY = sympy.Symbol("i")
#: Plain arithmetic with one-letter variables ("2x+3", "(x+1)^2") skips the (slow) LaTeX grammar.
_PLAIN_EXPRESSION_RE = re.compile(r"^(?!.*[A-Za-z]{2})[0-9A-Za-z+\-*/^(). ]+$")
_PLAIN_NAMES = {"e": sympy.E, "i": sympy.I}
#: ``\\Gamma`` written as a letter, not applied as the gamma function
_BARE_CAPITAL_GAMMA_RE = re.compile(r"\\Gamma(?![a-zA-Z])(?!\s*\()|Γ(?!\s*\()")


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
    names.update({ch: sympy.Symbol(ch) for ch in set(text) if ch.isalpha() and ch not in names})
    try:
        expr = parse_expr(text, local_dict=names, transformations=_plain_transformations(), evaluate=False)
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
    if isinstance(expr, sympy.Basic) and _BARE_CAPITAL_GAMMA_RE.search(latex) and "\\gamma" not in latex:
        expr = expr.xreplace({sympy.EulerGamma: sympy.Symbol("Gamma")})  # the parser reads both as Euler's γ
    return expr


def _has_float(expr: Any) -> bool:
    return isinstance(expr, sympy.Basic) and bool(expr.atoms(sympy.Float))


def _exact_decimals(expr: Any) -> Any:
    """``expr`` with each decimal as the exact number it writes (``0.5x`` is ``x/2``, not a 53-bit float
    times ``x``); whether a decimal may approximate is decided by the callers' decimal flags."""
    floats = expr.atoms(sympy.Float)
    return expr.xreplace({f: sympy.Rational(str(f)) for f in floats}) if floats else expr


def _evaluate(expr: Any, digits: int = PRECISION) -> tuple[Any, complex] | None:
    """``expr`` evaluated to ``digits`` significant digits (sympy's evalf raises its working precision
    where terms cancel): that sympy number and its double-precision value; ``None`` when it is not a
    finite number."""
    try:
        value = sympy.N(expr, digits)
        if not value.is_number:
            return None
        approx = complex(value)
    except Exception:
        return None
    if approx != approx or not math.isfinite(abs(approx)):  # nan / inf: a pole or domain trouble here
        return None
    return value, approx


#: Largest magnitude at which :data:`PRECISION` digits keep the absolute error below :data:`EXACT_EPS`.
_PLAIN_PRECISION_LIMIT = 1e9


def _same_value(a: Any, b: Any, value_a: tuple[Any, complex], value_b: tuple[Any, complex]) -> bool:
    """``a`` and ``b`` (evaluated as ``value_a``, ``value_b``) are the same number: their difference, at
    enough digits that its rounding error is below ``EXACT_EPS``, is at most ``EXACT_EPS`` relative to
    the values below 1 and absolute above (``2^{100}+1`` is not ``2^{100}``, ``2^{-100}`` is not
    ``2^{-99}``)."""
    magnitude = max(abs(value_a[1]), abs(value_b[1]))
    if abs(value_a[1] - value_b[1]) > REAL_EPS * magnitude:
        return False  # apart already in double precision
    if magnitude > _PLAIN_PRECISION_LIMIT:  # one more digit per power of ten
        digits = PRECISION + math.ceil(math.log10(magnitude))
        again_a, again_b = _evaluate(a, digits), _evaluate(b, digits)
        if again_a is None or again_b is None:
            return False
        value_a, value_b = again_a, again_b
    try:
        difference = abs(complex(value_a[0] - value_b[0]))
    except Exception:
        return False
    return math.isfinite(difference) and difference <= EXACT_EPS * min(1.0, magnitude)


def _numbers_equal(
    a: Any, b: Any, tolerance: float, a_decimal: bool, b_decimal: bool, gold_places: int | None = None
) -> bool:
    """Two closed-form numbers: exact equality, or a decimal within ``tolerance`` of an exact
    non-decimal value (same policy as :func:`numbers.numbers_match`)."""
    if isinstance(a, sympy.Rational) and isinstance(b, sympy.Rational) and not (a_decimal or b_decimal):
        return bool(a == b)
    if a.is_finite is False or b.is_finite is False:
        return bool(a == b)
    value_a, value_b = _evaluate(a), _evaluate(b)
    if value_a is None or value_b is None:
        return False  # overflowing values (10000!) are only equal structurally, checked above
    if _same_value(a, b, value_a, value_b):
        return True
    va, vb = value_a[1], value_b[1]
    if a_decimal == b_decimal:
        return False
    exact, exact_value = (b, vb) if a_decimal else (a, va)
    if isinstance(exact, sympy.Integer) or (
        exact_value.imag == 0 and float(exact_value.real).is_integer() and exact.is_integer
    ):
        return False
    if abs(va.imag) > 0 or abs(vb.imag) > 0:
        return close_enough(va.real, vb.real, tolerance) and close_enough(va.imag, vb.imag, tolerance)
    if gold_places and a_decimal and not b_decimal and isinstance(a, sympy.Rational) and rounds_to(
        Fraction(vb.real), Fraction(int(a.p), int(a.q)), gold_places
    ):
        return True  # a rounded gold (41.494) and the exact value it rounds (17 + 10\sqrt{6})
    return close_enough(Fraction(va.real), Fraction(vb.real), tolerance)


#: Magnitude ranges of the sample points (as ``(low, high)`` in thousandths): several scales, so that
#: piecewise answers (``\\max(x, 3)``, ``\\lfloor x \\rfloor``) are seen on both sides of their breakpoints.
_SCALES = ((110, 970), (1100, 2900), (3100, 9700), (11000, 97000))


def _sample_points(symbols: list[Any]) -> list[dict[Any, Any]]:
    """Fixed rational points of both signs: the first eight cover every sign pattern of the first three
    variables (``x`` and ``|x|`` differ only for ``x < 0``), each at several magnitudes."""
    rng = random.Random(1234)  # fixed: the same input always gets the same verdict
    points = []
    for k in range(IDENTITY_POINTS):
        low, high = _SCALES[(k // 2 + (k // 8) * 2) % len(_SCALES)]
        point = {}
        for j, symbol in enumerate(symbols):
            negative = (k % 8) >> j & 1 if j < 3 else rng.random() < 0.5
            value = sympy.Rational(rng.randint(low, high), 1000)
            point[symbol] = -value if negative else value
        points.append(point)
    return points


def _agree_at_points(a: Any, b: Any) -> bool | None:
    """Whether ``a`` and ``b`` are the same real function, judged at the sample points: at every point
    where one of them is real the other must be real too and equal (so ``\\ln x`` is not ``\\ln|x|``:
    they differ in where they are defined). ``None`` when fewer than three points could decide."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=str)
    checked = 0
    for point in _sample_points(symbols):
        at_a, at_b = a.subs(point), b.subs(point)
        value_a, value_b = _evaluate(at_a), _evaluate(at_b)
        if value_a is None or value_b is None:
            continue  # a pole or domain trouble at this point
        (_, va), (_, vb) = value_a, value_b
        scale = max(abs(va), abs(vb))
        real_a, real_b = abs(va.imag) <= REAL_EPS * scale, abs(vb.imag) <= REAL_EPS * scale
        if real_a != real_b:
            return False  # defined (real) here for one answer only
        if _same_value(at_a, at_b, value_a, value_b):
            checked += 1
        elif real_a:
            return False
        # both non-real and different: outside the real domain of both, no evidence either way
    return True if checked >= 3 else None


def _split_log_products(expr: Any) -> Any:
    """``\\ln(xy)`` -> ``\\ln x + \\ln y``: the textbook log law for a product with a positive coefficient
    (an absolute value stays inside its logarithm: ``\\ln|x|`` is never ``\\ln x``)."""

    def splittable(node: Any) -> bool:
        return (
            isinstance(node, sympy.log)
            and isinstance(node.args[0], sympy.Mul)
            and not node.args[0].as_coeff_Mul()[0].is_negative
        )

    def split(node: Any) -> Any:
        base = sympy.log(node.args[1]) if len(node.args) > 1 else sympy.S.One  # log(x*y, 10): base 10
        return sympy.Add(*(sympy.log(factor) / base for factor in sympy.Mul.make_args(node.args[0])))

    return expr.replace(splittable, split)


_OPERATORS = (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative)


def _closed_form(expr: Any) -> Any:
    """``expr`` with its sums, products, integrals, limits and derivatives carried out where sympy can
    (``\\sum_{k=1}^{n} k`` -> ``n^2/2 + n/2``): evaluating them numerically at a sample point is slow
    and, for a sum up to ``n = -0.56``, meaningless."""
    if not expr.has(*_OPERATORS):
        return expr
    return expr.replace(lambda node: isinstance(node, _OPERATORS), lambda node: node.doit())


def _identity(a: Any, b: Any) -> bool:
    """``a == b`` as real functions of their (real) variables: evaluation at fixed points of both signs
    and several magnitudes; sympy's exact ``simplify`` when the points cannot decide (or an operator
    such as a sum has no closed form)."""
    a, b = _closed_form(a), _closed_form(b)
    verdict = None if a.has(*_OPERATORS) or b.has(*_OPERATORS) else _agree_at_points(a, b)
    if verdict is False and (a.has(sympy.log) or b.has(sympy.log)):
        split_a, split_b = _split_log_products(a), _split_log_products(b)
        if (split_a, split_b) != (a, b):
            verdict = _agree_at_points(split_a, split_b)
    if verdict is not None:
        return verdict
    reals = {symbol: sympy.Dummy(symbol.name, real=True) for symbol in a.free_symbols | b.free_symbols}
    try:
        return bool(sympy.simplify((a - b).xreplace(reals)) == 0)
    except Exception:
        return False


def expressions_equal(
    a: Any, b: Any, tolerance: float, a_decimal: bool = False, b_decimal: bool = False, gold_places: int | None = None
) -> bool:
    """Equality of two sympy expressions (numbers, expressions with variables, sets)."""
    if isinstance(a, sympy.Basic) and isinstance(b, sympy.Basic):
        if a == b:
            return True
        a_decimal, b_decimal = a_decimal or _has_float(a), b_decimal or _has_float(b)
        a, b = _exact_decimals(a), _exact_decimals(b)
        if isinstance(a, sympy.Set) or isinstance(b, sympy.Set):
            return (
                isinstance(a, sympy.Set)
                and isinstance(b, sympy.Set)
                and bool(a.symmetric_difference(b) == sympy.S.EmptySet)
            )
        if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
            return False
        if not a.free_symbols and not b.free_symbols:
            return _numbers_equal(a, b, tolerance, a_decimal, b_decimal, gold_places)
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
