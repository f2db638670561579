"""Registers the embedded host as backend ``local`` (imported on first use: torch is heavy)."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.hookspecs import Register
from cascade_plugins.plugins import LazyFactory


@hookimpl
def register_backends(register: Register) -> None:
    register(LazyFactory("local", "cascade_plugins.backends.local.backend:LocalBackend"))
