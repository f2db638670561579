"""Every NeMo RL version difference we rely on, in one place.

Tested against the commits pinned in ``integration/pins.toml`` (v0.7.0 and a later main). What
differs between them and how it is bridged:

- config sections are pydantic models on newer versions and TypedDicts (plain dicts) on older
  ones: :func:`cfg_get` reads either;
- the loss module moved from ``nemo_rl.algorithms.loss_functions`` (<= 0.5) to
  ``nemo_rl.algorithms.loss`` (>= 0.6): :func:`loss_types`;
- NeMo RL requires Python 3.13; its pydantic configs hold ``typing.TypedDict`` fields, which
  pydantic rejects below Python 3.12. :func:`apply_python_shims` makes 3.11/3.12 work (for CPU
  test venvs) by pointing ``typing.TypedDict`` at ``typing_extensions.TypedDict`` before NeMo RL
  is imported; on 3.13 it does nothing.

Nothing here imports NeMo RL at module import time.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

Algorithm = Literal["grpo", "sft"]


def apply_python_shims() -> None:
    """Make NeMo RL's pydantic configs importable below Python 3.12 (no-op on 3.12+)."""
    if sys.version_info >= (3, 12):
        return
    import typing

    import typing_extensions

    typing.TypedDict = typing_extensions.TypedDict  # type: ignore[misc]


def nemo_rl_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nemo_rl") is not None


def nemo_rl_version() -> str:
    apply_python_shims()
    from nemo_rl import package_info

    return str(package_info.__version__)


def nemo_rl_root() -> Path | None:
    """The checkout NeMo RL is imported from (``examples/`` and configs live there)."""
    import importlib.util

    spec = importlib.util.find_spec("nemo_rl")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).resolve().parent.parent


def cfg_get(section: Any, key: str, default: Any = None) -> Any:
    """``section[key]`` for dict sections, ``section.key`` for pydantic ones."""
    if section is None:
        return default
    if isinstance(section, Mapping):
        return section.get(key, default)
    return getattr(section, key, default)


def system_python_executable() -> str:
    apply_python_shims()
    from nemo_rl.distributed.virtual_cluster import PY_EXECUTABLES

    return str(PY_EXECUTABLES.SYSTEM)


def env_registries() -> Any:
    """NeMo RL's environment, actor-environment and processor registries."""
    apply_python_shims()
    from nemo_rl.data import processors
    from nemo_rl.distributed import ray_actor_environment_registry as actor_envs
    from nemo_rl.environments import utils as env_utils

    from cascade_plugins.backends.nemo_rl.registration import EnvRegistries

    return EnvRegistries(
        env_registry=env_utils.ENV_REGISTRY,
        register_env=env_utils.register_env,
        actor_registry=actor_envs.ACTOR_ENVIRONMENT_REGISTRY,
        system_executable=system_python_executable(),
        processor_registry=processors.PROCESSOR_REGISTRY,
        register_processor=processors.register_processor,
    )


def loss_types() -> tuple[Any, Any]:
    """``(LossType, LossInputType)`` wherever this NeMo RL keeps them."""
    apply_python_shims()
    try:
        from nemo_rl.algorithms.loss.interfaces import LossInputType, LossType
    except ImportError:  # <= 0.5
        from nemo_rl.algorithms.interfaces import LossInputType, LossType  # type: ignore[no-redef]
    return LossType, LossInputType


def master_config_class(algorithm: Algorithm) -> type:
    apply_python_shims()
    if algorithm == "grpo":
        from nemo_rl.algorithms.grpo import MasterConfig
    elif algorithm == "sft":
        from nemo_rl.algorithms.sft import MasterConfig  # type: ignore[no-redef]
    else:
        raise ValueError(f"no NeMo RL MasterConfig for algorithm {algorithm!r}")
    return MasterConfig


