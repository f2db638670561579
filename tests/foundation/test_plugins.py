"""The plugin manager: built-ins and entry points, conflicts, restriction, lookups."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from cascade_plugins import plugins
from cascade_plugins.plugins import PluginConflictError, PluginError, UnknownPluginError, load_plugins


def make_distribution(root: Path, dist: str, version: str, module: str, body: str, ep_name: str) -> None:
    """A real installed distribution on ``sys.path``: a module plus its dist-info entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(body))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[cascade_plugins]\n{ep_name} = {module}\n")


REWARD_MODULE = """
from cascade_plugins import hookimpl, RewardResult

class {cls}:
    name = "{name}"
    reward_range = (0.0, 1.0)
    def __init__(self, bonus=0.0):
        self.bonus = bonus
    def score(self, samples):
        return [RewardResult(min(1.0, 0.5 + self.bonus), "ok", {{}}) for _ in samples]
    def close(self):
        pass

@hookimpl
def register_rewards(register):
    register({cls})
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(plugins.ENV_VAR, raising=False)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("tp_")]:
        del sys.modules[name]


def test_entry_point_plugin_is_discovered_with_its_distribution(site: Path) -> None:
    make_distribution(site, "tp-alpha", "1.2.3", "tp_alpha", REWARD_MODULE.format(cls="Alpha", name="alpha"), "alpha")
    registry = load_plugins()
    reg = registry.get("reward", "alpha")
    assert (reg.plugin, reg.distribution, reg.version) == ("alpha", "tp-alpha", "1.2.3")
    reward = registry.make_reward("alpha", bonus=0.25)
    assert reward.score([object()])[0].reward == 0.75


def test_same_reward_name_from_two_plugins_names_both_providers(site: Path) -> None:
    make_distribution(site, "tp-one", "1.0", "tp_one", REWARD_MODULE.format(cls="One", name="dup"), "one")
    make_distribution(site, "tp-two", "2.0", "tp_two", REWARD_MODULE.format(cls="Two", name="dup"), "two")
    with pytest.raises(PluginConflictError) as info:
        load_plugins()
    message = str(info.value)
    assert "'dup'" in message and "tp-one 1.0" in message and "tp-two 2.0" in message


def test_restriction_by_env_var_and_argument(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    make_distribution(site, "tp-one", "1.0", "tp_one", REWARD_MODULE.format(cls="One", name="dup"), "one")
    make_distribution(site, "tp-two", "2.0", "tp_two", REWARD_MODULE.format(cls="Two", name="dup"), "two")
    assert load_plugins(allow=["one"]).get("reward", "dup").distribution == "tp-one"
    monkeypatch.setenv(plugins.ENV_VAR, "two")
    assert load_plugins().get("reward", "dup").distribution == "tp-two"
    monkeypatch.setenv(plugins.ENV_VAR, "")
    assert load_plugins().all() == []


def test_builtins_register_like_third_party_plugins(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (site / "tp_builtin.py").write_text(REWARD_MODULE.format(cls="Builtin", name="inhouse"))
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", {"inhouse": "tp_builtin"})
    reg = load_plugins().get("reward", "inhouse")
    assert reg.plugin == "inhouse" and reg.distribution == "cascade-plugins"
    assert load_plugins(allow="").names("reward") == []
    with pytest.raises(PluginError, match=r"unknown plugin 'inhuose' \(did you mean 'inhouse'\?\)"):
        load_plugins(allow="inhuose")


def test_broken_builtin_fails_loudly(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", {"ghost": "tp_does_not_exist"})
    with pytest.raises(PluginError, match="ghost"):
        load_plugins()


def test_broken_entry_point_names_its_distribution(site: Path) -> None:
    make_distribution(site, "tp-bad", "0.1", "tp_bad", "raise RuntimeError('boom')\n", "bad")
    with pytest.raises(PluginError) as info:
        load_plugins()
    assert "tp-bad 0.1" in str(info.value) and "boom" in str(info.value)


def test_registration_without_a_name_is_refused(site: Path) -> None:
    make_distribution(
        site, "tp-noname", "0.1", "tp_noname",
        "from cascade_plugins import hookimpl\n@hookimpl\ndef register_rewards(register):\n    register(object)\n",
        "noname",
    )
    with pytest.raises(PluginError, match="without a name"):
        load_plugins()


def test_unknown_name_suggests_the_closest(site: Path) -> None:
    make_distribution(site, "tp-alpha", "1.0", "tp_alpha", REWARD_MODULE.format(cls="Alpha", name="alpha"), "alpha")
    registry = load_plugins(allow=["alpha"])
    with pytest.raises(UnknownPluginError) as info:
        registry.make_reward("alpah")
    assert "did you mean 'alpha'" in str(info.value)


def test_lifecycle_hooks_reach_plugins(site: Path) -> None:
    (site / "tp_listener.py").write_text(textwrap.dedent("""
        from cascade_plugins import hookimpl
        EVENTS = []
        @hookimpl
        def cascade_stage_started(stage, run_dir):
            EVENTS.append(("started", stage, run_dir))
        @hookimpl
        def cascade_select_teacher(domain, candidates, metric, direction):
            return candidates[-1] if domain == "math" else None
    """))
    info = site / "tp_listener-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-listener\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[cascade_plugins]\nlistener = tp_listener\n")
    registry = load_plugins(allow=["listener"])
    registry.hook.cascade_stage_started(stage="s1", run_dir="/r")
    import tp_listener

    assert tp_listener.EVENTS == [("started", "s1", "/r")]
    candidates = [{"stage": "a"}, {"stage": "b"}]
    assert registry.hook.cascade_select_teacher(domain="math", candidates=candidates, metric="acc",
                                                direction="max") == {"stage": "b"}
    assert registry.hook.cascade_select_teacher(domain="code", candidates=candidates, metric="acc",
                                                direction="max") is None
