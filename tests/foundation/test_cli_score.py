"""`cascade score` end to end through the real CLI, with a reward plugin installed for the test."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cascade_plugins import plugins
from cascade_plugins.cli import cli

LENGTH_REWARD = """
from cascade_plugins import hookimpl, RewardResult

class LengthReward:
    '''1.0 when the response has exactly ground_truth characters.'''
    name = "length"
    reward_range = (0.0, 1.0)
    def __init__(self, slack: int = 0):
        if not isinstance(slack, int):
            raise TypeError("slack must be an int")
        self.slack = slack
    def score(self, samples):
        out = []
        for s in samples:
            if not isinstance(s.ground_truth, int):
                out.append(RewardResult(0.0, "error", {"error": "ground_truth must be an int"}))
                continue
            ok = abs(len(s.response) - s.ground_truth) <= self.slack
            out.append(RewardResult(float(ok), "correct" if ok else "incorrect", {"length": len(s.response)}))
        return out
    def close(self):
        pass

@hookimpl
def register_rewards(register):
    register(LengthReward)
"""


@pytest.fixture
def length_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "tp_length.py").write_text(textwrap.dedent(LENGTH_REWARD))
    info = site / "tp_length-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tp-length\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[cascade_plugins]\nlength = tp_length\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(plugins.ENV_VAR, "length")
    plugins.reset_registry_cache()
    yield
    plugins.reset_registry_cache()


def run(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_score_streams_each_line_with_reward_verdict_details(length_plugin: None, tmp_path: Path) -> None:
    rows = [
        {"response": "abc", "ground_truth": 3, "id": 1},
        {"response": "abcd", "ground_truth": 3, "id": 2},
        {"response": "x", "ground_truth": "one", "id": 3},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out" / "scored.jsonl"
    code, _, err = run(["score", "--reward", "length", "--input", str(src), "--output", str(out)])
    # the reward could not score line 3: named on stderr, exit status 1, the row still written
    assert code == 1
    assert f"{src}:3: the reward could not score it: ground_truth must be an int" in err
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in scored] == [1, 2, 3]  # input keys kept, order kept
    assert [r["verdict"] for r in scored] == ["correct", "incorrect", "error"]
    assert [r["reward"] for r in scored] == [1.0, 0.0, 0.0]
    assert scored[0]["details"] == {"length": 3}
    assert "samples/s" in err and "correct: 1" in err
    assert "1 of 3 lines could not be scored" in err


def test_every_line_scored_exits_0(length_plugin: None, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"response": "abc", "ground_truth": 3}\n{"response": "ab", "ground_truth": 3}\n')
    code, stdout, err = run(["score", "--reward", "length", "--input", str(src)])
    assert code == 0, err
    assert [json.loads(line)["verdict"] for line in stdout.splitlines()] == ["correct", "incorrect"]
    assert "could not be scored" not in err


def test_malformed_lines_are_reported_with_line_numbers_not_dropped(length_plugin: None, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b'{"response": "ab", "ground_truth": 2}\nnot json\n\n{"no_response": 1}\n[1, 2]\n\xff\xfe\n')
    code, stdout, err = run(["score", "--reward", "length", "--input", str(src)])
    assert code == 1
    # each bad line on stderr as FILE:LINE: why, in order, once
    reported = [line for line in err.splitlines() if line.startswith(f"{src}:")]
    assert reported == [
        f"{src}:2: invalid JSON: Expecting value: line 1 column 1 (char 0)",
        f"{src}:4: sample has no 'response' key",
        f"{src}:5: a sample must be a JSON object, got list",
        f"{src}:6: not UTF-8 text",
    ]
    scored = [json.loads(line) for line in stdout.splitlines()]
    assert [r["verdict"] for r in scored] == ["correct", "error", "error", "error", "error"]
    assert "line 2" in scored[1]["details"]["error"] and scored[1]["raw"] == "not json"
    assert "line 4" in scored[2]["details"]["error"] and scored[2]["no_response"] == 1
    assert "line 5" in scored[3]["details"]["error"]
    assert "4 of 5 lines could not be scored" in err

    # --keep-going: the same rows and the same report, exit status 0
    code, kept, err = run(["score", "--reward", "length", "--input", str(src), "--keep-going"])
    assert code == 0 and kept == stdout
    assert f"{src}:6: not UTF-8 text" in err and "kept as error rows" in err


def test_missing_input_and_unwritable_output_are_clear_errors(length_plugin: None, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["score", "--reward", "length", "--input", str(tmp_path / "nope.jsonl")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"cannot read --input {tmp_path / 'nope.jsonl'}: No such file or directory" in result.output
    assert "Traceback" not in result.output
    src = tmp_path / "in.jsonl"
    src.write_text('{"response": "a", "ground_truth": 1}\n')
    # the output's folder would have to be a file that exists
    result = CliRunner().invoke(cli, ["score", "--reward", "length", "--input", str(src), "--output",
                                      str(src / "scored.jsonl")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output and str(src) in result.output


def test_stdin_is_named_in_reports(length_plugin: None) -> None:
    result = CliRunner().invoke(cli, ["score", "--reward", "length", "--input", "-"],
                                input='{"response": "a", "ground_truth": 1}\n{"response": 1}\n')
    assert result.exit_code == 1
    assert "<stdin>:2: sample key 'response' must be a string, got int" in result.stderr


def test_options_workers_and_batches(length_plugin: None, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps({"response": "a" * n, "ground_truth": 5}) + "\n" for n in range(100)))
    out = tmp_path / "o.jsonl"
    code, _, _ = run(["score", "--reward", "length", "--input", str(src), "--output", str(out),
                      "--workers", "3", "--batch-size", "7", "--set", "slack=1"])
    assert code == 0
    scored = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(r["response"]) for r in scored] == list(range(100))
    assert [i for i, r in enumerate(scored) if r["reward"] == 1.0] == [4, 5, 6]


def test_unknown_reward_and_bad_option_fail_clearly(length_plugin: None, tmp_path: Path) -> None:
    src = tmp_path / "in.jsonl"
    src.write_text('{"response": "a", "ground_truth": 1}\n')
    result = CliRunner().invoke(cli, ["score", "--reward", "lenght", "--input", str(src)])
    assert result.exit_code != 0 and "did you mean 'length'" in result.output
    result = CliRunner().invoke(cli, ["score", "--reward", "length", "--input", str(src), "--set", "slack=wide"])
    assert result.exit_code != 0 and "slack must be an int" in result.output


def test_output_is_atomic_when_scoring_fails(length_plugin: None, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "scored.jsonl"
    out.write_text("previous results\n")
    src = tmp_path / "in.jsonl"
    src.write_text('{"response": "a", "ground_truth": 1}\n')
    from cascade_plugins.cli import score as score_module

    def explode(*_: object) -> None:
        raise RuntimeError("crash mid-way")

    monkeypatch.setattr(score_module, "score_rows", explode)
    result = CliRunner().invoke(cli, ["score", "--reward", "length", "--input", str(src), "--output", str(out)])
    assert isinstance(result.exception, RuntimeError)
    assert out.read_text() == "previous results\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".scored")] == []


def test_plugins_command_lists_registrations(length_plugin: None) -> None:
    code, stdout, _ = run(["plugins"])
    assert code == 0
    assert "length" in stdout and "tp-length" in stdout and "reward" in stdout
    assert os.environ[plugins.ENV_VAR] == "length"
