"""Competition grading: Kattis/ICPC problem packages, IOI subtasks (CMS score types), checkers.

The pure parts (package loading, checkers, score types, verdict rules) import nothing heavy; the
:class:`~cascade_plugins.rewards.competition.judge.Judge` runs solutions and checker programs
through :mod:`cascade_plugins.sandbox`.
"""

from cascade_plugins.rewards.competition.errors import ProblemPackageError

__all__ = ["ProblemPackageError"]
