"""The plugin manager: one pluggy manager, built-ins and entry points loaded the same way.

Built-in plugins are modules listed in :data:`BUILTIN_PLUGINS`; third-party plugins are entry
points of group ``cascade_plugins``. Both are registered with ``pm.register(module, name)`` and
then asked for their registrations through the hooks in :mod:`cascade_plugins.hookspecs`.

Which plugins load can be restricted with the ``CASCADE_PLUGINS`` environment variable (or the
``plugins:`` key of a cascade config): a comma-separated list of plugin names (built-in short
names such as ``math`` or entry-point names). An empty value loads no plugin at all; a name that
is neither a built-in nor an installed entry point is an error (:class:`UnknownPluginNameError`).
"""

from __future__ import annotations

import difflib
import importlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from typing import Any, Literal

import pluggy

from cascade_plugins import hookspecs
from cascade_plugins.interfaces import Backend, Reward

ENTRY_POINT_GROUP = "cascade_plugins"
ENV_VAR = "CASCADE_PLUGINS"

#: short name -> module. Each module registers itself through the hooks, like any plugin.
BUILTIN_PLUGINS: dict[str, str] = {
    "math": "cascade_plugins.rewards.math.plugin",
    "mopd": "cascade_plugins.losses.mopd.plugin",
    "code": "cascade_plugins.rewards.code.plugin",
    "local": "cascade_plugins.backends.local.plugin",
    "nemo_rl": "cascade_plugins.backends.nemo_rl.plugin",
    "synthetic": "cascade_plugins.datasets.plugin",
    "competition": "cascade_plugins.rewards.competition.plugin",
}

Kind = Literal["reward", "loss", "backend", "dataset"]
_HOOK_FOR_KIND: dict[Kind, str] = {
    "reward": "register_rewards",
    "loss": "register_losses",
    "backend": "register_backends",
    "dataset": "register_datasets",
}


class LazyFactory:
    """A factory registered under ``name`` whose implementation is imported on first use.

    Built-ins that need torch or transformers register this way, so ``cascade plugins``,
    ``cascade score`` and reward-only processes (NeMo RL environment actors) never import them.
    """

    def __init__(self, name: str, target: str):
        module, _, attr = target.partition(":")
        if not module or not attr:
            raise ValueError(f"lazy target must look like 'package.module:attribute', got {target!r}")
        self.name = name
        self.target = target

    def load(self) -> Callable[..., Any]:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)

    def __call__(self, **options: Any) -> Any:
        return self.load()(**options)

    def __repr__(self) -> str:
        return f"LazyFactory({self.name!r}, {self.target!r})"


class PluginError(Exception):
    """A plugin could not be loaded or used; the message says which and why."""


class PluginConflictError(PluginError):
    """Two plugins registered the same name for the same kind."""


class UnknownPluginError(PluginError, KeyError):
    """A reward/loss/backend/dataset name that no loaded plugin registered."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class UnknownPluginNameError(PluginError):
    """The allow-list names plugins that do not exist; ``unknown`` lists them in the order given."""

    def __init__(self, message: str, unknown: list[str]):
        self.unknown = unknown
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class Registration:
    kind: Kind
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str
    version: str


def _package_version() -> str:
    try:
        return metadata.version("cascade-plugins")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def parse_allow_list(value: str | Iterable[str] | None) -> frozenset[str] | None:
    """``None`` means "load everything"; otherwise the set of plugin names allowed to load."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    return frozenset(v.strip() for v in value if v.strip())


