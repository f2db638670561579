"""Shared fixtures: a plugin registry with the local backend, the MOPD loss and two small rewards
written against the Reward protocol, plus tiny data files and stage specs."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pluggy
import pytest
import torch

from cascade_plugins import hookimpl, hookspecs
from cascade_plugins.backends.local import plugin as local_plugin
from cascade_plugins.interfaces import RewardResult, RewardSpec, Sample, StageSpec
from cascade_plugins.losses.mopd import plugin as mopd_plugin
from cascade_plugins.plugins import PluginRegistry

TINY_MODEL = {
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 48,
    "tokenizer": {"alphabet": "abcd>"},
}


class ExactAnswer:
    """1.0 when the response equals the row's ``ground_truth`` exactly."""

    name = "exact_answer"
    reward_range = (0.0, 1.0)

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        return [
            RewardResult(
                float(s.response == s.ground_truth), "correct" if s.response == s.ground_truth else "incorrect"
            )
            for s in samples
        ]

    def close(self) -> None:
        pass


class StartsWith:
    """1.0 when the response starts with the row's ``ground_truth``."""

    name = "starts_with"
    reward_range = (0.0, 1.0)

    def score(self, samples: Sequence[Sample]) -> list[RewardResult]:
        hits = [s.response.startswith(str(s.ground_truth)) for s in samples]
        return [RewardResult(float(h), "correct" if h else "incorrect") for h in hits]

    def close(self) -> None:
        pass


class _TestRewards:
    @hookimpl
    def register_rewards(self, register: Callable[..., None]) -> None:
        register(ExactAnswer)
        register(StartsWith)


@pytest.fixture(scope="session")
def registry() -> PluginRegistry:
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(local_plugin, name="local")
    pm.register(mopd_plugin, name="mopd")
    pm.register(_TestRewards(), name="test_rewards")
    return PluginRegistry(pm, {})


@pytest.fixture
def backend(registry: PluginRegistry) -> Any:
    return registry.make_backend("local")


def write_jsonl(path: Path, rows: Sequence[Mapping[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return str(path)


LETTERS_ROWS = [{"prompt": f"{a}{b}>", "answer": f"{b}{a}", "ground_truth": f"{b}{a}"} for a in "abcd" for b in "abcd"]


@pytest.fixture
def letters_data(tmp_path: Path) -> str:
    """Swap two letters: ``ab>`` answered ``ba`` (16 rows)."""
    return write_jsonl(tmp_path / "letters.jsonl", LETTERS_ROWS)


@pytest.fixture
def make_spec(tmp_path: Path, letters_data: str) -> Callable[..., StageSpec]:
    def make(kind: str = "sft", name: str | None = None, **overrides: Any) -> StageSpec:
        hparams = {"steps": 6, "lr": 1e-2, "max_new_tokens": 4, "save_every": 2}
        if kind == "sft":
            hparams["batch_size"] = 8
        elif kind == "grpo":
            hparams.update(prompts_per_step=4, samples_per_prompt=4)
        else:
            hparams.update(prompts_per_domain=4)
        hparams.update(overrides.pop("hparams", {}))
        fields: dict[str, Any] = {
            "name": name or kind,
            "kind": kind,
            "data": {"letters": letters_data},
            "rewards": {"letters": RewardSpec("exact_answer")},
            "hparams": hparams,
            "output_dir": str(tmp_path / (name or kind)),
            "model": dict(TINY_MODEL),
            "eval": {"letters": (letters_data, RewardSpec("exact_answer"))},
            "seed": 3,
        }
        fields.update(overrides)
        return StageSpec(**fields)

    return make


class RecordingReporter:
    """Keeps what a stage reported; ``fail_at`` raises at that step to simulate a crash."""

    def __init__(self, fail_at: int | None = None):
        self.fail_at = fail_at
        self.started: list[tuple[int, str]] = []
        self.steps: list[tuple[int, dict[str, Any]]] = []
        self.messages: list[str] = []

    def start(self, total_steps: int, description: str = "") -> None:
        self.started.append((total_steps, description))

    def step(self, step: int, metrics: Mapping[str, Any]) -> None:
        if self.fail_at is not None and step == self.fail_at:
            raise KeyboardInterrupt(f"simulated crash at step {step}")
        self.steps.append((step, dict(metrics)))

    def log(self, message: str) -> None:
        self.messages.append(message)


def state_dict_of(path: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(Path(path) / "model.safetensors"))


helpers = SimpleNamespace(
    RecordingReporter=RecordingReporter, state_dict_of=state_dict_of, write_jsonl=write_jsonl, TINY_MODEL=TINY_MODEL
)


@pytest.fixture
def h() -> SimpleNamespace:
    return helpers
