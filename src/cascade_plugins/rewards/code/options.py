"""Options of the ``code`` reward, validated with pydantic (``make_reward("code", **options)``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["CodeOptions", "OptionsError", "validate_options"]


class OptionsError(ValueError):
    """Invalid options; the message names each offending option."""


class CodeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: language of the solution: fences tagged with another language are ignored
    language: Literal["python", "cpp"] = "python"
    #: read only the text after the last ``</think>``; an unclosed ``<think>`` means no answer
    strip_think: bool = True
    #: which fenced block holds the program
    code_block: Literal["last", "first"] = "last"
    #: without any fenced block, treat the whole (post-think) response as the program
    require_fence: bool = True
    #: ``binary``: 1 only if every test passes (Cascade RL); ``fraction``: share of tests passed
    mode: Literal["binary", "fraction"] = "binary"
    #: stop at the first failing test (default: yes in binary mode, no in fraction mode)
    stop_on_first_failure: bool | None = None
    #: stdin/stdout comparison: ``tokens`` (whitespace-insensitive), ``lines`` (trailing
    #: whitespace and blank lines ignored) or ``exact``
    compare: Literal["tokens", "lines", "exact"] = "tokens"
    #: numbers within this absolute-or-relative tolerance compare equal (``None``: exact)
    float_tolerance: float | None = Field(default=None, ge=0.0, le=1.0)
    #: CPU seconds per test
    time_limit_s: float = Field(default=2.0, gt=0.0, le=600.0)
    #: memory per test, MiB
    memory_mb: int = Field(default=512, ge=32, le=65536)
    #: stdout + stderr cap per execution
    output_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    #: sandbox isolation: ``auto``, ``required`` (refuse to run without namespaces) or ``none``
    isolation: Literal["auto", "required", "none"] = "auto"
    #: sandbox worker processes (``None``: the number of CPUs)
    max_workers: int | None = Field(default=None, ge=1, le=1024)
    #: most call/assert/HumanEval suites one sandbox job runs, each against a fresh process of
    #: the solution (``None``: about two jobs per worker per batch, at most 16; ``1``: a job each)
    suites_per_job: int | None = Field(default=None, ge=1, le=256)
    #: reward when every test passes, and for everything else (binary mode)
    correct_reward: float = 1.0
    incorrect_reward: float = 0.0
    #: how many characters of input / expected / actual output the details keep
    detail_chars: int = Field(default=300, ge=0, le=100_000)

    @property
    def stop_early(self) -> bool:
        if self.stop_on_first_failure is not None:
            return self.stop_on_first_failure
        return self.mode == "binary"


def validate_options(options: Mapping[str, Any]) -> CodeOptions:
    try:
        return CodeOptions(**dict(options))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<options>'}: {err['msg']}" for err in exc.errors()
        )
        raise OptionsError(f"invalid code reward options: {problems}") from None
