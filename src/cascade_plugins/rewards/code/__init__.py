"""The ``code`` reward: unit tests (LiveCodeBench/NeMo-Gym, HumanEval, MBPP) run in the sandbox."""

from cascade_plugins.rewards.code.reward import CodeReward

__all__ = ["CodeReward"]
