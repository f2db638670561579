"""The ``nemo_rl`` backend: each cascade stage runs as its own NeMo RL process.

For a stage, the backend writes under ``<output_dir>/nemo_rl/``:

- ``stage.yaml``: the stage's NeMo RL config (``defaults:`` the base YAML, then the overrides);
- ``command.sh``: the command that runs it (``launcher`` prefix + the stage runner);

then runs that command and reads back ``result.json`` (the HF checkpoint and metrics). With
``mode: emit`` it only writes the files and stops the cascade with :class:`StageDeferred`, so the
commands can be submitted to SLURM or as Ray jobs; running ``cascade run`` again after a stage's
command has finished picks its ``result.json`` up and goes on with the next stage.

Backend options (``backend: {name: nemo_rl, options: {...}}``):

``nemo_rl_root``  the NeMo RL checkout (default ``$NEMO_RL_ROOT``, else the importable one)
``python``        the Python of NeMo RL's venv (default ``$CASCADE_NEMO_RL_PYTHON``, else this one)
``launcher``      command prefix, e.g. ``"srun --nodes=1 --ntasks=1"`` (string or list)
``mode``          ``run`` (default) or ``emit``
``env``           extra environment variables for the stage process
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from cascade_plugins.atomic import write_text_atomic
from cascade_plugins.backends.nemo_rl.stage_config import (
    StageLayout,
    algorithm_for,
    build_stage_config,
    parse_hparams,
    resolve_base,
)
from cascade_plugins.interfaces import StageReporter, StageResult, StageSpec

_PACKAGE_SRC = str(Path(__file__).resolve().parents[3])  # the folder holding cascade_plugins/
_STEP_LINE = re.compile(r"Step\s+(\d+)\s*/\s*(\d+)")
#: keys the backend sets itself; overriding them would break the hand-off between stages
_OWNED_KEYS = (("checkpointing", "checkpoint_dir"), ("policy", "model_name"), ("logger", "log_dir"))


class StageDeferred(RuntimeError):
    """``mode: emit``: the stage's command was written but not run."""


def _is_our_reward(name: str) -> bool:
    from cascade_plugins.backends.nemo_rl.host_reward import HostEnvironmentReward
    from cascade_plugins.plugins import get_registry

    return name != HostEnvironmentReward.name and name in get_registry().names("reward")


