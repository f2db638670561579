"""Plain data types of the sandbox: limits, results, prepared programs, isolation modes."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "ExecResult",
    "Isolation",
    "IsolationSetting",
    "Language",
    "Limits",
    "Program",
    "SandboxUnavailable",
    "Verdict",
]

Language = Literal["python", "cpp"]
IsolationSetting = Literal["auto", "required", "none"]

_MIB = 1024 * 1024
#: the smallest address-space limit set on a program
MIN_ADDRESS_SPACE_MB = 64


class Isolation(enum.StrEnum):
    """The isolation actually in force (compares equal to its string value)."""

    BWRAP = "bwrap"
    UNSHARE = "unshare"
    RLIMITS_ONLY = "rlimits-only"


class Verdict(enum.StrEnum):
    OK = "OK"
    TLE = "TLE"
    MLE = "MLE"
    RE = "RE"
    OLE = "OLE"
    CE = "CE"
    SANDBOX_ERROR = "SANDBOX_ERROR"
    SKIPPED = "SKIPPED"


class SandboxUnavailable(RuntimeError):
    """``isolation="required"`` was asked for but no namespace isolation works on this host."""


@dataclass(frozen=True)
class Limits:
    """Resource limits of one execution. ``wall_time_s=None`` means ``2 * cpu_time_s + 1``."""

    cpu_time_s: float = 2.0
    wall_time_s: float | None = None
    memory_mb: int = 512
    output_bytes: int = 8 * _MIB
    max_processes: int = 64
    file_size_mb: int = 16
    open_files: int = 64
    #: stack size limit; ``None`` means the memory limit (deep recursion is common in solutions)
    stack_mb: int | None = None

    def __post_init__(self) -> None:
        checks = {
            "cpu_time_s": self.cpu_time_s > 0,
            "wall_time_s": self.wall_time_s is None or self.wall_time_s > 0,
            "memory_mb": self.memory_mb >= 1,
            "output_bytes": self.output_bytes >= 0,
            "max_processes": self.max_processes >= 1,
            "file_size_mb": self.file_size_mb >= 0,
            "open_files": self.open_files >= 8,
            "stack_mb": self.stack_mb is None or self.stack_mb >= 1,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid sandbox limits: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    @property
    def total_memory_mb(self) -> int:
        """Backstop for all of a run's processes together (where a memory cgroup can be made):
        twice the per-process limit plus room for the worker and the job's files."""
        return 2 * self.memory_mb + 256

    @property
    def wall_s(self) -> float:
        return self.wall_time_s if self.wall_time_s is not None else 2 * self.cpu_time_s + 1

    def rlimits(self) -> dict[str, list[int]]:
        """The ``setrlimit`` values (soft, hard) applied to the program."""
        cpu = math.ceil(self.cpu_time_s) + 1  # whole seconds; the exact limit is checked on rusage
        stack = (self.stack_mb if self.stack_mb is not None else self.memory_mb) * _MIB
        # A C++ runtime maps more address space than a tiny limit (an old problem's 4 MiB) allows:
        # below the floor, the limit applies to the data segment and private memory instead.
        address_space = max(self.memory_mb, MIN_ADDRESS_SPACE_MB) * _MIB
        small = {"data": [self.memory_mb * _MIB] * 2} if self.memory_mb < MIN_ADDRESS_SPACE_MB else {}
        return {
            **small,
            "cpu": [cpu, cpu + 1],
            "as": [address_space, address_space],
            "stack": [min(stack, address_space), min(stack, address_space)],
            "fsize": [self.file_size_mb * _MIB, self.file_size_mb * _MIB],
            "nproc": [self.max_processes, self.max_processes],
            "nofile": [self.open_files, self.open_files],
            "core": [0, 0],
        }


#: Limits for compiling C++ (g++ is much hungrier than the programs it builds).
COMPILE_LIMITS = Limits(cpu_time_s=20.0, wall_time_s=40.0, memory_mb=2048, max_processes=16, file_size_mb=256)


@dataclass(frozen=True)
class ExecResult:
    verdict: str
    exit_code: int | None
    signal: int | None
    stdout: bytes
    stderr: bytes
    cpu_time_s: float
    wall_time_s: float
    peak_memory_kb: int
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == Verdict.OK

    @classmethod
    def skipped(cls, message: str = "not run: an earlier test failed") -> ExecResult:
        return cls(Verdict.SKIPPED, None, None, b"", b"", 0.0, 0.0, 0, message)

    @classmethod
    def sandbox_error(cls, message: str) -> ExecResult:
        return cls(Verdict.SANDBOX_ERROR, None, None, b"", b"", 0.0, 0.0, 0, message)

    def summary(self, max_bytes: int = 300) -> dict[str, Any]:
        """A JSON-friendly digest (output truncated), for reward details and logs."""
        return {
            "verdict": str(self.verdict),
            "exit_code": self.exit_code,
            "signal": self.signal,
            "cpu_time_s": round(self.cpu_time_s, 4),
            "wall_time_s": round(self.wall_time_s, 4),
            "peak_memory_kb": self.peak_memory_kb,
            "message": self.message,
            "stdout": self.stdout[:max_bytes].decode("utf-8", "replace"),
            "stderr": self.stderr[-max_bytes:].decode("utf-8", "replace"),
        }


@dataclass(frozen=True)
class Program:
    """A program ready to run: Python source, or a C++ binary compiled by :meth:`Sandbox.prepare`."""

    language: Language
    source: str
    extra_files: Mapping[str, bytes] = field(default_factory=dict)
    #: the compiled executable (C++ only)
    binary: bytes | None = None
    #: the compiler's result (C++ only); verdict ``CE`` when compilation failed
    compile_result: ExecResult | None = None
    #: Python only: a program run many times, whose top level only defines (functions, classes,
    #: imports) and whose ``main()`` does the work. Each worker runs the top level once and every
    #: run calls ``main()`` in a fresh fork of it, which saves loading the program each time.
    resident: bool = False

    @property
    def compile_failed(self) -> bool:
        return self.compile_result is not None and self.compile_result.verdict != Verdict.OK
