"""The ``nemo_rl`` backend: each cascade stage runs as its own NeMo RL process.

For a stage, the backend writes under ``<output_dir>/nemo_rl/``:

- ``stage.yaml``: the stage's NeMo RL config (``defaults:`` the base YAML, then the overrides);
- ``command.sh``: the command that runs it (``launcher`` prefix + the stage runner);
- ``ray_sub.sh``: ``sbatch`` of NeMo RL's ``ray.sub`` with ``COMMAND`` = ``command.sh`` (a Ray
  cluster over ``cluster.num_nodes`` nodes, the stage driven from its head node);
- ``ray_job.sh``: ``ray job submit`` of ``command.sh`` to a running cluster, with ``PYTHONPATH``
  in ``--runtime-env-json`` (a job does not inherit the submitting shell's environment);

then runs ``command.sh``'s command and reads back ``result.json`` (the HF checkpoint and
metrics). With ``mode: emit`` it only writes the files and stops the cascade with
:class:`StageDeferred`, so the stage can be submitted with ``ray_sub.sh`` / ``ray_job.sh``;
running ``cascade run`` again after a stage has finished picks its ``result.json`` up and goes
on with the next stage.

Backend options (``backend: {name: nemo_rl, options: {...}}``):

``nemo_rl_root``  the NeMo RL checkout (default ``$NEMO_RL_ROOT``, else the importable one)
``python``        the Python of NeMo RL's venv (default ``$CASCADE_NEMO_RL_PYTHON``, else this one)
``launcher``      command prefix inside ``command.sh`` (string or list), e.g. ``"nsys profile"``;
                  for several nodes use ``ray_sub.sh`` rather than ``srun`` (one ``srun`` task
                  gives a single-node Ray: NeMo RL's ``init_ray`` starts a local cluster)
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
from cascade_plugins.backends.nemo_rl.stage_checks import (
    metric_problems,
    resolve_child,
    upstream_problems,
    validates,
    validation_route,
)
from cascade_plugins.backends.nemo_rl.stage_config import (
    DEFAULTS_KEY,
    MOPD_KEY,
    StageLayout,
    algorithm_for,
    build_stage_config,
    init_model_name,
    parse_hparams,
    resolve_base,
)
from cascade_plugins.config import SectionError, SectionIssue
from cascade_plugins.interfaces import PluginLookup, StageProblem, StageReporter, StageResult, StageSpec

_PACKAGE_SRC = str(Path(__file__).resolve().parents[3])  # the folder holding cascade_plugins/
_STEP_LINE = re.compile(r"Step\s+(\d+)\s*/\s*(\d+)")
#: keys the backend sets itself; overriding them would break the hand-off between stages
_OWNED_KEYS = (("checkpointing", "checkpoint_dir"), ("policy", "model_name"), ("logger", "log_dir"))


class StageDeferred(RuntimeError):
    """``mode: emit``: the stage's command was written but not run."""


