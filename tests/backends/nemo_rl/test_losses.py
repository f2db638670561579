"""The stage's loss, by name from the plan's plugins: what NeMo RL's MOPD path can feed and express,
at plan time (``realise_loss``) and in the stage process (``stage_runner.stage_loss``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy
import pytest

from cascade_plugins import hookimpl, hookspecs
from cascade_plugins.backends.nemo_rl.losses import MOPD_FEEDS, mopd_loss_config, realise_loss
from cascade_plugins.backends.nemo_rl.stage_runner import stage_loss
from cascade_plugins.config import SectionError
from cascade_plugins.interfaces import LossInput
from cascade_plugins.losses.mopd import plugin as mopd_plugin
from cascade_plugins.plugins import PluginRegistry, load_plugins

REGISTRY = load_plugins(["nemo_rl", "mopd"], use_env=False)


class SampledTokenKL:
    """A third-party loss that needs only what the MOPD path feeds, but is not MOPD."""

    name = "sampled_kl"
    inputs = frozenset({LossInput.POLICY_LOGPROBS, LossInput.TEACHER_LOGPROBS})

    def __init__(self, **options: Any) -> None:
        self.options = options


class ThirdPartyLosses:
    @hookimpl
    def register_losses(self, register: Callable[..., None]) -> None:
        register(SampledTokenKL)


def refused_keys(name: str | None, options: dict[str, Any] | None = None, registry: Any = REGISTRY) -> list[tuple]:
    with pytest.raises(SectionError) as info:
        realise_loss(name, options, registry)
    return [issue.key for issue in info.value.issues]


def test_the_default_loss_is_mopd_and_its_options_become_upstream_keys() -> None:
    loss = realise_loss(None, {"outcome_weight": 0.25, "normalization": "token"}, REGISTRY)
    assert (loss.name, loss.outcome_weight) == ("mopd", 0.25)
    assert loss.options == {"outcome_weight": 0.25, "normalization": "token"}
    assert loss.config == mopd_loss_config({"outcome_weight": 0.25, "normalization": "token"})
    assert loss.config["loss_fn"]["token_level_loss"] is True


def test_what_the_mopd_path_cannot_feed_or_express_is_refused_at_the_loss_key() -> None:
    assert LossInput.TEACHER_TOPK not in MOPD_FEEDS
    assert refused_keys("mopd_topk") == [("loss",)]  # needs the teacher's top-k tokens
    assert refused_keys("mopdd") == [("loss",)]
    assert refused_keys("mopd", {"normalisation": "token"}) == [("loss", "options")]
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    pm.register(mopd_plugin, name="mopd")
    pm.register(ThirdPartyLosses(), name="third_party")
    with pytest.raises(SectionError) as info:
        realise_loss("sampled_kl", {}, PluginRegistry(pm, {}))
    (issue,) = info.value.issues
    assert issue.key == ("loss",) and issue.hint is not None and "'mopd'" in issue.hint


def test_the_stage_runner_builds_the_loss_the_stage_names() -> None:
    built = stage_loss({"loss": {"name": "mopd", "options": {"outcome_weight": 0.5}}}, REGISTRY)
    assert (built.name, built.outcome_weight) == ("mopd", 0.5)
    with pytest.raises(ValueError, match=r"^cascade_mopd\.loss: "):
        stage_loss({"loss": {"name": "mopd_topk"}}, REGISTRY)
    # the plugins the plan allowed travel in the stage config: a loss of a plugin left out is unknown
    with pytest.raises(ValueError, match=r"^cascade_mopd\.loss: unknown loss 'mopd'"):
        stage_loss({"plugins": ["nemo_rl"], "loss": {}})
