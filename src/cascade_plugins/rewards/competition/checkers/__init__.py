"""Output checkers: the Kattis default validator and testlib's standard checkers, in Python.

Each checker takes the test's input, the contestant's output and the judge's answer (bytes) and
returns a :class:`CheckOutcome`. Custom checker programs run in the sandbox (see ``judge.py``);
these built-ins run in-process because they are pure, linear-time token comparisons.
"""

from cascade_plugins.rewards.competition.checkers.default import (
    DefaultCheckerOptions,
    default_check,
    parse_validator_flags,
)
from cascade_plugins.rewards.competition.checkers.outcome import CheckOutcome
from cascade_plugins.rewards.competition.checkers.testlib import STANDARD_CHECKERS, standard_check

__all__ = [
    "STANDARD_CHECKERS",
    "CheckOutcome",
    "DefaultCheckerOptions",
    "default_check",
    "parse_validator_flags",
    "standard_check",
]
