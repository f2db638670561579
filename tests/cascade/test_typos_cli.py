"""Typos as a user makes them on the command line: each is named where it is, with the closest
correct name."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from cascade_plugins.cli import cli

ROOT = Path(__file__).resolve().parents[2]
CI_CONFIG = str(ROOT / "configs" / "quickstart_ci.yaml")


def test_a_misspelt_hparam_is_named_with_the_closest_key() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["plan", CI_CONFIG, "+stages.0.hparams.batchsize=8"])
    assert result.exit_code == 2, result.output
    assert "stages[0].hparams.batchsize: backend 'local' (stage 'sft'): unknown key 'batchsize'; " \
        "did you mean 'batch_size'?" in result.output
    result = runner.invoke(cli, ["plan", CI_CONFIG, "+hparams.common.lrr=0.1"])
    assert result.exit_code == 2, result.output
    assert "hparams.common.lrr: backend 'local' (all 4 stages): unknown key 'lrr'; did you mean 'lr'?" \
        in result.output
    assert "Extra inputs" not in result.output


def test_a_misspelt_plugin_in_the_config_is_blamed_on_its_own_entry(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("CASCADE_PLUGINS", raising=False)
    config = tmp_path / "typo.yaml"
    config.write_text(f"defaults: {CI_CONFIG}\nplugins: [local, mathh, code, mopd, synthetic]\n")
    result = CliRunner().invoke(cli, ["plan", str(config)])
    assert result.exit_code == 2, result.output
    lines = [line.strip() for line in result.output.splitlines()]
    assert lines[0] == "1 problem in config:"
    assert lines[1].startswith(f"{config}:2: plugins[1]: unknown plugin 'mathh' (did you mean 'math'?); "
                               "installed plugins: ")
    assert "domains." not in result.output  # not blamed on the reward the missing plugin would register


def _cascade(args: list[str], env_var: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CASCADE_PLUGINS": env_var, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "cascade_plugins", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_misspelt_plugin_in_the_environment_is_an_error() -> None:
    done = _cascade(["plugins"], "mathh")
    assert done.returncode != 0
    assert "CASCADE_PLUGINS=mathh: unknown plugin 'mathh' (did you mean 'math'?)" in done.stderr
    assert "Traceback" not in done.stderr
    done = _cascade(["plugins", "--kind", "reward"], "math,code")  # correct names still load
    assert done.returncode == 0 and "math" in done.stdout and "code" in done.stdout
