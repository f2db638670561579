"""The ``math`` reward: does a model's final answer equal the reference answer?

Extraction (:mod:`.extract`), normalization (:mod:`.normalize`), plain numbers (:mod:`.numbers`),
answer structure (:mod:`.structure`), equivalence rules (:mod:`.compare`), the sympy part
(:mod:`.symbolic`, guarded by :mod:`.screen` and run in killable workers) and the reward itself
(:mod:`.reward`). See ``docs/rewards.md`` for the user-facing description.
"""

from cascade_plugins.rewards.math.options import MathOptions, OptionsError
from cascade_plugins.rewards.math.reward import MathReward
from cascade_plugins.rewards.math.verifier import Decision, verify

__all__ = ["Decision", "MathOptions", "MathReward", "OptionsError", "verify"]
