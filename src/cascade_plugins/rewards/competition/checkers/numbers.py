"""Number syntax shared by the checkers (what C's ``strtod`` accepts in decimal, minus inf/nan)."""

from __future__ import annotations

import math
import re

_DECIMAL = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_HEX = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?")


def parse_finite_float(token: bytes) -> float | None:
    """The token's value if the whole token is a finite number, else ``None``.

    ``1e3`` and ``1000`` are both 1000.0; ``nan``, ``inf`` and numbers that overflow to infinity
    are not numbers here, so they never match a number (as in Kattis' default validator).
    """
    if _DECIMAL.fullmatch(token):
        value = float(token)
    elif _HEX.fullmatch(token):
        text = token.decode("ascii")
        value = float.fromhex(text if "p" in text.lower() else text + "p0")
    else:
        return None
    return value if math.isfinite(value) else None
