"""Equivalence of two answer structures (see :mod:`structure`), one small rule per node kind.

The comparison is asymmetric where that stops reward hacking: a gold inequality accepts an equivalent
interval, but a gold set accepts an inequality only with ``allow_set_relation_comp``; a gold number
accepts ``x = 5`` and a derivation chain ``a = ... = 5``.

A :class:`Comparator` built with ``symbolic=False`` never imports sympy: when a decision needs it, it
raises :class:`NeedsSymbolic` and the caller re-runs the comparison in a worker process.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from cascade_plugins.rewards.math.normalize import canonical_text
from cascade_plugins.rewards.math.numbers import numbers_match
from cascade_plugins.rewards.math.options import MathOptions
from cascade_plugins.rewards.math.structure import (
    Alt,
    Interval,
    Matrix,
    Node,
    Num,
    Relation,
    Seq,
    Sym,
    Text,
    Union,
    is_symbol,
    parse_structure,
)

__all__ = ["Comparator", "NeedsSymbolic"]


class NeedsSymbolic(Exception):
    """The comparison cannot be decided without sympy."""


def _key(node: Node) -> str:
    """Comparison key of a node written the same way: letter case matters in math (``X`` is not
    ``x``), not in words (``\\text{Yes}`` is ``yes``)."""
    return canonical_text(node.src, fold_case=isinstance(node, Text))


def _same_text(a: Node, b: Node) -> bool:
    """``a`` and ``b`` are written the same way (case-insensitively only when both are words)."""
    fold = isinstance(a, Text) and isinstance(b, Text)
    return canonical_text(a.src, fold_case=fold) == canonical_text(b.src, fold_case=fold)


def _same_symbol(a: Node, b: Node) -> bool:
    return canonical_text(a.src) == canonical_text(b.src)


def _is_assignment_target(node: Node) -> bool:
    """``x`` in ``x = 5``, or ``(p, q)`` in ``(p, q) = (3, 2)``."""
    if isinstance(node, Sym | Text) and is_symbol(node.src):
        return True
    if isinstance(node, Seq) and node.kind == "tuple":
        return all(isinstance(i, Sym | Text) and is_symbol(i.src) for i in node.items)
    return len(node.src) <= 12 and "(" in node.src and is_symbol(node.src.split("(", 1)[0])  # f(x) = ...


def _is_label(node: Node) -> bool:
    """A named quantity without digits (``|AB|``, ``\frac{NO}{BO}``, ``S_{ABC}:S``)."""
    without_subscripts = re.sub(r"_\{?\w+\}?", "", node.src)
    return not any(ch.isdigit() for ch in without_subscripts) and len(node.src) <= 40


_ORIENT = {"<": ("<", False), "<=": ("<=", False), ">": ("<", True), ">=": ("<=", True)}


class Comparator:
    """Decides whether a predicted answer structure equals the gold one."""

    def __init__(self, options: MathOptions, *, symbolic: bool) -> None:
        self.options = options
        self.symbolic = symbolic
        #: how the last positive decision was reached (reported in the details)
        self.method = "none"

    # -- entry point -----------------------------------------------------------------------------

    def equal(self, gold: Node, pred: Node) -> bool:
        if self._dispatch(gold, pred):
            return True
        inequality = _gold_inequality(gold)
        if inequality is None:
            return False
        set_form = _set_form(pred)
        return set_form is not None and self._inequality_vs_set(inequality, *set_form)

    def _dispatch(self, gold: Node, pred: Node) -> bool:
        gold, pred = _conditions_as_union(gold, pred), _conditions_as_union(pred, gold)
        gold, pred = _tuple_equation_as_list(gold, pred), _tuple_equation_as_list(pred, gold)
        if isinstance(gold, Alt):
            return any(self.equal(option, pred) for option in gold.options)
        if isinstance(pred, Alt):
            return any(self.equal(gold, option) for option in pred.options)
        if isinstance(gold, Relation) and isinstance(pred, Relation):
            return self._relations(gold, pred)
        if isinstance(gold, Interval) and gold.relation is not None and isinstance(pred, Relation):
            return (pred.ops != ("in",) and self._relations(gold.relation, pred)) or self._gold_set_vs_relation(
                gold, pred
            )
        if (
            isinstance(pred, Interval)
            and pred.relation is not None
            and isinstance(gold, Relation)
            and gold.ops != ("in",)
        ):
            return self._relations(gold, pred.relation)
        if isinstance(pred, Relation):
            return self._pred_relation(gold, pred)
        if isinstance(gold, Relation):
            return self._gold_relation(gold, pred)
        if isinstance(gold, Interval | Union) or isinstance(pred, Interval | Union):
            return self._sets(gold, pred)
        if isinstance(gold, Seq) or isinstance(pred, Seq):
            return self._sequences(gold, pred)
        if isinstance(gold, Matrix) or isinstance(pred, Matrix):
            return self._matrices(gold, pred)
        return self._leaves(gold, pred)

    # -- relations -------------------------------------------------------------------------------

    def _gold_set_vs_relation(self, gold: Interval, pred: Relation) -> bool:
        return pred.ops == ("in",) and self.equal(gold, pred.terms[1])

    def _pred_relation(self, gold: Node, pred: Relation) -> bool:
        if all(op == "=" for op in pred.ops):
            # x = 5 against 5; a derivation chain a = b = 5 against 5
            self.method = "assignment"
            return self.equal(gold, pred.terms[-1])
        if pred.ops == ("in",):
            return self.equal(gold, pred.terms[1])
        return False

    def _gold_relation(self, gold: Relation, pred: Node) -> bool:
        if all(op == "=" for op in gold.ops) and (
            len(gold.terms) > 2 or _is_assignment_target(gold.terms[0]) or _is_label(gold.terms[0])
        ):
            # x = 5, |AB| = 1, V_1:V_2 = 11:21, a = b = 5: the answer is the last value
            self.method = "assignment"
            return self.equal(gold.terms[-1], pred)
        if gold.ops == ("in",):
            if isinstance(pred, Interval) and pred.var is not None and not self.options.allow_set_relation_comp:
                return False
            return self.equal(gold.terms[1], pred)
        return False

    def _relations(self, gold: Relation, pred: Relation) -> bool:
        if gold.ops == ("in",) and pred.ops == ("in",):
            return _same_symbol(gold.terms[0], pred.terms[0]) and self.equal(gold.terms[1], pred.terms[1])
        if gold.ops == ("in",) or pred.ops == ("in",):
            return False
        if len(gold.terms) != 2 or len(pred.terms) != 2:
            if gold.ops == pred.ops and "=" not in gold.ops:
                self.method = "relation_chain"
                return all(self.equal(g, p) for g, p in zip(gold.terms, pred.terms, strict=True))
            if all(op == "=" for op in gold.ops + pred.ops):
                return self.equal(gold.terms[-1], pred.terms[-1]) and self.equal(gold.terms[0], pred.terms[0])
            return False
        (gop,), (pop,) = gold.ops, pred.ops
        if gop in ("=", "!=") or pop in ("=", "!="):
            if gop != pop:
                return False
            gl, gr = gold.terms
            pl, pr = pred.terms
            renamed = _with_gold_argument(gl, pl, pr)
            if renamed is not None:  # f(z) = z against f(x) = x: the argument's name does not matter
                self.method = "function_argument"
                return gop == "=" and self.equal(gr, renamed)
            if _is_assignment_target(gl) and _is_assignment_target(pl):
                if _same_symbol(gl, pl):
                    return self.equal(gr, pr)
                if _same_symbol(gl, pr) and _is_assignment_target(pr):
                    return False
            self.method = "equation"
            return self._symbolic_pair("equation", gl, gr, pl, pr)
        g_op, g_flip = _ORIENT[gop]
        p_op, p_flip = _ORIENT[pop]
        if g_op != p_op:
            return False
        gl, gr = gold.terms[::-1] if g_flip else gold.terms
        pl, pr = pred.terms[::-1] if p_flip else pred.terms
        self.method = "inequality"
        return self._symbolic_pair("inequality", gl, gr, pl, pr)

    def _symbolic_pair(self, kind: str, gl: Node, gr: Node, pl: Node, pr: Node) -> bool:
        if not all(isinstance(n, Num | Sym | Text) for n in (gl, gr, pl, pr)):
            return self.equal(gl, pl) and self.equal(gr, pr)
        if _same_text(gl, pl) and _same_text(gr, pr):
            return True
        if not self.symbolic:
            raise NeedsSymbolic
        from cascade_plugins.rewards.math import symbolic

        try:
            values = [self._to_sympy(n) for n in (gl, gr, pl, pr)]
        except ValueError:
            return False
        try:
            if kind == "equation":
                return symbolic.equations_equal(*values)
            return symbolic.inequalities_equal(*values)
        except Exception:
            return False

    def _inequality_vs_set(self, gold: Relation, pred_var: Node | None, parts: list[Interval]) -> bool:
        """``1 \\le |z| \\le 2`` against ``z \\in [-2, -1] \\cup [1, 2]``: the gold's solution set over
        the reals (one variable) equals the predicted union of intervals, decided exactly by sympy."""
        if not self.symbolic:
            raise NeedsSymbolic
        from cascade_plugins.rewards.math import symbolic

        try:
            terms = [self._to_sympy(t) for t in gold.terms]
            variable = self._to_sympy(pred_var) if pred_var is not None else None
            intervals = [(self._to_sympy(p.low), self._to_sympy(p.high), p.left_closed, p.right_closed) for p in parts]
            equal = symbolic.solution_set_equals(list(gold.ops), terms, intervals, variable)
        except Exception:
            return False
        if equal:
            self.method = "inequality_set"
        return equal

    # -- sets and intervals ------------------------------------------------------------------------

    def _as_interval(self, node: Node) -> Node:
        if isinstance(node, Seq) and node.kind == "tuple" and len(node.items) == 2:
            return Interval(False, node.items[0], node.items[1], False, node.src)
        if isinstance(node, Relation) and node.ops == ("in",):
            return node.terms[1]
        return node

    def _sets(self, gold: Node, pred: Node) -> bool:
        gold, pred = self._as_interval(gold), self._as_interval(pred)
        if isinstance(gold, Union) or isinstance(pred, Union):
            gold_parts = gold.parts if isinstance(gold, Union) else (gold,)
            pred_parts = pred.parts if isinstance(pred, Union) else (pred,)
            return self._unordered(list(gold_parts), list(pred_parts))
        if not (isinstance(gold, Interval) and isinstance(pred, Interval)):
            return False
        if pred.var is not None and gold.var is None and not self.options.allow_set_relation_comp:
            return False  # a gold set accepts an inequality only when allowed
        if gold.var is not None and pred.var is not None and canonical_text(gold.var) != canonical_text(pred.var):
            return False
        if gold.left_closed != pred.left_closed or gold.right_closed != pred.right_closed:
            return False
        self.method = "interval"
        return self.equal(gold.low, pred.low) and self.equal(gold.high, pred.high)

    # -- tuples, lists, sets -----------------------------------------------------------------------

    def _sequences(self, gold: Node, pred: Node) -> bool:
        if isinstance(gold, Matrix) or isinstance(pred, Matrix):
            return self._vector(gold, pred)
        if isinstance(gold, Seq) and isinstance(pred, Seq) and gold.kind == pred.kind == "list":
            # "w=16, d=3" against "16, 3": the values of a list of assignments, in order
            gold_values, pred_values = _assigned_values(gold), _assigned_values(pred)
            if (gold_values is None) != (pred_values is None):
                gold_items = gold_values or gold.items
                pred_items = pred_values or pred.items
                if len(gold_items) == len(pred_items):
                    self.method = "assigned_values"
                    return all(self.equal(g, p) for g, p in zip(gold_items, pred_items, strict=True))
                return False
        if not isinstance(gold, Seq):
            return len(pred.items) == 1 and self.equal(gold, pred.items[0])  # type: ignore[union-attr]
        if not isinstance(pred, Seq):
            return len(gold.items) == 1 and self.equal(gold.items[0], pred)
        if {gold.kind, pred.kind} == {"tuple", "set"}:
            return False
        if gold.kind == "tuple" or pred.kind == "tuple":
            if len(gold.items) != len(pred.items):
                return False
            if gold.kind == pred.kind == "tuple" and not self.options.ordered_tuples:
                return self._unordered(list(gold.items), list(pred.items), dedupe=False)
            self.method = "tuple"
            return all(self.equal(g, p) for g, p in zip(gold.items, pred.items, strict=True))
        return self._unordered(list(gold.items), list(pred.items))

    def _dedupe(self, items: Sequence[Node]) -> list[Node]:
        unique: list[Node] = []
        for item in items:
            if not any(_key(item) == _key(u) for u in unique):
                unique.append(item)
        return unique

    def _unordered(self, gold: list[Node], pred: list[Node], dedupe: bool = True) -> bool:
        if dedupe:
            gold, pred = self._dedupe(gold), self._dedupe(pred)
        if len(gold) != len(pred):
            return False
        remaining = list(pred)
        for g in gold:
            for index, p in enumerate(remaining):
                if self.equal(g, p):
                    del remaining[index]
                    break
            else:
                return False
        self.method = "unordered"
        return True

    # -- matrices ----------------------------------------------------------------------------------

    def _vector(self, gold: Node, pred: Node) -> bool:
        """A one-column or one-row matrix against a tuple of the same entries in the same order."""
        matrix, other = (gold, pred) if isinstance(gold, Matrix) else (pred, gold)
        assert isinstance(matrix, Matrix)
        if not (isinstance(other, Seq) and other.kind == "tuple"):
            return False
        if all(len(row) == 1 for row in matrix.rows):
            entries = [row[0] for row in matrix.rows]
        elif len(matrix.rows) == 1:
            entries = list(matrix.rows[0])
        else:
            return False
        if len(entries) != len(other.items):
            return False
        pairs = zip(entries, other.items, strict=True)
        self.method = "vector"
        if matrix is gold:
            return all(self.equal(g, p) for g, p in pairs)
        return all(self.equal(g, p) for p, g in pairs)

    def _matrices(self, gold: Node, pred: Node) -> bool:
        if not (isinstance(gold, Matrix) and isinstance(pred, Matrix)):
            if isinstance(gold, Matrix | Sym) and isinstance(pred, Matrix | Sym):
                return self._symbolic_matrices(gold, pred)
            return False
        if [len(r) for r in gold.rows] != [len(r) for r in pred.rows]:
            return False
        self.method = "matrix"
        return all(
            self.equal(g, p) for gr, pr in zip(gold.rows, pred.rows, strict=True) for g, p in zip(gr, pr, strict=True)
        )

    def _symbolic_matrices(self, gold: Node, pred: Node) -> bool:
        """A matrix against a matrix expression (``A + B``, ``2A``): evaluate with sympy."""
        if not self.symbolic:
            raise NeedsSymbolic
        import sympy

        from cascade_plugins.rewards.math import symbolic

        try:
            a, b = symbolic.to_sympy(gold.src), symbolic.to_sympy(pred.src)
            a, b = (m.doit() if hasattr(m, "doit") else m for m in (a, b))
            if not (isinstance(a, sympy.MatrixBase) and isinstance(b, sympy.MatrixBase)) or a.shape != b.shape:
                return False
            self.method = "matrix"
            return all(symbolic.expressions_equal(x, y, self.options.tolerance) for x, y in zip(a, b, strict=True))
        except Exception:
            return False

    # -- leaves ------------------------------------------------------------------------------------

    def _leaves(self, gold: Node, pred: Node) -> bool:
        if _same_text(gold, pred):
            self.method = "string"
            return True
        if isinstance(gold, Text) or isinstance(pred, Text):
            return False
        if isinstance(gold, Num) and isinstance(pred, Num):
            self.method = "numeric"
            return numbers_match(gold.number, pred.number, self.options.tolerance)
        if not self.symbolic:
            raise NeedsSymbolic
        from cascade_plugins.rewards.math import symbolic

        try:
            a, b = self._to_sympy(gold), self._to_sympy(pred)
        except symbolic.Refused:
            self.method = "refused"
            return False
        except ValueError:
            self.method = "unparsed"
            return False
        self.method = "symbolic"
        decimals = (_is_decimal(gold), _is_decimal(pred))
        try:
            places = gold.number.decimal_places if isinstance(gold, Num) else None
            if symbolic.expressions_equal(a, b, self.options.tolerance, *decimals, gold_places=places):
                return True
            if self.options.strict:
                return False
            self.method = "renamed_variables"
            return any(
                symbolic.expressions_equal(a, renamed, self.options.tolerance, *decimals)
                for renamed in symbolic.rename_variables(a, b)
            )
        except Exception:
            return False

    def _to_sympy(self, node: Node) -> Any:
        from cascade_plugins.rewards.math import symbolic

        if isinstance(node, Num):
            import sympy

            if node.number.huge_digits is not None:
                raise symbolic.Refused("a number literal too long to evaluate")
            value = node.number.value
            return sympy.Rational(value.numerator, value.denominator)
        return symbolic.to_sympy(node.src)


def _gold_inequality(node: Node) -> Relation | None:
    """The inequality (chain) a gold answer states, if it is one (``x^2 \\ge 4``, ``1 \\le |z| \\le 2``);
    ``None`` for an interval over a plain variable, which the interval rule already decides."""
    if isinstance(node, Interval) and node.relation is not None:
        if node.var is not None and is_symbol(node.var):
            return None
        node = node.relation
    if isinstance(node, Relation) and all(op in _ORIENT for op in node.ops):
        return node
    return None


def _plain_interval(node: Node) -> Interval | None:
    if isinstance(node, Seq) and node.kind == "tuple" and len(node.items) == 2:
        return Interval(False, node.items[0], node.items[1], False, node.src)
    if isinstance(node, Interval) and node.var is None:
        return node
    return None


def _set_form(node: Node) -> tuple[Node | None, list[Interval]] | None:
    """``(variable, intervals)`` of ``z \\in [a, b] \\cup (c, d)``, ``[a, b] \\cup (c, d)`` or one interval."""
    if isinstance(node, Relation) and node.ops == ("in",):
        inner = _set_form(node.terms[1])
        return None if inner is None or inner[0] is not None else (node.terms[0], inner[1])
    if not isinstance(node, Union):
        interval = _plain_interval(node)
        return None if interval is None else (None, [interval])
    variable: Node | None = None
    intervals: list[Interval] = []
    for index, part in enumerate(node.parts):
        if index == 0 and isinstance(part, Relation) and part.ops == ("in",):
            variable, part = part.terms[0], part.terms[1]
        interval = _plain_interval(part)
        if interval is None:
            return None
        intervals.append(interval)
    return variable, intervals


_FUNCTION_OF_ONE_RE = re.compile(r"^([A-Za-z])\s*\(\s*([A-Za-z])\s*\)$")


def _with_gold_argument(gold_lhs: Node, pred_lhs: Node, pred_rhs: Node) -> Node | None:
    """``pred_rhs`` with the argument of ``f(x)`` renamed to the gold's ``f(z)``; ``None`` unless both
    sides define the same one-letter function of one differently named letter, and the gold's letter
    is not already in the predicted right side."""
    gold_match = _FUNCTION_OF_ONE_RE.match(gold_lhs.src.strip())
    pred_match = _FUNCTION_OF_ONE_RE.match(pred_lhs.src.strip())
    if not gold_match or not pred_match or gold_match.group(1) != pred_match.group(1):
        return None
    gold_var, pred_var = gold_match.group(2), pred_match.group(2)
    letter = r"(?<![\\A-Za-z]){}(?![A-Za-z])"
    if gold_var == pred_var or re.search(letter.format(gold_var), pred_rhs.src):
        return None
    return parse_structure(re.sub(letter.format(pred_var), gold_var, pred_rhs.src))


def _one_variable_condition(node: Node) -> tuple[str, Node] | None:
    """``(variable, set)`` of ``a \\leq -2`` (an interval) or ``a = 1`` (the set ``{1}``)."""
    if isinstance(node, Interval) and node.var is not None:
        return canonical_text(node.var), Interval(node.left_closed, node.low, node.high, node.right_closed, node.src)
    if isinstance(node, Relation) and node.ops == ("=",) and is_symbol(node.terms[0].src):
        value = node.terms[1]
        if isinstance(value, Num | Sym) and not is_symbol(value.src):
            return canonical_text(node.terms[0].src), Seq("set", (value,), value.src)
    return None


def _conditions_as_union(node: Node, other: Node) -> Node:
    """``a \\leq -2 \\text{ or } a = 1`` (a list of conditions on one variable) as the union
    ``(-\\infty, -2] \\cup \\{1\\}`` when it is compared with a union."""
    if not (isinstance(node, Seq) and node.kind == "list" and isinstance(other, Union)):
        return node
    conditions = [_one_variable_condition(item) for item in node.items]
    if any(c is None for c in conditions) or len({c[0] for c in conditions if c}) != 1:
        return node
    return Union(tuple(c[1] for c in conditions if c), node.src)


def _tuple_equation_as_list(node: Node, other: Node) -> Node:
    """``(f(n), g(n)) = (n, 1)`` as ``f(n) = n, g(n) = 1`` when compared with a list of assignments."""
    if not (
        isinstance(other, Seq)
        and other.kind == "list"
        and all(isinstance(i, Relation) and i.ops == ("=",) for i in other.items)
    ):
        return node
    if not (isinstance(node, Relation) and node.ops == ("=",)):
        return node
    left, right = node.terms
    if not (isinstance(left, Seq) and isinstance(right, Seq) and left.kind == right.kind == "tuple"):
        return node
    if len(left.items) != len(right.items) or not all(_is_assignment_target(i) for i in left.items):
        return node
    items = tuple(Relation(("=",), (t, v), f"{t.src} = {v.src}") for t, v in zip(left.items, right.items, strict=True))
    return Seq("list", items, node.src)


def _assigned_values(node: Seq) -> tuple[Node, ...] | None:
    """The values of ``w=16, d=3, a=1`` (each item assigns one distinct variable), else ``None``."""
    names: list[str] = []
    values: list[Node] = []
    for item in node.items:
        if not (isinstance(item, Relation) and item.ops == ("=",) and is_symbol(item.terms[0].src)):
            return None
        names.append(canonical_text(item.terms[0].src))
        values.append(item.terms[1])
    return tuple(values) if len(set(names)) == len(names) else None


def _is_decimal(node: Node) -> bool:
    return isinstance(node, Num) and node.number.is_decimal
