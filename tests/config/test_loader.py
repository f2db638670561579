"""Inheritance, override and error-location semantics of the config loader."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from cascade_plugins.config import ConfigError, load_config, load_mapping, load_yaml, validate


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write(
        tmp_path / "base" / "root.yaml",
        "policy:\n  lr: 1.0e-3\n  layers: [a, b]\n  opt:\n    beta: 0.9\n    eps: 1\nname: root\n",
    )
    write(tmp_path / "base" / "mid.yaml", "defaults: root.yaml\npolicy:\n  lr: 2.0e-3\n  opt:\n    eps: 2\nname: mid\n")
    write(tmp_path / "other.yaml", "policy:\n  extra: 7\nname: other\n")
    write(
        tmp_path / "child.yaml",
        "defaults:\n  - base/mid.yaml\n  - other.yaml\npolicy:\n  layers: [c]\nsteps: ${policy.extra}\n",
    )
    return tmp_path


def test_defaults_merge_depth_first_with_child_winning(tree: Path) -> None:
    data = load_yaml(tree / "child.yaml").data
    assert data["policy"]["lr"] == 2.0e-3  # mid overrides root
    assert data["policy"]["opt"] == {"beta": 0.9, "eps": 2}  # dicts merge key by key
    assert data["policy"]["layers"] == ["c"]  # lists replace
    assert data["policy"]["extra"] == 7
    assert data["name"] == "other"  # the later default wins over the earlier one
    assert data["steps"] == 7  # interpolation resolved after merging
    assert "defaults" not in data


def test_defaults_paths_are_relative_to_the_child_file(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree / "base")  # a different working directory must not matter
    assert load_yaml(tree / "child.yaml").data["policy"]["lr"] == 2.0e-3


def test_override_marker_replaces_instead_of_merging(tree: Path) -> None:
    write(tree / "replace.yaml", "defaults: base/mid.yaml\npolicy:\n  _override_: true\n  lr: 5\n")
    data = load_yaml(tree / "replace.yaml").data
    assert data["policy"] == {"lr": 5}


def test_command_line_overrides(tree: Path) -> None:
    loaded = load_yaml(tree / "child.yaml", ["policy.lr=0.5", "+policy.new.deep=[1, 2]", "~policy.opt", "++name=x"])
    assert loaded.data["policy"]["lr"] == 0.5
    assert loaded.data["policy"]["new"] == {"deep": [1, 2]}
    assert "opt" not in loaded.data["policy"]
    assert loaded.data["name"] == "x"
    assert loaded.where(("policy", "lr")) == "<command line>"


def test_interpolation_sees_overrides(tree: Path) -> None:
    assert load_yaml(tree / "child.yaml", ["policy.extra=11"]).data["steps"] == 11


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("policy.lrr=1", "did you mean 'policy.lr'"),
        ("+policy.lr=1", "already exists"),
        ("~policy.nothing", "no key policy.nothing"),
        ("justakey", "bad override"),
    ],
)
def test_bad_overrides_are_named(tree: Path, override: str, needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_yaml(tree / "child.yaml", [override])
    assert needle in str(info.value)
    assert override in str(info.value) or "policy" in str(info.value)


def test_key_locations_trace_to_the_defining_file(tree: Path) -> None:
    loaded = load_yaml(tree / "child.yaml")
    assert loaded.where(("policy", "opt", "beta")) == f"{(tree / 'base' / 'root.yaml').resolve()}:5"
    assert loaded.where(("policy", "opt", "eps")) == f"{(tree / 'base' / 'mid.yaml').resolve()}:5"
    assert loaded.where(("policy", "layers", 0)).endswith("child.yaml:5")


def test_missing_defaults_file_names_the_referencing_file(tree: Path) -> None:
    write(tree / "broken.yaml", "a: 1\ndefaults:\n  - nope.yaml\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(tree / "broken.yaml")
    message = str(info.value)
    assert "broken.yaml:3" in message and "nope.yaml" in message and "defaults[0]" in message


def test_defaults_cycle_is_reported(tree: Path) -> None:
    write(tree / "a.yaml", "defaults: b.yaml\nx: 1\n")
    write(tree / "b.yaml", "defaults: a.yaml\ny: 1\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_yaml(tree / "a.yaml")


def test_yaml_syntax_error_has_file_and_line(tree: Path) -> None:
    write(tree / "bad.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(tree / "bad.yaml")
    assert "bad.yaml:" in str(info.value) and "invalid YAML" in str(info.value)


def test_missing_top_level_file() -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_yaml("/nonexistent/cascade.yaml")


def test_failed_interpolation_is_located(tree: Path) -> None:
    write(tree / "interp.yaml", "a: 1\nb: ${nope.key}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(tree / "interp.yaml")
    assert "interp.yaml:2" in str(info.value) and "interpolation" in str(info.value)


class Opt(BaseModel):
    model_config = ConfigDict(extra="forbid")
    beta: float
    eps: int


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lr: float
    layers: list[str]
    opt: Opt
    extra: int = 0


class Root(BaseModel):
    model_config = ConfigDict(extra="forbid")
    policy: Policy
    name: str
    steps: int


def test_valid_config_validates(tree: Path) -> None:
    root = load_config(tree / "child.yaml", Root)
    assert root.policy.opt.eps == 2 and root.steps == 7


def test_every_problem_is_reported_with_file_key_and_suggestion(tree: Path) -> None:
    write(tree / "typos.yaml", "defaults: child.yaml\npolicy:\n  lrr: 3\n  opt:\n    eps: many\nstepz: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tree / "typos.yaml", Root)
    problems = {p.key_path: p for p in info.value.problems}
    assert "did you mean 'lr'" in problems["policy.lrr"].message
    assert problems["policy.lrr"].line == 3 and problems["policy.lrr"].file.endswith("typos.yaml")
    assert "integer" in problems["policy.opt.eps"].message and problems["policy.opt.eps"].line == 5
    assert "did you mean 'steps'" in problems["stepz"].message
    assert len(info.value.problems) == 3


def test_missing_required_key_is_reported(tree: Path) -> None:
    write(tree / "partial.yaml", "policy:\n  lr: 1\n  layers: []\n  opt: {beta: 1, eps: 1}\nsteps: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(tree / "partial.yaml", Root)
    assert [p.key_path for p in info.value.problems] == ["name"]
    assert "required" in info.value.problems[0].message


def test_load_mapping_applies_overrides() -> None:
    loaded = load_mapping({"a": {"b": 1}, "c": "${a.b}"}, ["a.b=4"])
    assert loaded.data == {"a": {"b": 4}, "c": 4}
    with pytest.raises(ConfigError):
        validate(Root, loaded)