class PluginRegistry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, pm: pluggy.PluginManager, providers: dict[str, tuple[str, str]]):
        self.pm = pm
        self._providers = providers
        self._entries: dict[Kind, dict[str, Registration]] = {k: {} for k in _HOOK_FOR_KIND}
        for kind, hook_name in _HOOK_FOR_KIND.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                impl.function(register=partial(self._register, kind, impl.plugin_name))

    def _register(self, kind: Kind, plugin: str, factory: Callable[..., Any], name: str | None = None) -> None:
        name = name or getattr(factory, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(
                f"plugin {plugin!r} registered a {kind} without a name: pass name=... or give "
                f"{factory!r} a 'name' attribute"
            )
        distribution, version = self._providers.get(plugin, (plugin, "?"))
        existing = self._entries[kind].get(name)
        if existing is not None:
            raise PluginConflictError(
                f"{kind} {name!r} is registered twice: by plugin {existing.plugin!r} "
                f"({existing.distribution} {existing.version}) and by plugin {plugin!r} "
                f"({distribution} {version}); uninstall one or restrict loading with {ENV_VAR}"
            )
        self._entries[kind][name] = Registration(kind, name, factory, plugin, distribution, version)

    # -- lookup -----------------------------------------------------------------------------

    def all(self, kind: Kind | None = None) -> list[Registration]:
        kinds = [kind] if kind else list(_HOOK_FOR_KIND)
        return [reg for k in kinds for reg in sorted(self._entries[k].values(), key=lambda r: r.name)]

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def get(self, kind: Kind, name: str) -> Registration:
        try:
            return self._entries[kind][name]
        except KeyError:
            known = self.names(kind)
            close = difflib.get_close_matches(name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            listing = ", ".join(known) if known else "none loaded"
            raise UnknownPluginError(f"unknown {kind} {name!r}{hint} (available: {listing})") from None

    def make_reward(self, name: str, **options: Any) -> Reward:
        return self.get("reward", name).factory(**options)

    def make_loss(self, name: str, **options: Any) -> Any:
        return self.get("loss", name).factory(**options)

    def make_backend(self, name: str, **options: Any) -> Backend:
        return self.get("backend", name).factory(**options)

    def make_dataset(self, name: str, **options: Any) -> Any:
        return self.get("dataset", name).factory(**options)

    @property
    def hook(self) -> Any:
        """The pluggy hook relay, for the lifecycle hooks (``registry.hook.cascade_finished(...)``)."""
        return self.pm.hook


def load_plugins(allow: str | Iterable[str] | None = None, *, use_env: bool = True) -> PluginRegistry:
    """Build a fresh plugin manager and registry.

    ``allow`` restricts which plugins load (see module doc); when it is ``None`` and ``use_env``
    is true, ``CASCADE_PLUGINS`` decides.
    """
    allowed = parse_allow_list(allow)
    source = None
    if allowed is None and use_env and ENV_VAR in os.environ:
        allowed = parse_allow_list(os.environ[ENV_VAR])
        source = f"{ENV_VAR}={os.environ[ENV_VAR]}"
    if allowed:
        _check_allowed_names(allow if source is None else os.environ[ENV_VAR], allowed, source)

    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    providers: dict[str, tuple[str, str]] = {}
    own_version = _package_version()

    for short_name, module_name in BUILTIN_PLUGINS.items():
        if allowed is not None and short_name not in allowed:
            continue
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise PluginError(f"built-in plugin {short_name!r} ({module_name}) failed to import: {exc}") from exc
        pm.register(module, name=short_name)
        providers[short_name] = ("cascade-plugins", own_version)

    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        if allowed is not None and ep.name not in allowed:
            continue
        dist_name = ep.dist.name if ep.dist else "?"
        dist_version = ep.dist.version if ep.dist else "?"
        if ep.name in providers:
            first = providers[ep.name]
            raise PluginConflictError(
                f"two plugins are named {ep.name!r}: one from {first[0]} {first[1]} and one from "
                f"{dist_name} {dist_version} (entry point {ep.value})"
            )
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} from {dist_name} {dist_version} failed to load ({ep.value}): {exc}"
            ) from exc
        pm.register(plugin, name=ep.name)
        providers[ep.name] = (dist_name, dist_version)

    return PluginRegistry(pm, providers)


def _check_allowed_names(given: str | Iterable[str] | None, allowed: frozenset[str], source: str | None) -> None:
    """Refuse names of plugins that are neither built in nor installed (a typo would load nothing)."""
    known = sorted({*BUILTIN_PLUGINS, *(ep.name for ep in metadata.entry_points(group=ENTRY_POINT_GROUP))})
    order = [n.strip() for n in (given.split(",") if isinstance(given, str) else given or [])]
    unknown = [name for name in dict.fromkeys(order) if name in allowed and name not in known]
    if not unknown:
        return
    parts = []
    for name in unknown:
        close = difflib.get_close_matches(name, known, n=1)
        parts.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    plural = "s" if len(unknown) > 1 else ""
    prefix = f"{source}: " if source else ""
    raise UnknownPluginNameError(
        f"{prefix}unknown plugin{plural} {', '.join(parts)}; installed plugins: {', '.join(known)}", unknown
    )


_default: dict[frozenset[str] | None, PluginRegistry] = {}


def get_registry(allow: str | Iterable[str] | None = None) -> PluginRegistry:
    """The process-wide registry for an allow-list (cached; ``load_plugins`` builds a new one)."""
    allowed = parse_allow_list(allow)
    from_env = allowed is None and ENV_VAR in os.environ
    if from_env:
        allowed = parse_allow_list(os.environ[ENV_VAR])
    if allowed not in _default:
        # through the environment again when it decides, so an error names CASCADE_PLUGINS
        _default[allowed] = load_plugins(None, use_env=True) if from_env else load_plugins(allow, use_env=False)
    return _default[allowed]


def reset_registry_cache() -> None:
    """Forget cached registries (tests, or after installing a plugin in-process)."""
    _default.clear()
