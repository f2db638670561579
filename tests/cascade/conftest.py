"""Fixtures for cascade tests: the ``ledger`` test plugin installed as a real entry-point plugin
(a ``.dist-info`` on the path), in this process and for ``cascade`` subprocesses."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cascade_plugins.plugins import PluginRegistry, load_plugins, reset_registry_cache

HERE = Path(__file__).parent


def _install_ledger(site: Path) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "ledger_plugin.py", site / "ledger_plugin.py")
    dist = site / "cascade_ledger_test-0.1.dist-info"
    dist.mkdir(exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cascade-ledger-test\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[cascade_plugins]\nledger = ledger_plugin\n")
    return site


@pytest.fixture(scope="session")
def ledger_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    site = _install_ledger(tmp_path_factory.mktemp("ledger_site"))
    sys.path.insert(0, str(site))
    reset_registry_cache()
    yield site
    sys.path.remove(str(site))
    reset_registry_cache()


@pytest.fixture
def ledger_registry(ledger_site: Path) -> PluginRegistry:
    """A fresh registry holding only the ledger plugin (found through its entry point)."""
    registry = load_plugins(["ledger"], use_env=False)
    assert registry.names("backend") == ["ledger"]
    return registry


@pytest.fixture
def cli_env(ledger_site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ledger_site), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.pop("CASCADE_PLUGINS", None)
    for key in [k for k in env if k.startswith("LEDGER_")]:
        del env[key]
    env["COLUMNS"] = "200"
    return env


def run_cli(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cascade_plugins", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout,
    )


LEDGER_CONFIG: dict[str, Any] = {
    "backend": "ledger",
    "plugins": ["ledger"],
    "domains": {"math": "nonempty", "code": "nonempty"},
    "data": {
        "math_train": {"generator": "ledger_rows", "n": 6, "domain": "math"},
        "code_train": {"generator": "ledger_rows", "n": 5, "domain": "code"},
        "math_val": {"generator": "ledger_rows", "n": 2, "seed": 1, "domain": "math"},
        "code_val": {"generator": "ledger_rows", "n": 2, "seed": 1, "domain": "code"},
    },
    "eval": {"sets": {"math": {"data": "math_val"}, "code": {"data": "code_val"}}},
    "hparams": {"common": {"steps": 3}},
    "stages": [
        {"name": "sft", "kind": "sft", "data": {"math": "math_train", "code": "code_train"},
         "hparams": {"validation": {"math": 0.2, "code": 0.3}}},
        {"name": "math_rl", "kind": "grpo", "data": {"math": "math_train"},
         "hparams": {"validation": {"math": 0.6, "code": 0.1}}},
        {"name": "code_rl", "kind": "grpo", "data": {"code": "code_train"},
         "hparams": {"validation": {"math": 0.4, "code": 0.7}}},
        {"name": "mopd", "kind": "mopd", "data": {"math": "math_train", "code": "code_train"},
         "teachers": {"math": "best:math", "code": "best:code"}, "loss": "ledger_loss",
         "hparams": {"validation": {"math": 0.65, "code": 0.66}}},
    ],
}


def ledger_config(**changes: Any) -> dict[str, Any]:
    config = copy.deepcopy(LEDGER_CONFIG)
    config.update(copy.deepcopy(changes))
    return config


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def expected_history(*stages: str, steps: int = 3) -> list[str]:
    return ["base", *(f"{stage}:{step}" for stage in stages for step in range(1, steps + 1))]


class Kit:
    """Helpers for test modules (importable test helpers do not mix with --import-mode=importlib)."""

    config = staticmethod(ledger_config)
    write = staticmethod(write_config)
    history = staticmethod(expected_history)
    cli = staticmethod(run_cli)


@pytest.fixture
def kit() -> type[Kit]:
    return Kit
