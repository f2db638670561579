"""The whole plugin contract of ``cascade_plugins``, as pluggy hooks.

A plugin is any module (or object) with functions decorated by :data:`hookimpl` whose names match
the specs below. Third-party plugins are found through the ``cascade_plugins`` entry-point group;
the built-ins in ``cascade_plugins.rewards``, ``losses``, ``backends`` and ``datasets`` register
themselves exactly the same way (see :mod:`cascade_plugins.plugins`).

Minimal reward plugin::

    from cascade_plugins import hookimpl

    @hookimpl
    def register_rewards(register):
        register(MyReward)          # MyReward.name is the name users write in YAML
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

PROJECT_NAME = "cascade_plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

#: ``register(factory, name=None)``: ``factory`` builds the object from keyword options; ``name``
#: defaults to ``factory.name``.
Register = Callable[..., None]


@hookspec
def register_rewards(register: Register) -> None:
    """Register reward factories (callables taking keyword options, returning a ``Reward``).

    Called once when the plugin manager loads. Each name must be unique across all plugins; a
    clash is an error naming both providers.
    """


@hookspec
def register_losses(register: Register) -> None:
    """Register loss factories (for example the MOPD loss) under the names used in stage YAML."""


@hookspec
def register_backends(register: Register) -> None:
    """Register backend factories (``local``, ``nemo_rl``, ...) that run cascade stages."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories: callables returning an iterable of JSON-like rows, used for
    generated data (``data: {math: {generator: arithmetic, n: 2000}}`` in a cascade YAML)."""


@hookspec
def cascade_stage_started(stage: Any, run_dir: str) -> None:
    """A stage (a resolved ``StageSpec``) is about to run in the cascade run at ``run_dir``.

    Use it to log, notify or open an experiment-tracker run. Exceptions propagate and stop the
    cascade, so keep it robust.
    """


@hookspec
def cascade_stage_finished(stage: Any, result: Any, run_dir: str) -> None:
    """A stage finished; ``result`` is its ``StageResult`` (checkpoint, metrics, validation).

    The run manifest already records the result when this fires, so uploading the checkpoint
    from here is safe.
    """


@hookspec
def cascade_finished(run_dir: str, manifest: Mapping[str, Any]) -> None:
    """Every stage of the cascade at ``run_dir`` finished; ``manifest`` is the final manifest."""


@hookspec(firstresult=True)
def cascade_select_teacher(
    domain: str, candidates: list[Mapping[str, Any]], metric: str, direction: str
) -> Mapping[str, Any] | None:
    """Choose the teacher checkpoint for ``domain`` from ``candidates``; the first non-None wins.

    ``candidates`` are registry entries ``{"stage", "step", "checkpoint", "score"}`` for that
    domain, in the order they were produced. Return one of them, or ``None`` to leave the
    decision to the next plugin and finally to the built-in rule (best ``score`` by
    ``direction``, ``"max"`` or ``"min"``; ties go to the earlier checkpoint).
    """
