"""Synthetic tasks the rewards really check, for the quickstart, CI and plugin development.

Two domains that share no skill, so that training one can make the other forget:

- ``arithmetic`` (domain ``math``): ``"37+48="`` answered ``\\boxed{85}``, scored by the ``math`` reward
  against ``ground_truth``;
- ``string_functions`` (domain ``code``): ``"f(abc)=cba f(hgde)=edgh "`` (input/output examples of
  a string transformation) answered ``f=lambda s:s[::-1]``, scored by the ``code`` reward with unit
  tests on the shown and on unseen inputs.

Every factory takes ``n``, ``seed`` and ``split`` (``train``, ``validation`` or ``test``) and returns
rows with ``prompt``, ``domain``, ``answer`` (the SFT target) and ``ground_truth`` or ``tests``. The
splits never share a problem: each problem is assigned to a split by a stable hash of its prompt.

``thinking=p`` writes answers in the two modes of the Nemotron-Cascade 2 chat template: a share
``p`` of the rows (chosen by a hash of seed and prompt) in thinking mode, ``<think>work</think>answer``,
the others in non-thinking mode, ``<think></think>answer``. Both rewards read only what follows
``</think>`` (an unclosed ``<think>`` is no answer). The work is what helps in each domain: the
columns for ``arithmetic`` (a tiny model adds far better with them than in its head), the examples
read back for ``string_functions`` (which adds nothing and, at about 20 tokens, leaves no room for
the program within the quickstart's 28-token budget). So the mode that pays differs by domain: a
habit that RL on one domain strengthens and that costs the other.
"""

from __future__ import annotations

import hashlib
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "SPLITS",
    "THINK_CLOSE",
    "THINK_OPEN",
    "StringTransform",
    "arithmetic",
    "column_steps",
    "split_of",
    "string_functions",
    "string_transforms",
    "with_mode",
]

Split = Literal["train", "validation", "test"]
SPLITS: tuple[Split, ...] = ("train", "validation", "test")

#: share of the problem space per split, in tenths (train 8/10, validation 1/10, test 1/10)
_SPLIT_BUCKETS: dict[Split, range] = {"train": range(2, 10), "validation": range(1, 2), "test": range(0, 1)}


THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def with_mode(answer: str, work: str, key: str, thinking: float) -> str:
    """``answer`` in thinking mode (``<think>work</think>answer``) for a share ``thinking`` of the
    keys, else in non-thinking mode (``<think></think>answer``); the draw is a stable hash of ``key``."""
    draw = int.from_bytes(hashlib.sha256(f"mode:{key}".encode()).digest()[:8], "big") / 2**64
    return f"{THINK_OPEN}{work if draw < thinking else ''}{THINK_CLOSE}{answer}"


def _check_thinking(thinking: float | None) -> None:
    if thinking is not None and not 0.0 <= thinking <= 1.0:
        raise ValueError(f"thinking must be a share in [0, 1] (or null for no mode tags), got {thinking!r}")


def split_of(key: str) -> Split:
    """The split a problem belongs to, from a stable hash of its key (its prompt)."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % 10
    return next(name for name, buckets in _SPLIT_BUCKETS.items() if bucket in buckets)


def _check_args(n: int, split: str) -> None:
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")


def _rng(name: str, seed: int, split: str) -> random.Random:
    return random.Random(f"{name}:{seed}:{split}")


def _draw_unique(
    n: int, split: Split, rng: random.Random, draw: Callable[[random.Random], dict[str, Any]], space: int
) -> list[dict[str, Any]]:
    """``n`` distinct rows of ``split``; fails clearly when the problem space is too small."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < n:
        attempts += 1
        if attempts > 50 * n + 1000:
            raise ValueError(
                f"could not draw {n} distinct {split} problems (about {space} exist in the whole space); "
                "ask for fewer rows or widen the task"
            )
        row = draw(rng)
        if row["prompt"] in seen or split_of(row["prompt"]) != split:
            continue
        seen.add(row["prompt"])
        rows.append(row)
    return rows


def column_steps(a: int, b: int, op: str) -> str:
    """Two-digit column arithmetic written out: ``37+48`` -> ``7+8=15,3+4+1=8,``;
    ``73-25`` -> ``13-5=8,7-1-2=4,`` (a borrowed ten shows as ``13`` and ``-1``)."""
    a1, a0, b1, b0 = a // 10, a % 10, b // 10, b % 10
    if op == "+":
        carry = int(a0 + b0 >= 10)
        tens = f"{a1}+{b1}+1={a1 + b1 + 1}" if carry else f"{a1}+{b1}={a1 + b1}"
        return f"{a0}+{b0}={a0 + b0},{tens},"
    borrow = int(a0 < b0)
    ones = f"{a0 + 10 * borrow}-{b0}={a0 + 10 * borrow - b0}"
    tens = f"{a1}-1-{b1}={a1 - 1 - b1}" if borrow else f"{a1}-{b1}={a1 - b1}"
    return f"{ones},{tens},"