def load_config_dict(path: str | Path, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """NeMo RL's own ``load_config`` (``defaults:`` inheritance) + Hydra overrides, resolved."""
    apply_python_shims()
    from nemo_rl.utils.config import load_config, parse_hydra_overrides, register_omegaconf_resolvers
    from omegaconf import OmegaConf

    register_omegaconf_resolvers()
    config = load_config(str(path))
    if overrides:
        config = parse_hydra_overrides(config, list(overrides))
    return OmegaConf.to_container(config, resolve=True)  # type: ignore[return-value]


def validate_master_config(algorithm: Algorithm, config: Mapping[str, Any]) -> Any:
    """The upstream ``MasterConfig`` for ``config`` (raises pydantic's ValidationError)."""
    return master_config_class(algorithm)(**dict(config))


def checkpoint_manager(checkpointing: Mapping[str, Any]) -> Any:
    apply_python_shims()
    from nemo_rl.utils.checkpoint import CheckpointManager

    return CheckpointManager(dict(checkpointing))


def convert_dcp_to_hf(
    dcp_path: str | Path, hf_path: str | Path, model_name: str, tokenizer_name: str, hf_overrides: Mapping[str, Any]
) -> str:
    apply_python_shims()
    from nemo_rl.utils.native_checkpoint import convert_dcp_to_hf as upstream

    return upstream(
        dcp_ckpt_path=str(dcp_path),
        hf_ckpt_path=str(hf_path),
        model_name_or_path=model_name,
        tokenizer_name_or_path=tokenizer_name,
        hf_overrides=dict(hf_overrides or {}),
    )


#: the FQN NeMo RL registers its Megatron policy worker under (its venv holds ``megatron.bridge``)
MEGATRON_WORKER_FQN = "nemo_rl.models.policy.workers.megatron_policy_worker.MegatronPolicyWorker"


def megatron_converter_script(root: Path | None = None) -> Path:
    root = root or nemo_rl_root()
    if root is None:
        raise RuntimeError("NeMo RL is not importable; cannot locate examples/converters")
    return root / "examples" / "converters" / "convert_megatron_to_hf.py"


def mcore_python_command(root: Path, environ: Mapping[str, str]) -> list[str]:
    """The Python that has ``megatron.bridge`` (the Megatron converter needs it): the one NeMo RL
    runs its Megatron workers with. That is the driver's Python under
    ``NEMO_RL_PY_EXECUTABLES_SYSTEM=1``; otherwise the worker's venv that NeMo RL built under
    ``$NEMO_RL_VENV_DIR`` (default ``<checkout>/venvs``), and before that venv exists
    ``uv run --locked --extra mcore`` in the checkout (NeMo RL's ``PY_EXECUTABLES.MCORE``)."""
    if environ.get("NEMO_RL_PY_EXECUTABLES_SYSTEM", "0") == "1":
        return [sys.executable]
    venv_dir = Path(environ.get("NEMO_RL_VENV_DIR") or root / "venvs")
    worker_python = venv_dir / MEGATRON_WORKER_FQN / "bin" / "python"
    if worker_python.is_file():
        return [str(worker_python)]
    return ["uv", "run", "--locked", "--extra", "mcore", "--directory", str(root), "python"]


def grpo_entry_script() -> Path:
    root = nemo_rl_root()
    if root is None:
        raise RuntimeError("NeMo RL is not importable; cannot locate examples/run_grpo.py")
    return root / "examples" / "run_grpo.py"


def sft_entry_script() -> Path:
    root = nemo_rl_root()
    if root is None:
        raise RuntimeError("NeMo RL is not importable; cannot locate examples/run_sft.py")
    return root / "examples" / "run_sft.py"


@contextlib.contextmanager
def wrapped_advantage_estimator(wrap: Callable[[Any], Any]) -> Iterator[None]:
    """While active, ``grpo_train`` builds its advantage estimator as usual and then passes it
    through ``wrap``. ``grpo_train`` creates the estimator internally with no hook, so this
    wraps the module-level factory for the duration of one stage process."""
    apply_python_shims()
    from nemo_rl.algorithms import grpo

    factory = getattr(grpo, "_create_advantage_estimator", None)
    if factory is None:
        raise RuntimeError(
            "this NeMo RL has no nemo_rl.algorithms.grpo._create_advantage_estimator; "
            "the synchronous MOPD path needs it (see docs/nemo-rl.md for the async OPD path)"
        )

    def patched(master_config: Any) -> Any:
        return wrap(factory(master_config))

    grpo._create_advantage_estimator = patched
    try:
        yield
    finally:
        grpo._create_advantage_estimator = factory


def batched_data_dict_class() -> type:
    apply_python_shims()
    from nemo_rl.distributed.batched_data_dict import BatchedDataDict

    return BatchedDataDict


def _env_names_of(data_config: Mapping[str, Any]) -> list[str]:
    """Environment names of every dataset entry (mappings and lists of them)."""
    names: set[str] = set()
    for key in ("train", "validation", "default"):
        entries = data_config.get(key)
        for entry in entries if isinstance(entries, list) else [entries]:
            if isinstance(entry, Mapping) and "env_name" in entry:
                names.add(entry["env_name"])
    return sorted(names)


@contextlib.contextmanager
def list_dataset_env_scan() -> Iterator[None]:
    """Up to v0.7.0, upstream ``setup_response_data`` creates environments only for a
    ``data.train`` *mapping*, so a list of datasets with their own ``env_name`` found no
    environment. While active, that version's env-name scan is swapped for one that reads lists
    too (newer versions are left alone)."""
    apply_python_shims()
    from nemo_rl.data import utils as data_utils

    scan = data_utils.extract_necessary_env_names
    if scan({"train": [{"env_name": "probe"}]}) == ["probe"]:
        yield
        return
    data_utils.extract_necessary_env_names = _env_names_of
    try:
        yield
    finally:
        data_utils.extract_necessary_env_names = scan


def setup_response_data(tokenizer: Any, data_config: Any, env_configs: Any) -> Any:
    """Upstream ``setup_response_data`` with :func:`list_dataset_env_scan` applied."""
    from nemo_rl.data import utils as data_utils

    with list_dataset_env_scan():
        return data_utils.setup_response_data(tokenizer, data_config, env_configs)


#: the clusters ``grpo.setup`` trains the policy on (colocated inference / separate inference)
TRAINING_CLUSTER_NAMES = ("grpo_policy_cluster", "grpo_train_cluster")


@contextlib.contextmanager
def extra_training_worker_groups(extra: int) -> Iterator[list[Any]]:
    """While active, the training cluster ``grpo.setup`` builds holds ``extra`` more colocated
    worker groups per GPU (its bundles get more CPU slots and each worker a smaller GPU share), so
    ``extra`` inference-only teacher policies fit next to the student and the colocated
    generation engine, as upstream distillation sizes its cluster for its teacher. Yields the
    training clusters built (the caller checks one was)."""
    apply_python_shims()
    from nemo_rl.algorithms import grpo

    original = grpo.RayVirtualCluster
    built: list[Any] = []

    class SizedForTeachers(original):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            if kwargs.get("name") in TRAINING_CLUSTER_NAMES:
                groups = int(kwargs.get("max_colocated_worker_groups", 1)) + extra
                kwargs["max_colocated_worker_groups"] = groups
                built.append(self)
                print(f"{kwargs['name']}: room for {groups} colocated worker groups "
                      f"({extra} for MOPD teachers)", flush=True)
            super().__init__(*args, **kwargs)

    grpo.RayVirtualCluster = SizedForTeachers
    try:
        yield built
    finally:
        grpo.RayVirtualCluster = original


@contextlib.contextmanager
def after_grpo_setup(
    hook: Callable[[tuple[Any, ...], dict[str, Any], tuple[Any, ...]], tuple[Any, ...]],
) -> Iterator[None]:
    """While active, ``grpo.setup(*args, **kwargs)`` returns ``hook(args, kwargs, <what upstream
    setup returned>)``. NeMo RL's ``examples/run_grpo.py`` imports ``setup`` when it runs, so it
    sees the wrapped one."""
    apply_python_shims()
    from nemo_rl.algorithms import grpo

    original = grpo.setup

    def patched(*args: Any, **kwargs: Any) -> Any:
        return hook(args, kwargs, tuple(original(*args, **kwargs)))

    grpo.setup = patched
    try:
        yield
    finally:
        grpo.setup = original


def lm_policy_class() -> type:
    apply_python_shims()
    from nemo_rl.models.policy.lm_policy import Policy

    return Policy


def opd_advantage_estimator(loss_config: Any) -> Any:
    """Upstream's ``OPDAdvantageEstimator``: ``sg[teacher - prev_logprobs] * mask``."""
    apply_python_shims()
    from nemo_rl.algorithms.advantage_estimator import OPDAdvantageEstimator

    return OPDAdvantageEstimator({"name": "opd"}, loss_config)


@contextlib.contextmanager
def validation_rounds(on_round: Callable[[int, dict[str, float]], None]) -> Iterator[None]:
    """While active, every ``validate`` call inside ``grpo_train`` is bracketed by
    ``begin_round(step)`` / ``end_round()`` on our validation environments, and ``on_round``
    gets the step and the per-domain scores. (``grpo_train`` calls the module-level
    ``validate``; upstream environments without these methods are left alone.)"""
    apply_python_shims()
    import ray
    from nemo_rl.algorithms import grpo

    original = grpo.validate

    def patched(policy_generation: Any, val_dataloader: Any, tokenizer: Any, val_task_to_env: Any,
                step: int, *args: Any, **kwargs: Any) -> Any:
        envs = {id(e): e for e in (val_task_to_env or {}).values() if hasattr(e, "begin_round")}
        ray.get([e.begin_round.remote(step) for e in envs.values()])
        try:
            return original(policy_generation, val_dataloader, tokenizer, val_task_to_env, step, *args, **kwargs)
        finally:
            scores: dict[str, float] = {}
            for part in ray.get([e.end_round.remote() for e in envs.values()]):
                scores.update(part)
            if scores:
                on_round(step, scores)

    grpo.validate = patched
    try:
        yield
    finally:
        grpo.validate = original
