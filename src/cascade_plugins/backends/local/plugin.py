"""Registers the embedded host as backend ``local``."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.backends.local.backend import LocalBackend
from cascade_plugins.hookspecs import Register


@hookimpl
def register_backends(register: Register) -> None:
    register(LocalBackend)