class NemoRLBackend:
    """Runs cascade stages through NeMo RL (see the module docstring for options).

    ``registry`` is the plan's plugin registry: the stage's rewards and loss are resolved there,
    and its allow-list goes into the stage config, so the stage process and its environment
    workers load the same plugins."""

    name = "nemo_rl"

    def __init__(
        self,
        registry: PluginLookup,
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
        self.registry = registry

    # -- planning (no NeMo RL needed) -------------------------------------------------------------

    def stage_config(self, spec: StageSpec) -> dict[str, Any]:
        return build_stage_config(spec, nemo_rl_root=self.nemo_rl_root, registry=self.registry)

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

    def _exports(self) -> str:
        return "".join(
            f"export {k}={shlex.quote(v)}\n" for k, v in sorted(self.process_env().items())
            if k in ("PYTHONPATH", "NEMO_RL_ROOT", *self.env)
        )

    def ray_sub_script(self, layout: StageLayout, num_nodes: int | None) -> str:
        """``sbatch ray.sub`` with this stage's ``command.sh`` as ``COMMAND``: ray.sub brings up
        one Ray cluster over the job's nodes and runs the command on the head node, where NeMo
        RL's ``init_ray`` attaches to that cluster."""
        ray_sub = (self.nemo_rl_root / "ray.sub") if self.nemo_rl_root else Path("${NEMO_RL_ROOT:?}/ray.sub")
        nodes = str(num_nodes) if num_nodes else "1"
        return (
            "#!/usr/bin/env bash\n"
            "# Submit this stage as one SLURM job: NeMo RL's ray.sub starts Ray on every node and runs\n"
            "# COMMAND on the head node. This package, its plugins, the data and the checkpoints must be on\n"
            "# a filesystem every node mounts (MOUNTS). Extra sbatch options: ./ray_sub.sh --account=A ...\n"
            "set -euo pipefail\n"
            ': "${CONTAINER:?set CONTAINER to the NeMo RL container image}"\n'
            ': "${MOUNTS:?set MOUNTS (e.g. /lustre:/lustre) so the paths below exist in the container}"\n'
            f"COMMAND={shlex.quote('bash ' + str(layout.command))} \\\n"
            f"BASE_LOG_DIR=\"${{BASE_LOG_DIR:-{layout.work}}}\" \\\n"
            f"exec sbatch --nodes=\"${{NUM_NODES:-{nodes}}}\" --job-name={shlex.quote(layout.root.name)} \"$@\" "
            f"{ray_sub if self.nemo_rl_root is None else shlex.quote(str(ray_sub))}\n"
        )

    def ray_job_script(self, layout: StageLayout) -> str:
        """``ray job submit`` of ``command.sh``; the job's runtime environment carries PYTHONPATH
        (a Ray job does not inherit the submitting shell's environment)."""
        env = {k: v for k, v in self.process_env().items() if k in ("PYTHONPATH", "NEMO_RL_ROOT", *self.env)}
        runtime_env = json.dumps({"env_vars": env}, sort_keys=True)
        return (
            "#!/usr/bin/env bash\n"
            "# Run this stage on a running Ray cluster (RAY_ADDRESS, e.g. http://head:8265). The paths below\n"
            "# must exist on every node (a shared filesystem).\n"
            "set -euo pipefail\n"
            f"exec ray job submit --address \"${{RAY_ADDRESS:?set RAY_ADDRESS}}\" "
            f"--runtime-env-json {shlex.quote(runtime_env)} \"$@\" -- bash {shlex.quote(str(layout.command))}\n"
        )

    def emit(self, spec: StageSpec) -> StageLayout:
        """Write ``stage.yaml``, ``spec.json``, ``command.sh``, ``ray_sub.sh`` and ``ray_job.sh``."""
        layout = StageLayout(Path(spec.output_dir))
        config = self.stage_config(spec)
        write_text_atomic(layout.config, yaml.safe_dump(config, sort_keys=False))
        write_text_atomic(layout.spec, json.dumps(_spec_to_json(spec), indent=2, default=str))
        script = f"#!/usr/bin/env bash\nset -euo pipefail\n{self._exports()}exec {shlex.join(self.command(spec))}\n"
        resolved, _ = resolve_child(config)
        nodes = ((resolved or {}).get("cluster") or {}).get("num_nodes")
        for path, text in ((layout.command, script),
                           (layout.ray_sub, self.ray_sub_script(layout, nodes if isinstance(nodes, int) else None)),
                           (layout.ray_job, self.ray_job_script(layout))):
            write_text_atomic(path, text)
            path.chmod(0o755)
        return layout

    def check(self, spec: StageSpec) -> list[StageProblem]:
        """What would stop ``spec`` (keyed by its ``hparams`` / ``rewards`` / ``loss`` / ... keys),
        and notes for ``cascade plan`` (``severity="note"``)."""
        problems: list[StageProblem] = []

        def add(issues: Any, severity: Literal["error", "note"] = "error") -> None:
            problems.extend(StageProblem(spec.name, i.key, i.message, i.hint, severity) for i in issues)

        try:
            algorithm_for(spec.kind)
            hparams = parse_hparams(spec.hparams)
        except SectionError as exc:
            add(exc.issues)
            return problems
        for section, key in _OWNED_KEYS:
            if key in (hparams.nemo_rl.overrides.get(section) or {}):
                add([SectionIssue(("hparams", "nemo_rl", "overrides", section, key),
                                  "set by the backend for every stage", "remove it")])
        try:
            base = resolve_base(hparams.nemo_rl.defaults, spec.kind, self.nemo_rl_root)
            if not base.is_file():
                add([SectionIssue(DEFAULTS_KEY, f"NeMo RL config not found: {base}")])
        except SectionError as exc:
            add(exc.issues)
        if spec.init is not None:  # its format, also when the stage config stops earlier
            try:
                init_model_name(spec)
            except SectionError as exc:
                add(exc.issues)
        child: dict[str, Any] | None = None
        try:
            child = self.stage_config(spec)
        except SectionError as exc:
            add(exc.issues)
        except ValueError as exc:  # a name NeMo RL cannot take, say: still a refusal of this stage
            add([SectionIssue((), str(exc))])
        if child is not None and Path(str(child["defaults"])).is_file():
            errors, notes = self._config_problems(spec, child, hparams)
            add(errors)
            add(notes, "note")
        if spec.kind == "mopd":
            missing = sorted(set(spec.data) - set(spec.teachers))
            if missing:
                add([SectionIssue(("teachers",), f"mopd stage has no teacher for domain(s) {', '.join(missing)}")])
        if self.mode == "run" and not Path(self.python).exists():
            add([SectionIssue(("backend", "python"), f"{self.python} does not exist")])
        return list(dict.fromkeys(problems))  # one refusal found twice (init) is listed once

    def _config_problems(
        self, spec: StageSpec, child: dict[str, Any], hparams: Any
    ) -> tuple[list[SectionIssue], list[SectionIssue]]:
        """The stage config as NeMo RL will read it: loadable, valid upstream (when NeMo RL is
        importable here), and ranked by a metric its validation reports; and the notes."""
        from cascade_plugins.backends.nemo_rl import compat

        resolved, why = resolve_child(child)
        if resolved is None:
            return [SectionIssue(DEFAULTS_KEY, f"NeMo RL cannot load the stage config: {why}")], []
        overrides = hparams.nemo_rl.overrides
        algorithm = algorithm_for(spec.kind)
        problems = metric_problems(resolved, overrides, hparams.nemo_rl.select, algorithm)
        notes = self._notes(spec, resolved)
        if compat.nemo_rl_available():
            problems += upstream_problems(child, resolved, algorithm, overrides)
        else:
            notes.append(SectionIssue(
                (),
                "NeMo RL is not importable in this Python, so the stage config was not validated against NeMo RL's "
                "loader and MasterConfig",
                "run `cascade plan` in NeMo RL's venv for that check",
            ))
        return problems, notes

    def _notes(self, spec: StageSpec, resolved: Mapping[str, Any]) -> list[SectionIssue]:
        """What ``cascade plan`` should tell about ``spec`` that is not a problem."""
        notes: list[SectionIssue] = []
        if spec.kind != "sft" and validation_route(resolved) == "gym" and not validates(resolved):
            notes.append(SectionIssue(
                (),
                "trains through NeMo-Gym and runs no validation (grpo.val_period 0: the cascade's eval sets are not "
                "added to Gym stages), so its checkpoint gets no per-domain scores and 'best:<domain>' teachers "
                "never choose it",
                "name the stage instead to use it as a teacher",
            ))
        mopd = resolved.get(MOPD_KEY)
        if spec.kind == "mopd" and isinstance(mopd, dict):
            from cascade_plugins.backends.nemo_rl.mopd_runtime import REFERENCE_TEACHER, plan_teachers

            skip_reference = bool((resolved.get("grpo") or {}).get("skip_reference_policy_logprobs_calculation"))
            plan = plan_teachers(mopd.get("teachers") or {}, str((resolved.get("policy") or {}).get("model_name")),
                                 not skip_reference)
            reused = sorted(t for t, a in plan.teacher_for_task.items() if a == REFERENCE_TEACHER)
            via_reference = f"; {', '.join(reused)}: the starting checkpoint, scored by the reference policy"
            loss = (mopd.get("loss") or {}).get("name")
            notes.append(SectionIssue(
                ("loss",),
                f"MOPD: {len(plan.policies)} teacher policies share the training GPUs with the student and its "
                f"generation engine (the training cluster holds {len(plan.policies)} more worker groups)"
                + (via_reference if reused else "")
                + f"; loss {loss!r} runs as NeMo RL's ClippedPGLossFn (REINFORCE + ICE-POP) set from its options",
            ))
        return notes

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
                f"stage {spec.name!r}: submit {layout.ray_sub} (SLURM) or {layout.ray_job} (a running Ray "
                f"cluster), or run {layout.command}; it writes {layout.result}. Then run the cascade again"
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
