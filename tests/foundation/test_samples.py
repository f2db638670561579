"""One rule turns a data row into a Sample: ``cascade score``'s JSONL lines, the local host's rows
with the model's response, and NeMo RL's ``extra_env_info`` all give the same sample."""

from __future__ import annotations

from typing import Any

import pytest

from cascade_plugins.backends.nemo_rl.data import extra_env_info
from cascade_plugins.backends.nemo_rl.env_core import sample_from_message_log
from cascade_plugins.interfaces import Sample

ROWS: list[dict[str, Any]] = [
    # a plain row: extra keys and the SFT answer travel as metadata
    {"prompt": "2+2?", "ground_truth": "4", "answer": "4", "source": "gsm", "metadata": {"id": 1}},
    # a chat row: the last user turn is the prompt, the assistant turn the ground truth
    {"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "3+3?"},
                  {"role": "assistant", "content": "6"}], "id": 2},
    # a code row with its own (stale) domain: the domain it is routed to wins
    {"prompt": "write f", "tests": [{"input": "1", "output": "2"}], "domain": "algorithms"},
    # a competition row; a null target is no target
    {"prompt": "solve", "problem": "/pkgs/a", "ground_truth": None},
]


def _through_cascade_score(row: dict[str, Any], response: str, domain: str) -> Sample:
    return Sample.from_dict({**row, "response": response, "domain": domain})


def _through_the_local_host(row: dict[str, Any], response: str, domain: str) -> Sample:
    pytest.importorskip("torch", reason="the local host's rollout module imports torch")
    from cascade_plugins.backends.local.rollout import row_to_sample

    return row_to_sample(row, response, domain)


def _through_nemo_rl(row: dict[str, Any], response: str, domain: str) -> Sample:
    info = extra_env_info(row, require_target=False, domain=domain)
    return sample_from_message_log([{"role": "user", "content": "<templated>"},
                                    {"role": "assistant", "content": response}], info)


@pytest.mark.parametrize("row", ROWS, ids=["plain", "chat", "code", "competition"])
def test_every_path_gives_the_same_sample(row: dict[str, Any]) -> None:
    samples = [path(row, "the answer", "math") for path in
               (_through_cascade_score, _through_the_local_host, _through_nemo_rl)]
    assert samples[0] == samples[1] == samples[2]
    assert samples[0].response == "the answer" and samples[0].domain == "math"


def test_what_the_rule_keeps() -> None:
    plain, chat, code, competition = (Sample.from_row(row, response="r", domain="d") for row in ROWS)
    assert (plain.prompt, plain.ground_truth) == ("2+2?", "4")
    assert plain.metadata == {"id": 1, "answer": "4", "source": "gsm"}
    assert (chat.prompt, chat.ground_truth, chat.metadata) == ("3+3?", "6", {"id": 2})
    assert (code.tests, code.metadata) == ([{"input": "1", "output": "2"}], {})
    assert (competition.problem, competition.ground_truth) == ("/pkgs/a", None)
    assert Sample.from_row(ROWS[2], response="r").domain == "algorithms"  # no routing domain: the row's


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ({"prompt": "p"}, ValueError),  # no response
        ({"response": 3}, TypeError),
        ({"response": "r", "prompt": ["p"]}, TypeError),
        ({"response": "r", "domain": 1}, TypeError),
        ({"response": "r", "metadata": "id=1"}, TypeError),
        (["not", "a", "row"], TypeError),
    ],
)
def test_a_malformed_row_names_its_key(row: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        Sample.from_dict(row)
