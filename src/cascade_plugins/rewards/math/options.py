"""Options of the ``math`` reward, validated with pydantic.

Reward-wide options come as keyword arguments (``make_reward("math", require_boxed=True)``); a sample
may override the answer-level ones through ``sample.metadata["math"]`` (a JSON object), for example
``{"choices": "ABCD"}`` for one multiple-choice question in a mixed data set.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cascade_plugins.rewards.math.judge import JudgeOptions

__all__ = ["EXTRACTORS", "SAMPLE_OPTION_KEYS", "MathOptions", "OptionsError", "validate_options"]

Extractor = Literal["boxed", "final_answer", "answer_line", "choice", "last_math", "last_number"]
#: Every extraction rule, in the default priority order.
EXTRACTORS: tuple[Extractor, ...] = (
    "boxed",
    "final_answer",
    "answer_line",
    "choice",
    "last_math",
    "last_number",
)


class OptionsError(ValueError):
    """Invalid options; the message names each offending option."""


class MathOptions(BaseModel):
    """Everything that decides how an answer is extracted and compared."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: reward for a correct answer
    correct_reward: float = 1.0
    #: reward for every other verdict (incorrect, no_answer, timeout, error)
    incorrect_reward: float = 0.0
    #: accept only answers written in ``\boxed{}``/``\fbox{}`` (the anti-hacking setting for RL)
    require_boxed: bool = False
    #: extraction rules to use (see ``extract.py``: the explicit answer written last wins)
    extractors: tuple[Extractor, ...] = EXTRACTORS
    #: read only the text after the last ``</think>``; an unclosed ``<think>`` means no answer
    strip_think: bool = True
    #: multiple-choice letters (e.g. ``"ABCD"``); ``None`` = detect from a one-letter ground truth
    choices: str | None = None
    #: relative tolerance (absolute below 1) for a decimal approximating an exact non-decimal value
    tolerance: float = Field(default=1e-6, ge=0.0, le=0.1)
    #: ``(a, b)`` tuples compare element by element in order; ``False``: as multisets
    ordered_tuples: bool = True
    #: a number with ``%`` also matches the same number without it and its value divided by 100
    percent_lenient: bool = True
    #: a gold set/interval also accepts an equivalent inequality (``x \in [1,2]`` vs ``1 \le x \le 2``)
    allow_set_relation_comp: bool = False
    #: ``False``: expressions equal up to a renaming of their variables also match (``f(x)`` vs ``f(y)``)
    strict: bool = True
    #: wall-clock budget for one sample's symbolic check, in seconds
    timeout: float = Field(default=5.0, gt=0.0, le=600.0)
    #: worker processes for symbolic checks (``None``: ``min(4, cpu_count)``)
    workers: int | None = Field(default=None, ge=1, le=256)
    #: ``RLIMIT_AS`` of each worker in MiB (``None``: no limit)
    worker_memory_mb: int | None = Field(default=4096, ge=256)
    #: a judge model asked about every answer the rules reject (``None``: off); see ``judge.py``
    judge: JudgeOptions | None = None

    @field_validator("choices")
    @classmethod
    def _choices_are_letters(cls, value: str | None) -> str | None:
        if value is None:
            return None
        letters = value.replace(",", "").replace(" ", "").upper()
        if not letters or not letters.isalpha() or len(set(letters)) != len(letters):
            raise ValueError(f"choices must be distinct letters such as 'ABCD', got {value!r}")
        return letters

    @field_validator("extractors")
    @classmethod
    def _extractors_not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("extractors must name at least one extraction rule")
        return value

    @model_validator(mode="after")
    def _rewards_ordered(self) -> MathOptions:
        if self.correct_reward == self.incorrect_reward:
            raise ValueError("correct_reward and incorrect_reward must differ")
        return self

    @property
    def reward_range(self) -> tuple[float, float]:
        low, high = sorted((self.correct_reward, self.incorrect_reward))
        return (low, high)


#: Options a sample may override through ``metadata["math"]`` (process-level ones are excluded).
SAMPLE_OPTION_KEYS = frozenset(
    {
        "require_boxed",
        "extractors",
        "strip_think",
        "choices",
        "tolerance",
        "ordered_tuples",
        "percent_lenient",
        "allow_set_relation_comp",
        "strict",
    }
)


def _format_validation_error(exc: ValidationError, where: str) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"]) or "(options)"
        if error["type"] == "extra_forbidden":
            known = ", ".join(sorted(MathOptions.model_fields))
            parts.append(f"unknown option {location!r} (known options: {known})")
        else:
            parts.append(f"option {location!r}: {error['msg']}")
    return f"invalid {where}: " + "; ".join(parts)


def validate_options(options: Mapping[str, Any], where: str = "math reward options") -> MathOptions:
    """Build :class:`MathOptions` or raise :class:`OptionsError` naming every bad option."""
    try:
        return MathOptions(**dict(options))
    except ValidationError as exc:
        raise OptionsError(_format_validation_error(exc, where)) from None


def merge_sample_options(base: MathOptions, overrides: Any) -> MathOptions:
    """``base`` with a sample's ``metadata["math"]`` overrides applied (validated)."""
    if not isinstance(overrides, Mapping):
        raise OptionsError(f"metadata key 'math' must be a JSON object of options, got {type(overrides).__name__}")
    not_allowed = sorted(set(overrides) - SAMPLE_OPTION_KEYS)
    if not_allowed:
        raise OptionsError(
            f"metadata.math: option(s) {', '.join(map(repr, not_allowed))} cannot be set per sample "
            f"(allowed: {', '.join(sorted(SAMPLE_OPTION_KEYS))})"
        )
    merged = base.model_dump()
    merged.update(overrides)
    return validate_options(merged, where="metadata.math")
