"""Plain numbers without sympy: the fast path for most math answers.

Recognises integers, decimals (``.4``, ``1,000.5``, ``1 000``, a decimal comma ``2,74``), scientific
notation (``1.5e3``, ``1.5\\times 10^{3}``), fractions (``3/4``, ``\\frac{3}{4}``, ``-\\frac34``) and
mixed numbers (``2\\frac{1}{2}``). Values are exact :class:`fractions.Fraction`; ``decimal_places``
records whether (and how precisely) the number was written as a decimal, which decides when a
tolerance applies (see :func:`numbers_match`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["MAX_EXACT_DIGITS", "PlainNumber", "close_enough", "numbers_match", "parse_plain_number"]

#: Longer digit strings are not converted (CPython refuses int() beyond 4300 digits anyway).
MAX_EXACT_DIGITS = 4000
#: Largest |exponent| accepted in scientific notation before the value counts as "too large".
MAX_EXPONENT = 4000

_INT = r"\d+"
_GROUPED = r"[1-9]\d{0,2}(?:,\d{3})+"  # 1,234,567 (a leading 0 means a decimal comma: 0,111)
_SPACED = r"[1-9]\d{0,2}(?: \d{3})+"  # 1 234 567
_DECIMAL_PART = r"(?:\.\d+)?"
_PLAIN_RE = re.compile(
    rf"^(?P<sign>[-+]?)(?P<int>{_GROUPED}|{_SPACED}|{_INT})?(?P<frac>\.\d+)?"
    rf"(?:(?:[eE](?P<exp1>[-+]?\d+))|(?:\s*(?:\\times|\\cdot|\*|×)\s*10\s*\^\s*\{{?(?P<exp2>[-+]?\d+)\}}?))?$"
)
_DECIMAL_COMMA_RE = re.compile(r"^(?P<sign>[-+]?)(?P<int>\d+),(?P<frac>\d+)$")
_SLASH_FRACTION_RE = re.compile(r"^(?P<sign>[-+]?)(?P<num>\d+)\s*/\s*(?P<den>\d+)$")
_LATEX_FRACTION_RE = re.compile(
    r"^(?P<sign>[-+]?)\s*(?P<whole>\d+)?\s*\\frac\s*(?:\{\s*(?P<num>\d+)\s*\}|(?P<num1>\d))"
    r"\s*(?:\{\s*(?P<den>\d+)\s*\}|(?P<den1>\d))$"
)
_SIGNED_LATEX_FRACTION_RE = re.compile(r"^\\frac\s*\{\s*(?P<sign>-)\s*(?P<num>\d+)\s*\}\s*\{\s*(?P<den>\d+)\s*\}$")


@dataclass(frozen=True, slots=True)
class PlainNumber:
    """An exact rational as written. ``decimal_places`` is ``None`` for integers, fractions and
    mixed numbers; for decimals it is the number of digits after the point (``2.50`` -> 2)."""

    value: Fraction
    decimal_places: int | None = None
    #: the digit string when it was too long to convert (compared textually)
    huge_digits: str | None = None

    @property
    def is_decimal(self) -> bool:
        return self.decimal_places is not None

    @property
    def is_integer(self) -> bool:
        return self.huge_digits is not None or self.value.denominator == 1


def _sign(text: str) -> int:
    return -1 if text == "-" else 1


def _to_int(digits: str) -> int | None:
    return int(digits) if len(digits) <= MAX_EXACT_DIGITS else None


def _huge(sign: int, digits: str) -> PlainNumber:
    canonical = digits.lstrip("0") or "0"
    return PlainNumber(Fraction(0), None, huge_digits=("-" if sign < 0 else "") + canonical)


def parse_plain_number(text: str) -> PlainNumber | None:
    """The number ``text`` denotes, or ``None`` when it is not a plain number.

    ``text`` should already be normalized (no ``$``, ``\\left``, units or ``%``)."""
    s = text.strip()
    if not s or not s.isascii():  # int() would accept other scripts' digits
        return None
    if len(s) > MAX_EXACT_DIGITS + 64:
        # only a plain digit string may be this long; it is compared digit by digit
        if s.lstrip("+-").isdigit() and s.lstrip("+-").isascii() and s[:1] in "+-0123456789":
            return _huge(-1 if s.startswith("-") else 1, s.lstrip("+-"))
        return None
    if s.startswith("{") and s.endswith("}") and s.count("{") == 1:
        s = s[1:-1].strip()
    match = _PLAIN_RE.match(s)
    if match and (match["int"] or match["frac"]):
        sign = _sign(match["sign"])
        int_digits = (match["int"] or "0").replace(",", "").replace(" ", "")
        frac_digits = (match["frac"] or "")[1:]
        exponent_text = match["exp1"] or match["exp2"]
        if exponent_text is None and not frac_digits and len(int_digits) > MAX_EXACT_DIGITS:
            return _huge(sign, int_digits)
        if len(int_digits) + len(frac_digits) > MAX_EXACT_DIGITS:
            return None
        value = Fraction(int(int_digits + frac_digits), 10 ** len(frac_digits)) * sign
        places: int | None = len(frac_digits) if match["frac"] else None
        if exponent_text is not None:
            exponent = int(exponent_text)
            if abs(exponent) > MAX_EXPONENT:
                return None
            value *= Fraction(10) ** exponent
            # 1.5e3 is a decimal literal: its precision is that of the mantissa
            places = max(0, (places or 0) - exponent) if places is not None or exponent < 0 else None
        return PlainNumber(value, places)
    match = _DECIMAL_COMMA_RE.match(s)
    if match and not (len(match["frac"]) == 3 and match["int"][0] != "0" and len(match["int"]) <= 3):
        # "2,74" and "1000,99" are decimal commas; "1,000" is a thousands separator (above)
        digits = match["int"] + match["frac"]
        if len(digits) > MAX_EXACT_DIGITS:
            return None
        value = Fraction(int(digits), 10 ** len(match["frac"])) * _sign(match["sign"])
        return PlainNumber(value, len(match["frac"]))
    match = _SLASH_FRACTION_RE.match(s)
    if match is None:
        match = _SIGNED_LATEX_FRACTION_RE.match(s)
    if match is not None:
        num, den = _to_int(match["num"]), _to_int(match["den"])
        if num is None or den is None or den == 0:
            return None
        return PlainNumber(Fraction(num, den) * _sign(match["sign"]))
    match = _LATEX_FRACTION_RE.match(s)
    if match is not None:
        num = _to_int(match["num"] or match["num1"])
        den = _to_int(match["den"] or match["den1"])
        if num is None or den is None or den == 0:
            return None
        value = Fraction(num, den)
        if match["whole"] is not None:  # mixed number 2\frac{1}{2} = 5/2
            whole = _to_int(match["whole"])
            if whole is None:
                return None
            value += whole
        return PlainNumber(value * _sign(match["sign"]))
    return None


def close_enough(a: float | Fraction, b: float | Fraction, tolerance: float) -> bool:
    """``|a - b| <= tolerance * max(1, |a|, |b|)``: relative above 1, absolute below."""
    scale = max(1.0, abs(float(a)), abs(float(b)))
    return abs(float(a) - float(b)) <= tolerance * scale


def numbers_match(gold: PlainNumber, pred: PlainNumber, tolerance: float) -> bool:
    """Exact equality, except that a decimal approximating a value that has no short decimal form
    (``0.333333`` for ``1/3``) may differ by ``tolerance``. Two decimals, or two integers, must be
    equal exactly: ``12345.678`` is not ``12345.679``."""
    if gold.huge_digits is not None or pred.huge_digits is not None:
        return gold.huge_digits is not None and gold.huge_digits == pred.huge_digits
    if gold.value == pred.value:
        return True
    if gold.is_decimal == pred.is_decimal:
        return False  # both written exactly (fractions) or both written as decimals
    exact = pred if gold.is_decimal else gold
    if exact.value.denominator == 1:
        return False  # an integer has a short decimal form; 4.9999999 is not 5
    if gold.decimal_places and rounds_to(pred.value, gold.value, gold.decimal_places):
        return True
    return close_enough(gold.value, pred.value, tolerance)


def rounds_to(exact: float | Fraction, rounded: Fraction, places: int) -> bool:
    """A gold written as a decimal with ``places`` places (``30.52``) is the exact value (``1587/52``)
    rounded to them: the exact value lies within half a unit of its last place."""
    half_unit = Fraction(1, 2 * 10**places)
    return abs(Fraction(exact) - rounded) <= half_unit