class NemoRLBackend:
    """Runs cascade stages through NeMo RL (see the module docstring for options)."""

    name = "nemo_rl"

    def __init__(
        self,
        nemo_rl_root: str | None = None,
        python: str | None = None,
        launcher: str | Sequence[str] | None = None,
        mode: Literal["run", "emit"] = "run",
        env: Mapping[str, str] | None = None,
    ) -> None:
        if mode not in ("run", "emit"):
            raise ValueError(f"mode must be 'run' or 'emit', got {mode!r}")
        root = nemo_rl_root or os.environ.get("NEMO_RL_ROOT")
        if root is None:
            from cascade_plugins.backends.nemo_rl import compat

            found = compat.nemo_rl_root()
            root = str(found) if found else None
        self.nemo_rl_root = Path(root).expanduser().resolve() if root else None
        self.python = python or os.environ.get("CASCADE_NEMO_RL_PYTHON") or sys.executable
        self.launcher = shlex.split(launcher) if isinstance(launcher, str) else list(launcher or [])
        self.mode = mode
        self.env = {str(k): str(v) for k, v in (env or {}).items()}

    # -- planning (no NeMo RL needed) -------------------------------------------------------------

    def stage_config(self, spec: StageSpec) -> dict[str, Any]:
        return build_stage_config(spec, nemo_rl_root=self.nemo_rl_root, is_our_reward=_is_our_reward)

    def command(self, spec: StageSpec) -> list[str]:
        layout = StageLayout(Path(spec.output_dir))
        select = parse_hparams(spec.hparams).nemo_rl.select
        return [
            *self.launcher,
            self.python, "-m", "cascade_plugins.backends.nemo_rl.stage_runner",
            "--config", str(layout.config),
            "--stage", spec.name,
            "--result", str(layout.result),
            "--hf-dir", str(layout.hf),
            "--select", select,
        ]

    def process_env(self) -> dict[str, str]:
        """The stage process's environment: ours importable first (NeMo RL forwards the driver's
        environment to its Ray actors, so workers see the same PYTHONPATH)."""
        env = {**os.environ, **self.env}
        paths = [_PACKAGE_SRC, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if self.nemo_rl_root is not None:
            env.setdefault("NEMO_RL_ROOT", str(self.nemo_rl_root))
        return env

    def emit(self, spec: StageSpec) -> StageLayout:
        """Write ``stage.yaml``, ``spec.json`` and ``command.sh`` for ``spec``."""
        layout = StageLayout(Path(spec.output_dir))
        config = self.stage_config(spec)
        write_text_atomic(layout.config, yaml.safe_dump(config, sort_keys=False))
        write_text_atomic(layout.spec, json.dumps(_spec_to_json(spec), indent=2, default=str))
        exports = "".join(
            f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.process_env().items())
            if k in ("PYTHONPATH", "NEMO_RL_ROOT", *self.env)
        )
        script = f"#!/usr/bin/env bash\nset -euo pipefail\n{exports}exec {shlex.join(self.command(spec))}\n"
        write_text_atomic(layout.command, script)
        layout.command.chmod(0o755)
        return layout

    def check(self, spec: StageSpec) -> list[str]:
        problems: list[str] = []
        try:
            algorithm_for(spec.kind)
        except ValueError as exc:
            return [str(exc)]
        try:
            hparams = parse_hparams(spec.hparams)
        except ValueError as exc:
            return [str(exc)]
        for section, key in _OWNED_KEYS:
            if key in (hparams.nemo_rl.overrides.get(section) or {}):
                problems.append(
                    f"hparams.nemo_rl.overrides.{section}.{key}: set by the backend for every stage; remove it"
                )
        try:
            base = resolve_base(hparams.nemo_rl.defaults, spec.kind, self.nemo_rl_root)
            if not base.is_file():
                problems.append(f"hparams.nemo_rl.defaults: NeMo RL config not found: {base}")
        except ValueError as exc:
            problems.append(str(exc))
        try:
            self.stage_config(spec)
        except ValueError as exc:
            problems.append(str(exc))
        if spec.init is not None and spec.init.format != "hf":
            problems.append(f"init checkpoint {spec.init.path} is {spec.init.format!r}; stages hand over HF weights")
        if spec.kind == "mopd":
            missing = sorted(set(spec.data) - set(spec.teachers))
            if missing:
                problems.append(f"mopd stage has no teacher for domain(s) {missing}")
        if self.mode == "run" and not Path(self.python).exists():
            problems.append(f"backend option python: {self.python} does not exist")
        return problems

    # -- running --------------------------------------------------------------------------------

    def run_stage(self, spec: StageSpec, reporter: StageReporter) -> StageResult:
        layout = StageLayout(Path(spec.output_dir))
        if layout.result.is_file():
            result = StageResult.from_dict(json.loads(layout.result.read_text()))
            if result.stage == spec.name:
                reporter.log(f"stage {spec.name}: reusing {layout.result}")
                return result
        self.emit(spec)
        if self.mode == "emit":
            raise StageDeferred(
                f"stage {spec.name!r}: run {layout.command} (it writes {layout.result}), then run the cascade again"
            )
        reporter.log(f"stage {spec.name}: {layout.command} (log: {layout.log})")
        started = False
        with layout.log.open("a", encoding="utf-8") as log:
            process = subprocess.Popen(
                self.command(spec), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                env=self.process_env(), cwd=str(self.nemo_rl_root) if self.nemo_rl_root else None,
            )
            assert process.stdout is not None
            try:
                for line in process.stdout:
                    log.write(line)
                    match = _STEP_LINE.search(line)
                    if match:
                        step, total = int(match.group(1)), int(match.group(2))
                        if not started:
                            reporter.start(total, spec.name)
                            started = True
                        reporter.step(step, {})
            except BaseException:
                # interrupted (SIGINT / SIGTERM): the stage process must not train on unwatched
                _stop(process)
                raise
            code = process.wait()
        if code != 0:
            tail = "".join(layout.log.read_text(encoding="utf-8", errors="replace").splitlines(True)[-30:])
            raise RuntimeError(f"stage {spec.name!r} failed (exit {code}); see {layout.log}:\n{tail}")
        if not layout.result.is_file():
            raise RuntimeError(f"stage {spec.name!r} finished without writing {layout.result}")
        return StageResult.from_dict(json.loads(layout.result.read_text()))


def _stop(process: subprocess.Popen[str], grace_seconds: float = 30.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _spec_to_json(spec: StageSpec) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(spec)
