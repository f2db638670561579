"""Comparing a program's output with the expected one."""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

CompareMode = Literal["tokens", "lines", "exact"]


def _number(token: str) -> Decimal | None:
    try:
        value = Decimal(token)
    except (InvalidOperation, ValueError):
        return None
    return value if value.is_finite() else None


def tokens_match(got: str, expected: str, tolerance: float | None) -> bool:
    """Equal tokens, or numbers that are equal (``1.0`` = ``1.00``) or within the tolerance."""
    if got == expected:
        return True
    a, b = _number(got), _number(expected)
    if a is None or b is None:
        return False
    if a == b:
        return True
    return tolerance is not None and numbers_close(float(a), float(b), tolerance)


def numbers_close(got: float, expected: float, tolerance: float) -> bool:
    """Absolute-or-relative closeness, as testlib's ``doubleCompare``."""
    if math.isnan(got) or math.isnan(expected):
        return False
    return abs(got - expected) <= tolerance * max(1.0, abs(expected))


def outputs_match(got: str, expected: str, mode: CompareMode = "tokens", tolerance: float | None = None) -> bool:
    """Whether a program's stdout ``got`` matches ``expected``.

    ``tokens``: whitespace-separated tokens equal (numbers by value); ``lines``: the same, line
    by line, with trailing blank lines ignored; ``exact``: byte for byte after normalising
    newlines.
    """
    if mode == "exact":
        return got.replace("\r\n", "\n") == expected.replace("\r\n", "\n")
    if mode == "lines":
        got_lines = got.rstrip().splitlines()
        expected_lines = expected.rstrip().splitlines()
        return len(got_lines) == len(expected_lines) and all(
            _tokens_equal(g.split(), e.split(), tolerance) for g, e in zip(got_lines, expected_lines, strict=True)
        )
    return _tokens_equal(got.split(), expected.split(), tolerance)


def _tokens_equal(got: list[str], expected: list[str], tolerance: float | None) -> bool:
    return len(got) == len(expected) and all(
        tokens_match(g, e, tolerance) for g, e in zip(got, expected, strict=True)
    )


def values_match(got: Any, expected: Any, tolerance: float | None = None) -> bool:
    """Structural equality of JSON values (call-based tests); numbers within the tolerance."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return got == expected
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if got == expected:
            return True
        return tolerance is not None and numbers_close(float(got), float(expected), tolerance)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(
            values_match(g, e, tolerance) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k], tolerance) for k in expected)
    return bool(got == expected)
