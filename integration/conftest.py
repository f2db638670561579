"""Integration tests against a real NeMo RL checkout (see integration/run.sh).

Every test here is skipped, with the reason, when NeMo RL is not importable. On Python < 3.12
NeMo RL's pydantic configs need the TypedDict shim, applied before anything imports nemo_rl.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cascade_plugins.backends.nemo_rl import compat

# helper modules of this folder (tiny_model, recipes) import by name under --import-mode=importlib
sys.path.insert(0, str(Path(__file__).parent))

NEMO_RL_IMPORTABLE = importlib.util.find_spec("nemo_rl") is not None
SKIP_REASON = (
    "NeMo RL is not importable in this Python; run integration/run.sh <nemo-rl checkout> "
    "(it builds a NeMo RL venv and runs these tests in it)"
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    mine = [item for item in items if Path(str(item.fspath)).is_relative_to(here)]
    if NEMO_RL_IMPORTABLE:
        compat.apply_python_shims()
        return
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=SKIP_REASON))


@pytest.fixture(scope="session")
def nemo_rl_root() -> Path:
    root = compat.nemo_rl_root()
    assert root is not None
    return root


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A third-party reward plugin, visible to every process through PYTHONPATH: a module plus a
    ``.dist-info`` with its ``cascade_plugins`` entry point (how an installed plugin is found)."""
    root = tmp_path_factory.mktemp("plugins")
    (root / "exact_reward_plugin.py").write_text(
        '''
from cascade_plugins import hookimpl
from cascade_plugins.interfaces import RewardResult


class ExactReward:
    """1.0 when the response, stripped, equals the ground truth."""

    name = "exact"
    reward_range = (0.0, 1.0)

    def __init__(self, bonus: float = 1.0):
        self.bonus = bonus

    def score(self, samples):
        out = []
        for s in samples:
            ok = s.response.strip() == str(s.ground_truth).strip()
            out.append(RewardResult(self.bonus if ok else 0.0, "correct" if ok else "incorrect"))
        return out

    def close(self):
        pass


class CpuCountReward:
    """Scores every sample with the CPU count its scoring actor sees (what a sandbox pool is
    sized by): PYTHON_CPU_COUNT where set, else os.cpu_count()."""

    name = "cpu_count"
    reward_range = (0.0, 1024.0)

    def score(self, samples):
        import os

        count = float(os.environ.get("PYTHON_CPU_COUNT") or os.cpu_count())
        return [RewardResult(count, "correct") for _ in samples]

    def close(self):
        pass


@hookimpl
def register_rewards(register):
    register(ExactReward)
    register(CpuCountReward)
'''
    )
    dist = root / "exact_reward_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: exact-reward-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[cascade_plugins]\nexact = exact_reward_plugin\n")
    return root


@pytest.fixture(scope="session")
def ray_cluster(plugin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local Ray cluster whose workers import our package and the test plugin."""
    import ray

    paths = [str(plugin_dir), str(Path(compat.__file__).resolve().parents[3])]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    os.environ["PYTHONPATH"] = os.pathsep.join(paths)
    sys.path.insert(0, str(plugin_dir))
    from cascade_plugins.plugins import reset_registry_cache

    reset_registry_cache()
    # logical CPUs: our scoring actors reserve cpus_per_worker each (default 1), so a test that
    # builds several environments needs more slots than this machine has cores
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.environ["PYTHONPATH"]}},
        _temp_dir=str(tmp_path_factory.mktemp("ray")),
    )
    try:
        yield
    finally:
        ray.shutdown()


