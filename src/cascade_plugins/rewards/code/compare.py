"""Comparing a program's output with the expected one."""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any, Literal

CompareMode = Literal["tokens", "lines", "exact"]


#: an integer as judges read one: ASCII digits, an optional minus sign, nothing else
_INTEGER = re.compile(r"-?[0-9]+", re.ASCII)
#: the canonical form of an integer (no leading zeros, no ``-0``)
_CANONICAL_INTEGER = re.compile(r"0|-?[1-9][0-9]*", re.ASCII)
#: a float literal in an expected output: a decimal point or an exponent (``0.5``, ``1e-05``)
_FLOAT = re.compile(r"-?(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|-?[0-9]+[eE][-+]?[0-9]+", re.ASCII)
#: a number a program may print where a float is expected (integers included)
_NUMBER = re.compile(r"-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?", re.ASCII)


def _canonical(integer: str) -> str:
    """``-007`` -> ``-7``, ``-0`` -> ``0`` (by text: ``int()`` refuses more than 4300 digits)."""
    digits = integer.lstrip("-").lstrip("0") or "0"
    return "-" + digits if integer.startswith("-") and digits != "0" else digits


def tokens_match(got: str, expected: str, tolerance: float | None) -> bool:
    """Whether an output token matches the expected one, as judges compare them.

    Identical tokens match. Where the expected token is an integer (``12``), the output must be
    an integer of the same value written canonically: ``1.2e1``, ``12.0``, ``+12``, ``012``,
    ``1_2`` and non-ASCII digits (``١٢``) do not match. Where it is a float literal (``0.50``,
    ``1e-05``), any plain decimal number of equal value matches (``0.5``), or one within
    ``tolerance`` (absolute or relative). Everything else must be identical.
    """
    if got == expected:
        return True
    if _INTEGER.fullmatch(expected):
        return _CANONICAL_INTEGER.fullmatch(got) is not None and got == _canonical(expected)
    if _FLOAT.fullmatch(expected) and _NUMBER.fullmatch(got):
        a, b = Decimal(got), Decimal(expected)
        if a == b:
            return True
        return tolerance is not None and numbers_close(float(a), float(b), tolerance)
    return False


def numbers_close(got: float, expected: float, tolerance: float) -> bool:
    """Absolute-or-relative closeness, as testlib's ``doubleCompare``."""
    if math.isnan(got) or math.isnan(expected):
        return False
    return abs(got - expected) <= tolerance * max(1.0, abs(expected))


def outputs_match(got: str, expected: str, mode: CompareMode = "tokens", tolerance: float | None = None) -> bool:
    """Whether a program's stdout ``got`` matches ``expected``.

    ``tokens``: whitespace-separated tokens match (:func:`tokens_match`); ``lines``: the same, line
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
    """Structural equality of JSON values (call-based tests); the tolerance applies where the
    expected value is a float (an expected integer must be equal)."""
    if isinstance(expected, bool) or isinstance(got, bool):
        return got == expected
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)):
        if got == expected:
            return True
        return isinstance(expected, float) and tolerance is not None and numbers_close(float(got), expected, tolerance)
    if isinstance(expected, list) and isinstance(got, list):
        return len(got) == len(expected) and all(
            values_match(g, e, tolerance) for g, e in zip(got, expected, strict=True)
        )
    if isinstance(expected, dict) and isinstance(got, dict):
        return got.keys() == expected.keys() and all(values_match(got[k], expected[k], tolerance) for k in expected)
    return bool(got == expected)
