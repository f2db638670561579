"""Run untrusted programs in isolation with hard limits.

``Sandbox`` runs Python and C++ programs in pre-started workers isolated by bubblewrap (user, pid,
net, ipc namespaces; read-only system directories; a private, wiped work directory), with rlimits
and a wall-clock deadline; see ``docs/sandbox.md``.
"""

from cascade_plugins.sandbox.limits import (
    COMPILE_LIMITS,
    ExecResult,
    Isolation,
    Limits,
    Program,
    SandboxUnavailable,
    Verdict,
)
from cascade_plugins.sandbox.sandbox import Sandbox, SandboxProcess, language_and_standard, normalize_language

__all__ = [
    "COMPILE_LIMITS",
    "ExecResult",
    "Isolation",
    "Limits",
    "Program",
    "Sandbox",
    "SandboxProcess",
    "SandboxUnavailable",
    "Verdict",
    "language_and_standard",
    "normalize_language",
]
