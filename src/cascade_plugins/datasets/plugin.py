"""Registers the synthetic dataset generators (``arithmetic``, ``string_functions``)."""

from __future__ import annotations

from cascade_plugins import hookimpl
from cascade_plugins.datasets.synthetic import arithmetic, string_functions
from cascade_plugins.hookspecs import Register


@hookimpl
def register_datasets(register: Register) -> None:
    register(arithmetic)
    register(string_functions)
