"""Teacher routing: domain -> alias -> checkpoint, explicit default, errors before training."""

from __future__ import annotations

import pytest

from cascade_plugins.interfaces import CheckpointRef
from cascade_plugins.losses.mopd import MissingTeacherRouteError, TeacherRouter

CASCADE2 = {
    "teachers": {
        "math": "/ckpt/sft",
        "rlhf": {"path": "/ckpt/rlhf_branch", "stage": "rlhf_side", "step": 40},
        "multi_domain": "/ckpt/after_md_rl",
    },
    "routes": {"acereason_math": "math", "if_rl": "multi_domain", "mcqa": "multi_domain", "chat": "rlhf"},
}


def test_routes_resolve_domain_to_alias_to_checkpoint() -> None:
    router = TeacherRouter.from_config(CASCADE2)
    assert router.alias_for("if_rl") == "multi_domain"
    assert router.checkpoint_for("acereason_math") == CheckpointRef(path="/ckpt/sft")
    assert router.checkpoint_for("chat") == CheckpointRef(path="/ckpt/rlhf_branch", stage="rlhf_side", step=40)
    # a domain named like an alias routes to it directly
    assert router.alias_for("math") == "math"


def test_missing_route_is_an_error_naming_every_missing_domain() -> None:
    router = TeacherRouter.from_config(CASCADE2)
    with pytest.raises(MissingTeacherRouteError, match=r"'code', 'swe'.*routes.*default"):
        router.validate(["if_rl", "swe", "code", "swe", "math"])
    with pytest.raises(MissingTeacherRouteError, match="'code'"):
        router.checkpoint_for("code")
    assert router.missing(["code", "math", "code"]) == ["code"]
    router.validate(["if_rl", "math", "chat"])  # all routed: no error


def test_default_is_explicit_and_routes_win_over_it() -> None:
    router = TeacherRouter.from_config({**CASCADE2, "default": "multi_domain"})
    assert router.alias_for("code") == "multi_domain"
    assert router.alias_for("chat") == "rlhf"
    router.validate(["anything", "else"])


def test_group_by_checkpoint_deduplicates_shared_checkpoints() -> None:
    router = TeacherRouter({"math": "/ckpt/sft", "if": "/ckpt/md", "mcqa": "/ckpt/md"}, routes={"aime": "math"})
    groups = router.group_by_checkpoint(["if", "aime", "mcqa", "math", "if"])
    assert groups == {CheckpointRef(path="/ckpt/md"): [0, 2, 4], CheckpointRef(path="/ckpt/sft"): [1, 3]}
    with pytest.raises(MissingTeacherRouteError):
        router.group_by_checkpoint(["if", "code"])


def test_config_may_hold_checkpoint_refs_from_the_teacher_registry() -> None:
    ref = CheckpointRef(path="/runs/x/stage_md/step_70", stage="multi_domain_rl", step=70)
    router = TeacherRouter.from_config({"teachers": {"multi_domain": ref}, "default": "multi_domain"})
    assert router.checkpoint_for("anything") == ref


def test_direct_checkpoints_per_domain() -> None:
    router = TeacherRouter.direct({"math": CheckpointRef(path="/a", stage="sft"), "code": "/b"})
    assert router.checkpoint_for("math").stage == "sft"
    assert router.checkpoint_for("code").path == "/b"
    assert router.default is None
    assert set(router.teachers) == {"math", "code"}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"teachers": {}}, "at least one teacher"),
        (
            {"teachers": {"m": "/a"}, "routes": {"aime": "maths"}},
            r"stages\.mopd\.routes\.aime: unknown teacher alias 'maths'",
        ),
        ({"teachers": {"m": "/a"}, "default": "x"}, r"stages\.mopd\.default: unknown teacher alias 'x'"),
        ({"teachers": {"m": "  "}}, r"stages\.mopd\.teachers\.m"),
        ({"teachers": {"m": {"path": "/a", "format": "zip"}}}, r"stages\.mopd\.teachers\.m\.format"),
        ({"teachers": {"m": "/a"}, "route": {}}, r"stages\.mopd\.route: Extra inputs"),
        ({"routes": {}}, r"stages\.mopd\.teachers: Field required"),
    ],
)
def test_config_errors_name_the_key_path(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TeacherRouter.from_config(config, where="stages.mopd")
