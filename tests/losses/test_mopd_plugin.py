"""The MOPD losses are found through the plugin registry like any third-party plugin."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from cascade_plugins.losses.mopd import MOPDLoss, TopKMOPDLoss
from cascade_plugins.plugins import BUILTIN_PLUGINS, load_plugins


def test_both_losses_are_registered_by_the_builtin_mopd_plugin() -> None:
    assert BUILTIN_PLUGINS["mopd"] == "cascade_plugins.losses.mopd.plugin"
    registry = load_plugins("mopd")
    assert registry.names("loss") == ["mopd", "mopd_topk"]
    assert registry.get("loss", "mopd").plugin == "mopd"
    loss = registry.make_loss("mopd", normalization="token", importance_ratio_max=3.0)
    assert isinstance(loss, MOPDLoss)
    assert loss.options.importance_ratio_max == 3.0
    assert isinstance(registry.make_loss("mopd_topk", chunk_size=64), TopKMOPDLoss)


def test_made_loss_runs_and_bad_options_are_rejected() -> None:
    registry = load_plugins("mopd")
    loss = registry.make_loss("mopd")
    student = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    out = loss(student, student.detach(), torch.tensor([[-0.5, -2.5]]), torch.ones(1, 2, dtype=torch.bool))
    out.loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    with pytest.raises(ValidationError, match="importance_ratio_maximum"):
        registry.make_loss("mopd", importance_ratio_maximum=2.0)
