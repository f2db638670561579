from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from cascade_plugins.backends.nemo_rl.data import (
    ROW_COLUMN,
    DataRowError,
    cascade_data_processor,
    extra_env_info,
    prompt_messages,
)
from cascade_plugins.jsonl import read_jsonl


def test_extra_env_info_carries_targets_domain_prompt_and_metadata() -> None:
    row = {"prompt": "2+2?", "ground_truth": "4", "domain": "math", "source": "gsm", "metadata": {"id": 1}}
    assert extra_env_info(row) == {
        "ground_truth": "4", "prompt": "2+2?", "domain": "math", "metadata": {"id": 1, "source": "gsm"},
    }
    tests = {"prompt": "write f", "tests": [{"input": "1", "output": "2"}]}
    assert extra_env_info(tests)["tests"] == [{"input": "1", "output": "2"}]
    problem = {"prompt": "solve", "problem": {"subtasks": [10, 90]}}
    assert extra_env_info(problem)["problem"] == {"subtasks": [10, 90]}


def test_chat_rows_use_the_assistant_turn_as_ground_truth() -> None:
    row = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "7"}]}
    assert extra_env_info(row) == {"ground_truth": "7", "prompt": "q"}
    assert prompt_messages(row) == [{"role": "user", "content": "q"}]


def test_rows_without_a_target_are_refused_unless_distillation_only() -> None:
    with pytest.raises(DataRowError, match=r"f\.jsonl:3: has none of"):
        extra_env_info({"prompt": "hi"}, "f.jsonl:3")
    assert extra_env_info({"prompt": "hi"}, require_target=False) == {"prompt": "hi"}
    with pytest.raises(DataRowError, match="needs a string 'prompt'"):
        extra_env_info({"ground_truth": "1"})


def test_read_jsonl_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"prompt": "a"}\n\n[1]\n')
    with pytest.raises(DataRowError, match=r"d.jsonl:3: a row must be a JSON object"):
        list(read_jsonl(path))
    path.write_text('{"prompt": "a"}\n{oops\n')
    with pytest.raises(DataRowError, match=r"d.jsonl:2: invalid JSON"):
        list(read_jsonl(path))


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)] + ["\n"]
    specials = ["<pad>", "<|user|>", "<|assistant|>", "<|system|>"]
    vocab = {t: i for i, t in enumerate(specials + chars)}
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.add_special_tokens(specials)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>",
        chat_template="{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}",
    )


def test_processor_templates_prompt_and_fills_extra_env_info(tokenizer) -> None:
    row = {"prompt": "2+2?", "ground_truth": "4", "id": 9}
    datum = {ROW_COLUMN: json.dumps(row), "task_name": "math"}
    spec = SimpleNamespace(prompt="Q: {}", system_prompt="Be brief.", task_name="math")
    out = cascade_data_processor(datum, spec, tokenizer, max_seq_length=512, idx=5)
    text = out["message_log"][0]["content"]
    assert text == "<|system|>Be brief.\n<|user|>Q: 2+2?\n<|assistant|>"
    assert out["length"] == len(out["message_log"][0]["token_ids"]) == len(tokenizer(text)["input_ids"])
    # the task name stands in for a missing domain (per-domain validation scores)
    assert out["extra_env_info"] == {"ground_truth": "4", "prompt": "2+2?", "metadata": {"id": 9}, "domain": "math"}
    assert (out["task_name"], out["idx"], out["loss_multiplier"]) == ("math", 5, 1.0)


def test_processor_masks_prompts_that_are_too_long(tokenizer) -> None:
    datum = {ROW_COLUMN: json.dumps({"prompt": "x" * 50, "ground_truth": "1"}), "task_name": "t"}
    spec = SimpleNamespace(prompt=None, system_prompt=None, task_name="t")
    out = cascade_data_processor(datum, spec, tokenizer, max_seq_length=10, idx=0)
    assert out["loss_multiplier"] == 0.0 and len(out["message_log"][0]["token_ids"]) == 4
    unlimited = cascade_data_processor(datum, spec, tokenizer, max_seq_length=None, idx=0)
    assert unlimited["loss_multiplier"] == 1.0
