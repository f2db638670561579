"""The example plugin package, installed for real with pip, is discovered and used by the CLI."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # built without the network (--no-index --no-build-isolation): pip and the build backend
    # (setuptools) must already be in this Python
    for module in ("pip", "setuptools"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"installing the example offline needs {module!r} in this Python")
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--no-build-isolation",
         "--target", str(target), str(ROOT / "examples" / "keyword-reward")],
        check=True, capture_output=True, text=True,
    )
    assert any(p.name.startswith("cascade_keyword_reward-") for p in target.iterdir())
    return target


def cascade(args: list[str], site: Path, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    env.pop("CASCADE_PLUGINS", None)
    return subprocess.run([sys.executable, "-m", "cascade_plugins", *args], env=env, capture_output=True,
                          text=True, check=False, **kwargs)


def test_cascade_plugins_lists_the_installed_example(installed: Path) -> None:
    result = cascade(["plugins", "--kind", "reward"], installed)
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if " keyword " in line)
    assert "cascade-keyword-reward" in line and "0.1.0" in line


def test_cascade_score_uses_the_installed_example(installed: Path, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"response": "a cat", "ground_truth": ["cat", "hat"]}) + "\n"
        + json.dumps({"response": "a cat in a hat", "ground_truth": ["cat", "hat"]}) + "\n"
    )
    out = tmp_path / "out.jsonl"
    result = cascade(["score", "--reward", "keyword", "--input", str(src), "--output", str(out),
                      "--set", "partial_credit=true"], installed)
    assert result.returncode == 0, result.stderr
    rewards = [json.loads(line)["reward"] for line in out.read_text().splitlines()]
    assert rewards == [0.5, 1.0]
