"""One answer against one reference: the decision procedure, without processes.

:func:`prepare` does everything that is cheap and bounded in time (extraction, normalization, the
structure of both answers, multiple-choice letters, plain numbers and strings) and returns either a
final :class:`Decision` or a :class:`SymbolicTask` that needs sympy. :func:`decide_symbolic` finishes
such a task; the reward runs it in a worker process under a deadline.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from cascade_plugins.interfaces import Verdict
from cascade_plugins.rewards.math.compare import Comparator, NeedsSymbolic
from cascade_plugins.rewards.math.extract import (
    extract_answer,
    extract_choice,
    extract_choice_letter,
    extract_gold,
    strip_think,
)
from cascade_plugins.rewards.math.normalize import Normalized, normalize_answer, strip_math_delimiters
from cascade_plugins.rewards.math.numbers import parse_plain_number
from cascade_plugins.rewards.math.options import MathOptions
from cascade_plugins.rewards.math.structure import Node, Sym, parse_structure, scaled

__all__ = ["Decision", "SymbolicTask", "decide_symbolic", "gold_text", "prepare", "verify"]

DETAIL_CHARS = 300
_CHOICE_GOLD_RE = re.compile(r"^\s*(?:\\text(?:bf|rm)?\{\s*)?\(?\s*([A-J])\s*\)?(?:\s*\})?\s*$")


@dataclass(slots=True)
class Decision:
    verdict: str
    method: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SymbolicTask:
    """What a worker needs to finish a comparison (picklable, small)."""

    gold: Normalized
    pred: Normalized
    options: MathOptions
    #: what the final result reports (extraction, normalized forms)
    details: dict[str, Any] = field(default_factory=dict, compare=False)


def gold_text(ground_truth: Any) -> list[str]:
    """The reference answer(s) of a sample; a list means "any of these". Raises ``ValueError``."""
    if isinstance(ground_truth, bool) or ground_truth is None:
        raise ValueError("sample has no usable 'ground_truth' (expected a string or a number)")
    if isinstance(ground_truth, int | float):
        return [repr(ground_truth) if isinstance(ground_truth, float) else str(ground_truth)]
    if isinstance(ground_truth, str):
        if not ground_truth.strip():
            raise ValueError("sample 'ground_truth' is an empty string")
        return [ground_truth]
    if isinstance(ground_truth, list | tuple) and ground_truth:
        golds: list[str] = []
        for index, item in enumerate(ground_truth):
            try:
                golds.extend(gold_text(item))
            except ValueError as exc:
                raise ValueError(f"ground_truth[{index}]: {exc}") from None
        return golds
    raise ValueError(
        f"sample 'ground_truth' must be a string, a number or a list of them, got {type(ground_truth).__name__}"
    )


@lru_cache(maxsize=8192)
def _normalized_gold(ground_truth: str) -> Normalized:
    return normalize_answer(extract_gold(ground_truth))


def _choice_letters(gold: str, options: MathOptions) -> tuple[str, str] | None:
    """``(gold letter, allowed letters)`` when the question is multiple choice."""
    plain = strip_math_delimiters(gold)
    match = _CHOICE_GOLD_RE.match(plain)
    if options.choices is not None:
        if match and match.group(1) in options.choices:
            return match.group(1), options.choices
        return None
    if match:
        return match.group(1), "ABCDEFGHIJ"
    return None


def _candidates(node: Node, answer: Normalized, options: MathOptions) -> list[Node]:
    if not answer.percent:
        return [node]
    as_fraction = scaled(node, Fraction(1, 100))
    if as_fraction is None:
        return [node]
    return [node, as_fraction] if options.percent_lenient else [as_fraction]


_RADIANS_RE = re.compile(r"\\pi(?![a-zA-Z])")


def _in_radians(answer: Normalized, other: Normalized) -> list[Node]:
    """``135^\\circ`` read as ``\\frac{3\\pi}{4}`` when the other answer is an angle in radians (it has
    ``\\pi`` and no degree sign): the same angle in another unit. Only a plain number of degrees."""
    if not answer.degrees or other.degrees or not _RADIANS_RE.search(other.text):
        return []
    degrees = parse_plain_number(answer.text)
    if degrees is None or degrees.huge_digits is not None:
        return []
    value = degrees.value / 180
    return [Sym(f"\\frac{{{value.numerator}\\pi}}{{{value.denominator}}}")]


def compare_normalized(gold: Normalized, pred: Normalized, options: MathOptions, *, symbolic: bool) -> tuple[bool, str]:
    """Equality of two normalized answers; raises :class:`NeedsSymbolic` when ``symbolic`` is off
    and sympy is needed."""
    if gold.unit is not None and pred.unit is not None and gold.unit != pred.unit:
        return False, "unit"  # 5 m is not 5 cm (a unit written on one side only is ignored)
    comparator = Comparator(options, symbolic=symbolic)
    gold_nodes = _candidates(parse_structure(gold.text), gold, options) + _in_radians(gold, pred)
    pred_nodes = _candidates(parse_structure(pred.text), pred, options) + _in_radians(pred, gold)
    needs_symbolic = False
    for g in gold_nodes:
        for p in pred_nodes:
            try:
                if comparator.equal(g, p):
                    return True, comparator.method
            except NeedsSymbolic:
                needs_symbolic = True
    if needs_symbolic:
        raise NeedsSymbolic
    return False, comparator.method


def decide_symbolic(task: SymbolicTask) -> tuple[bool, str]:
    """Finish a comparison with sympy (runs in a worker process)."""
    return compare_normalized(task.gold, task.pred, task.options, symbolic=True)


def _details(extracted: str, method: str, gold: str, gold_norm: str | None, pred_norm: str | None) -> dict[str, Any]:
    return {
        "extracted": extracted[:DETAIL_CHARS],
        "extraction": method,
        "gold": gold[:DETAIL_CHARS],
        "gold_normalized": (gold_norm or "")[:DETAIL_CHARS],
        "pred_normalized": (pred_norm or "")[:DETAIL_CHARS],
    }


def prepare(response: str, ground_truth: str, options: MathOptions) -> Decision | SymbolicTask:
    """Everything cheap: a final decision, or the symbolic task still to run."""
    extractors = ("boxed",) if options.require_boxed else options.extractors
    choice = _choice_letters(extract_gold(ground_truth), options)
    extraction = extract_answer(
        response, extractors, strip_think_block=options.strip_think, choices=choice[1] if choice else None
    )
    if extraction is None:
        unfinished = options.strip_think and strip_think(response) is None
        return Decision(
            Verdict.NO_ANSWER,
            "unclosed_think" if unfinished else "no_answer",
            {"extracted": None, "extraction": None, "gold": ground_truth[:DETAIL_CHARS]},
        )
    if choice is not None:
        gold_letter, letters = choice
        letter = extract_choice_letter(extraction.answer, letters)
        if letter is None and not options.require_boxed:
            text = strip_think(response) if options.strip_think else response
            found = extract_choice(text or "", letters)
            letter = found.answer if found else None
        details = _details(extraction.answer, extraction.method, ground_truth, gold_letter, letter)
        verdict = Verdict.CORRECT if letter == gold_letter else Verdict.INCORRECT
        return Decision(verdict, "choice", details)
    gold = _normalized_gold(ground_truth)
    pred = normalize_answer(extraction.answer)
    details = _details(extraction.answer, extraction.method, ground_truth, gold.text, pred.text)
    if extraction.multiple:
        details["multiple_boxed"] = True
    if not pred.text:
        return Decision(Verdict.NO_ANSWER, "empty_answer", details)
    try:
        equal, method = compare_normalized(gold, pred, options, symbolic=False)
    except NeedsSymbolic:
        return SymbolicTask(gold, pred, options, details)
    return Decision(Verdict.CORRECT if equal else Verdict.INCORRECT, method, details)


def verify(response: str, ground_truth: str, options: MathOptions | None = None) -> Decision:
    """The whole decision in this process, without a deadline (for tests and trusted inputs; the
    reward runs the symbolic part in killable workers)."""
    options = options or MathOptions()
    prepared = prepare(response, ground_truth, options)
    if isinstance(prepared, Decision):
        return prepared
    equal, method = decide_symbolic(prepared)
    return Decision(Verdict.CORRECT if equal else Verdict.INCORRECT, method, prepared.details)
