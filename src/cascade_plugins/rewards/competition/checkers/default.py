"""Kattis' default output validator (problemtools ``default_validator.cc``), ported exactly.

Flags (``validator_flags`` in ``problem.yaml``, ``output_validator_flags`` in ``testdata.yaml``):
``case_sensitive``, ``space_change_sensitive``, ``float_absolute_tolerance E``,
``float_relative_tolerance E``, ``float_tolerance E`` (both). Tokens are separated by C
``isspace`` characters; string tokens compare case-insensitively unless ``case_sensitive``; when a
tolerance is set and the judge token is a finite number, the output token must be a finite number
within the absolute **or** the relative tolerance.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cascade_plugins.rewards.competition.checkers.numbers import parse_finite_float
from cascade_plugins.rewards.competition.checkers.outcome import CheckOutcome

_WHITESPACE_SPLIT = re.compile(rb"([ \t\n\v\f\r]+)")


@dataclass(frozen=True, slots=True)
class DefaultCheckerOptions:
    case_sensitive: bool = False
    space_change_sensitive: bool = False
    #: negative means "not set", as in problemtools
    float_absolute_tolerance: float = -1.0
    float_relative_tolerance: float = -1.0

    @property
    def use_floats(self) -> bool:
        return self.float_absolute_tolerance >= 0 or self.float_relative_tolerance >= 0


def parse_validator_flags(flags: Sequence[str]) -> DefaultCheckerOptions:
    """Parse Kattis validator flags; an unknown flag or a bad number raises ``ValueError``."""
    case_sensitive = space_sensitive = False
    abs_tol = rel_tol = -1.0
    i = 0
    while i < len(flags):
        flag = flags[i]
        if flag == "case_sensitive":
            case_sensitive = True
        elif flag == "space_change_sensitive":
            space_sensitive = True
        elif flag in ("float_absolute_tolerance", "float_relative_tolerance", "float_tolerance"):
            if i + 1 == len(flags):
                raise ValueError(f"validator flag {flag!r} needs a number after it")
            value = parse_finite_float(flags[i + 1].encode())
            if value is None:
                raise ValueError(f"validator flag {flag!r} needs a number, got {flags[i + 1]!r}")
            if flag != "float_relative_tolerance":
                abs_tol = value
            if flag != "float_absolute_tolerance":
                rel_tol = value
            i += 1
        else:
            raise ValueError(
                f"unknown validator flag {flag!r} (known: case_sensitive, space_change_sensitive, "
                "float_tolerance, float_absolute_tolerance, float_relative_tolerance)"
            )
        i += 1
    return DefaultCheckerOptions(case_sensitive, space_sensitive, abs_tol, rel_tol)


def _show(token: bytes) -> str:
    text = token.decode("utf-8", "replace")
    return text if len(text) <= 64 else text[:61] + "..."


def _compare_tokens(judge: bytes, team: bytes, options: DefaultCheckerOptions, index: int) -> str | None:
    """``None`` if the tokens match, else the reason."""
    if options.use_floats:
        judge_value = parse_finite_float(judge)
        if judge_value is not None:
            team_value = parse_finite_float(team)
            if team_value is None:
                return f"token {index}: expected a number, got {_show(team)!r}"
            diff = abs(judge_value - team_value)
            if not diff <= options.float_absolute_tolerance and not (
                diff <= options.float_relative_tolerance * abs(judge_value)
            ):
                return (
                    f"token {index}: too large difference: judge {_show(judge)}, output {_show(team)}, "
                    f"difference {judge_value - team_value:.6g}"
                )
            return None
    same = judge == team if options.case_sensitive else judge.lower() == team.lower()
    if not same:
        return f"token {index}: expected {_show(judge)!r}, got {_show(team)!r}"
    return None


def default_check(answer: bytes, output: bytes, options: DefaultCheckerOptions | None = None) -> CheckOutcome:
    """Compare ``output`` with the judge's ``answer`` as Kattis' default validator does."""
    options = options or DefaultCheckerOptions()
    if options.space_change_sensitive:
        # Alternating [token, space, token, ...]: the space runs must be identical.
        judge_parts = _WHITESPACE_SPLIT.split(answer)
        team_parts = _WHITESPACE_SPLIT.split(output)
        for i in range(min(len(judge_parts), len(team_parts))):
            judge_part, team_part = judge_parts[i], team_parts[i]
            if i % 2 == 1:
                if judge_part != team_part:
                    return CheckOutcome("WA", f"space change error after token {i // 2 + 1}")
            elif judge_part or team_part:
                if not judge_part or not team_part:
                    return CheckOutcome("WA", f"token {i // 2 + 1}: token and white space differ")
                reason = _compare_tokens(judge_part, team_part, options, i // 2 + 1)
                if reason:
                    return CheckOutcome("WA", reason)
        if len(judge_parts) != len(team_parts):
            return CheckOutcome("WA", "output length differs from the answer (space change sensitive)")
        return CheckOutcome("AC")
    judge_tokens = answer.split()
    team_tokens = output.split()
    for index, (judge, team) in enumerate(zip(judge_tokens, team_tokens, strict=False), start=1):
        reason = _compare_tokens(judge, team, options, index)
        if reason:
            return CheckOutcome("WA", reason)
    if len(team_tokens) < len(judge_tokens):
        empty = " (the output was empty)" if not team_tokens else ""
        return CheckOutcome(
            "WA", f"output ended early{empty}; next expected token: {_show(judge_tokens[len(team_tokens)])!r}"
        )
    if len(team_tokens) > len(judge_tokens):
        return CheckOutcome("WA", f"trailing output: {_show(team_tokens[len(judge_tokens)])!r}")
    return CheckOutcome("AC")


__all__ = ["DefaultCheckerOptions", "default_check", "parse_validator_flags"]
