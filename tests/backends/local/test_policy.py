"""Tokenizer, batch layout and checkpoint round-trips."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import torch

from cascade_plugins.backends.local.config import ModelConfig
from cascade_plugins.backends.local.policy import (
    build_policy,
    completion_logprobs,
    grouped_logprobs,
    load_policy,
    make_batch,
    save_policy,
)
from cascade_plugins.backends.local.tokenizer import build_char_tokenizer

TEXT = "def f(s):\n    return s[::-1]  # x\n\\boxed{85} " + string.printable.replace("\r", "").replace(
    "\x0b", ""
).replace("\x0c", "")


def test_char_tokenizer_round_trips_text_one_token_per_character() -> None:
    tokenizer = build_char_tokenizer()
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    assert len(ids) == len(TEXT)
    assert tokenizer.decode(ids) == TEXT


def test_char_tokenizer_maps_unknown_characters_to_unk() -> None:
    tokenizer = build_char_tokenizer("ab")
    ids = tokenizer("abz", add_special_tokens=False).input_ids
    assert ids[2] == tokenizer.unk_token_id


def test_tokenizer_words_are_one_token_each_and_survive_a_checkpoint(tmp_path: Path) -> None:
    config = ModelConfig(
        hidden_size=16, num_attention_heads=2, intermediate_size=32, tokenizer={"words": ["<think>", "</think>"]}
    )
    policy = build_policy(config, seed=0)
    text = "<think>7+8=15</think>\\boxed{15} <thin> </think"
    ids = policy.tokenizer(text, add_special_tokens=False).input_ids
    think, end = policy.tokenizer.convert_tokens_to_ids(["<think>", "</think>"])
    assert ids[0] == think and ids.count(end) == 1  # the broken tags stay characters
    assert len(ids) == len(text) - len("<think>") - len("</think>") + 2
    assert policy.model.config.vocab_size == len(policy.tokenizer)
    save_policy(policy, tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.tokenizer(text, add_special_tokens=False).input_ids == ids
    assert loaded.decode(ids) == text  # not special tokens: decoding keeps them for the rewards


def test_tokenizer_words_are_checked() -> None:
    with pytest.raises(ValueError, match="tokenizer words"):
        build_char_tokenizer(words=["x"])
    with pytest.raises(ValueError, match="tokenizer words"):
        build_char_tokenizer(words=["</s>"])


def test_saved_tokenizer_round_trips_after_loading(tmp_path: Path) -> None:
    policy = build_policy(ModelConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32), seed=0)
    save_policy(policy, tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    ids = loaded.tokenizer(TEXT, add_special_tokens=False).input_ids
    assert loaded.decode(ids) == TEXT
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (policy.bos_id, policy.eos_id, policy.pad_id)


def test_checkpoint_round_trip_gives_identical_logits(tmp_path: Path) -> None:
    policy = build_policy(ModelConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32), seed=1)
    save_policy(policy, tmp_path / "ckpt")
    loaded = load_policy(tmp_path / "ckpt")
    batch = make_batch([policy.encode_prompt("12+3="), policy.encode_prompt("1=")], [[5, 6, 7], [8]], policy.pad_id)
    with torch.no_grad():
        assert torch.equal(completion_logprobs(policy.model, batch), completion_logprobs(loaded.model, batch))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # no temporary directory left behind
    assert (tmp_path / "ckpt" / "model.safetensors").is_file()


def test_left_padding_and_grouping_do_not_change_logprobs() -> None:
    policy = build_policy(ModelConfig(hidden_size=16, num_attention_heads=2, intermediate_size=32), seed=2)
    short, long = policy.encode_prompt("1="), policy.encode_prompt("f(abc)=cba ")
    together = make_batch([short, long], [[9, 10], [11, 12, 13]], policy.pad_id)
    alone = make_batch([short], [[9, 10]], policy.pad_id)
    with torch.no_grad():
        padded = completion_logprobs(policy.model, together)[0, :2]
        unpadded = completion_logprobs(policy.model, alone)[0]
        grouped = grouped_logprobs(policy.model, together, ["math", "code"])
        plain = completion_logprobs(policy.model, together)
    torch.testing.assert_close(padded, unpadded, atol=1e-5, rtol=0)
    torch.testing.assert_close(grouped, plain, atol=1e-5, rtol=0)
    assert grouped[0, 2] == 0  # padding of the shorter completion stays zero


def test_identical_samples_are_scored_once_and_cached() -> None:
    from cascade_plugins.backends.local.rollout import ScoreCache, score_deduplicated
    from cascade_plugins.interfaces import RewardResult, Sample

    calls: list[int] = []

    class Counting:
        name = "counting"
        reward_range = (0.0, 1.0)

        def score(self, samples: list[Sample]) -> list[RewardResult]:
            calls.append(len(samples))
            return [RewardResult(float(s.response == "a"), "x") for s in samples]

        def close(self) -> None:
            pass

    samples = [Sample(response=r, prompt="p", ground_truth="a") for r in ["a", "b", "a", "a", "b"]]
    cache = ScoreCache()
    first = score_deduplicated(Counting(), samples, cache, "k")
    second = score_deduplicated(Counting(), [*samples, Sample(response="c", prompt="p")], cache, "k")
    assert [r.reward for r in first] == [1.0, 0.0, 1.0, 1.0, 0.0]
    assert [r.reward for r in second] == [1.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    assert calls == [2, 1]  # two distinct samples, then only the new one
    assert len(ScoreCache(max_entries=1).__class__()) == 0
