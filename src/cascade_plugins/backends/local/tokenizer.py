"""A character-level tokenizer built locally with ``tokenizers`` (nothing comes from a hub).

The local host trains on ``<s>`` + prompt, then completion + ``</s>``. The saved tokenizer encodes
text that way by itself, so a checkpoint loaded with ``AutoTokenizer`` / ``AutoModelForCausalLM``
generates from ``tokenizer(prompt)`` with no token added by hand: its post-processor puts ``<s>``
in front (``add_special_tokens=True``, the default), padding is on the left (for batched
``generate``), and its chat template renders messages in the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from tokenizers import AddedToken, Tokenizer, decoders
from tokenizers.models import BPE
from tokenizers.processors import TemplateProcessing
from transformers import PreTrainedTokenizerFast

__all__ = ["CHAT_TEMPLATE", "DEFAULT_ALPHABET", "SPECIAL_TOKENS", "build_char_tokenizer"]

#: printable ASCII from space to ``~`` plus tab and newline: prompts, ``\boxed{}``, Python code
DEFAULT_ALPHABET = "\t\n" + "".join(chr(c) for c in range(32, 127))
#: pad, begin, end, unknown, at ids 0..3
SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")
#: the training layout: ``<s>``, the prompt (system and user messages as they are), each assistant
#: reply followed by ``</s>``; the generation prompt adds nothing (the model answers right after)
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{% endfor %}"
)


def build_char_tokenizer(alphabet: str | None = None, words: Sequence[str] = ()) -> PreTrainedTokenizerFast:
    """One token per character of ``alphabet`` (a BPE model with no merges), so any text made of
    those characters round-trips exactly; other characters map to ``<unk>``. Each of ``words``
    (e.g. ``<think>``, ``</think>``) is one more token, matched wherever it occurs in a text and
    decoded like any other text (it is not a special token)."""
    chars = list(dict.fromkeys(alphabet if alphabet is not None else DEFAULT_ALPHABET))
    if not chars:
        raise ValueError("tokenizer alphabet is empty")
    clash = set(chars) & set(SPECIAL_TOKENS)
    if clash:
        raise ValueError(f"tokenizer alphabet contains special tokens {sorted(clash)}")
    whole = list(dict.fromkeys(words))
    bad = [w for w in whole if len(w) < 2 or w in SPECIAL_TOKENS]
    if bad:
        raise ValueError(f"tokenizer words must be strings of 2+ characters other than the special tokens, got {bad}")
    vocab = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *chars])}
    # No pre-tokenizer and no merges: BPE splits the whole text into single characters, spaces and
    # newlines included; the Fuse decoder joins them back without inserting separators.
    core = Tokenizer(BPE(vocab=vocab, merges=[], unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    if whole:
        core.add_tokens([AddedToken(w, special=False, normalized=False) for w in whole])
    pad, bos, eos, unk = SPECIAL_TOKENS
    # in tokenizer.json, so every transformers version that reads it adds <s> the same way
    core.post_processor = TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B:1", special_tokens=[(bos, vocab[bos])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=pad,
        bos_token=bos,
        eos_token=eos,
        unk_token=unk,
        clean_up_tokenization_spaces=False,
        add_bos_token=True,
        padding_side="left",
        chat_template=CHAT_TEMPLATE,
    )