def arithmetic(
    n: int,
    seed: int = 0,
    split: Split = "train",
    max_operand: int = 99,
    operations: str = "+-",
    show_work: bool = False,
    thinking: float | None = None,
) -> list[dict[str, Any]]:
    """``a+b=`` / ``a-b=`` problems on non-negative operands up to ``max_operand`` (``a >= b`` for
    subtraction, so answers are never negative), answered ``\\boxed{result}``; with ``show_work``
    the answer first works the two columns out (:func:`column_steps`), a short chain of thought
    that a tiny model learns far faster than the carry in its head. With ``thinking`` (a share of
    rows, see the module docstring) the columns go inside ``<think>...</think>`` for that share and
    the others answer at once."""
    _check_args(n, split)
    _check_thinking(thinking)
    if thinking is not None and show_work:
        raise ValueError("give show_work or thinking, not both (thinking puts the columns inside <think>)")
    if max_operand < 1:
        raise ValueError(f"max_operand must be >= 1, got {max_operand}")
    if not operations or set(operations) - set("+-*"):
        raise ValueError(f"operations must be a non-empty string of '+', '-', '*', got {operations!r}")
    if (show_work or thinking is not None) and ("*" in operations or max_operand > 99):
        raise ValueError("show_work and thinking write out two-digit '+' and '-' only (max_operand <= 99, no '*')")

    def draw(rng: random.Random) -> dict[str, Any]:
        op = rng.choice(operations)
        a, b = rng.randint(0, max_operand), rng.randint(0, max_operand)
        if op == "-" and a < b:
            a, b = b, a
        result = a + b if op == "+" else a - b if op == "-" else a * b
        prompt = f"{a}{op}{b}="
        work = column_steps(a, b, op) if show_work else ""
        answer = f"{work}\\boxed{{{result}}}"
        if thinking is not None:
            answer = with_mode(answer, column_steps(a, b, op).rstrip(","), f"{seed}:{prompt}", thinking)
        return {"prompt": prompt, "domain": "math", "answer": answer, "ground_truth": str(result)}

    pairs = (max_operand + 1) ** 2
    space = sum(pairs if op != "-" else (pairs + max_operand + 1) // 2 for op in set(operations))
    return _draw_unique(n, split, _rng("arithmetic", seed, split), draw, space)


arithmetic.name = "arithmetic"  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class StringTransform:
    """One string transformation: the Python body of ``f(s)`` and the same thing as a callable."""

    body: str
    apply: Callable[[str], str]


def _rev(s: str) -> str:
    return s[::-1]


def string_transforms(alphabet: str = string.ascii_lowercase) -> list[StringTransform]:
    """The catalogue the ``string_functions`` task draws from (each an expression of ``s``)."""
    transforms = [
        StringTransform("s[::-1]", _rev),
        StringTransform("s.upper()", str.upper),
        StringTransform("s+s", lambda s: s + s),
        StringTransform("s[::2]", lambda s: s[::2]),
    ]
    for k in (1, 2):
        transforms.append(StringTransform(f"s[{k}:]", lambda s, k=k: s[k:]))
        transforms.append(StringTransform(f"s[:{k}]", lambda s, k=k: s[:k]))
        transforms.append(StringTransform(f"s[-{k}:]", lambda s, k=k: s[-k:]))
    for c in alphabet:
        transforms.append(StringTransform(f"s+'{c}'", lambda s, c=c: s + c))
        transforms.append(StringTransform(f"'{c}'+s", lambda s, c=c: c + s))
    return transforms


def _word(rng: random.Random, alphabet: str, low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def string_functions(
    n: int,
    seed: int = 0,
    split: Split = "train",
    shown_examples: int = 2,
    hidden_tests: int = 5,
    min_length: int = 3,
    max_length: int = 5,
    alphabet: str = "abcdefgh",
    thinking: float | None = None,
) -> list[dict[str, Any]]:
    """Infer a string transformation from ``shown_examples`` input/output pairs and write it as
    ``f=lambda s:...``; ``tests`` are asserts on the shown and ``hidden_tests`` unseen inputs.
    With ``thinking`` (a share of rows, see the module docstring) that share first reads the
    examples back inside ``<think>...</think>`` (``abc->cba,hgde->edgh``)."""
    _check_args(n, split)
    _check_thinking(thinking)
    if shown_examples < 1 or hidden_tests < 0:
        raise ValueError("shown_examples must be >= 1 and hidden_tests >= 0")
    if not 1 <= min_length <= max_length:
        raise ValueError(f"need 1 <= min_length <= max_length, got {min_length}, {max_length}")
    if len(set(alphabet)) < 2 or not set(alphabet) <= set(string.ascii_lowercase):
        raise ValueError(f"alphabet must hold at least two lowercase letters, got {alphabet!r}")
    transforms = string_transforms(alphabet)

    def draw(rng: random.Random) -> dict[str, Any]:
        transform = rng.choice(transforms)
        inputs: list[str] = []
        while len(inputs) < shown_examples + hidden_tests:
            word = _word(rng, alphabet, min_length, max_length)
            if word not in inputs:
                inputs.append(word)
        shown = " ".join(f"f({s})={transform.apply(s)}" for s in inputs[:shown_examples])
        answer = f"f=lambda s:{transform.body}"
        if thinking is not None:
            work = ",".join(f"{s}->{transform.apply(s)}" for s in inputs[:shown_examples])
            answer = with_mode(answer, work, f"{seed}:{shown} ", thinking)
        return {
            "prompt": f"{shown} ",
            "domain": "code",
            "answer": answer,
            "tests": [f"assert f({s!r}) == {transform.apply(s)!r}" for s in inputs],
        }

    space = len(transforms) * len(alphabet) ** (min_length * shown_examples)
    return _draw_unique(n, split, _rng("string_functions", seed, split), draw, space)


string_functions.name = "string_functions"  # type: ignore[attr-defined]
