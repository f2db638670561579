"""Math-Verify 0.9.0 called the way its own tests and NeMo RL call it (for ``math_bench.py``).

Kept in an importable module so the benchmark can also run it inside killable worker processes
(Math-Verify's SIGALRM timeout cannot stop every hang).
"""

from __future__ import annotations

import logging
from typing import Any

# Math-Verify logs every timeout it hits; the benchmark reports them itself.
logging.getLogger("math_verify").setLevel(logging.CRITICAL)


def available() -> bool:
    try:
        import math_verify  # noqa: F401
    except ImportError:
        return False
    return True


def verify_pair(gold: str, pred: str, config: dict[str, Any] | None = None) -> bool:
    """Math-Verify's verdict for one labelled pair.

    ``config`` is the test helper configuration of Math-Verify's own suite (``match_types``,
    ``precision``, ``strict``, ``allow_set_relation_comp``); without it the gold is wrapped in
    ``\\boxed{}`` and parsed as LaTeX, the prediction as LaTeX and plain expressions, as NeMo RL's
    math environment does.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    if config is None:
        gold_parsed = parse("\\boxed{" + gold + "}", [LatexExtractionConfig()])
        pred_parsed = parse(pred, [ExprExtractionConfig(), LatexExtractionConfig()])
        return bool(verify(gold_parsed, pred_parsed))
    if config.get("mode") == "default_parse":
        return bool(verify(parse(gold), parse(pred)))
    targets: list[Any] = []
    for match_type in config.get("match_types", ["latex", "expr"]):
        if match_type == "latex":
            targets.append(LatexExtractionConfig(boxed_match_priority=0))
        elif match_type == "expr":
            targets.append(ExprExtractionConfig())
    gold_parsed = parse(gold, targets)
    pred_parsed = parse(pred, targets)
    return bool(
        verify(
            gold_parsed,
            pred_parsed,
            float_rounding=config.get("precision", 6),
            strict=config.get("strict", True),
            allow_set_relation_comp=config.get("allow_set_relation_comp", False),
        )
    )
