"""The policy: a Hugging Face causal LM plus its tokenizer, batched as prompt | completion.

Every batch uses one layout, for training, rollouts and teacher scoring alike::

    [pad ... pad, <s>, prompt tokens | completion tokens, </s>, pad ... pad]
     left-padded prompt block (width P)   right-padded completion block (width L)

Position ids follow the attention mask, so a left-padded row sees the same positions as an unpadded
one. Log-probs of the completion block come from the logits of the last ``L + 1`` positions only.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedModel

from cascade_plugins.atomic import make_temp_dir, share_like_folder
from cascade_plugins.backends.local.config import ModelConfig
from cascade_plugins.backends.local.tokenizer import build_char_tokenizer

__all__ = [
    "Batch",
    "Policy",
    "build_policy",
    "completion_logprobs",
    "grouped_logprobs",
    "load_policy",
    "make_batch",
    "save_policy",
]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class Policy:
    model: PreTrainedModel
    tokenizer: object  # a transformers tokenizer

    @property
    def bos_id(self) -> int | None:
        return self.tokenizer.bos_token_id  # type: ignore[attr-defined]

    @property
    def eos_id(self) -> int:
        eos = self.tokenizer.eos_token_id  # type: ignore[attr-defined]
        if eos is None:
            raise ValueError("the tokenizer has no end token (eos_token); the local host needs one")
        return int(eos)

    @property
    def pad_id(self) -> int:
        pad = self.tokenizer.pad_token_id  # type: ignore[attr-defined]
        return int(pad) if pad is not None else self.eos_id

    def encode_prompt(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False).input_ids  # type: ignore[operator]
        return ([self.bos_id] if self.bos_id is not None else []) + list(ids)

    def encode_completion(self, text: str) -> list[int]:
        return [*self.tokenizer(text, add_special_tokens=False).input_ids, self.eos_id]  # type: ignore[operator]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(ids), skip_special_tokens=True)  # type: ignore[attr-defined]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def build_policy(config: ModelConfig, seed: int) -> Policy:
    """A freshly initialised tiny ``LlamaForCausalLM`` (weights from ``seed``) and a local tokenizer."""
    tokenizer = build_char_tokenizer(config.tokenizer.alphabet, config.tokenizer.words)
    model_config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        intermediate_size=config.intermediate_size,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=config.tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        attention_dropout=0.0,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(model_config).to(_DTYPES[config.dtype])
    return Policy(model, tokenizer)


def load_policy(path: str | os.PathLike[str], device: str | torch.device = "cpu", dtype: str = "float32") -> Policy:
    """Load a Hugging Face checkpoint directory (model and tokenizer) from local disk only."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a Hugging Face checkpoint directory (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=_DTYPES[dtype])
    return Policy(model.to(device), tokenizer)


def save_policy(policy: Policy, path: str | os.PathLike[str], extra_files: dict[str, bytes] | None = None) -> None:
    """Write the model (safetensors) and tokenizer as an HF directory, atomically: into a temporary
    sibling first, then renamed, so a crash never leaves a half-written checkpoint at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(path.parent, f".{path.name}.")
    try:
        policy.model.save_pretrained(tmp, safe_serialization=True)
        policy.tokenizer.save_pretrained(tmp)  # type: ignore[attr-defined]
        for name, content in (extra_files or {}).items():
            (tmp / name).write_bytes(content)
        share_like_folder(tmp)  # safetensors writes the weights owner-only
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class Batch:
    """Token ids ``[B, P + L]`` in the layout above, plus masks and the completion width ``L``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    #: ``[B, L]``: 1 on completion tokens (the end token included), 0 on padding
    completion_mask: torch.Tensor
    prompt_width: int

    @property
    def completion_ids(self) -> torch.Tensor:
        return self.input_ids[:, self.prompt_width :]

    @property
    def position_ids(self) -> torch.Tensor:
        return (self.attention_mask.cumsum(-1) - 1).clamp(min=0)

    def select(self, rows: torch.Tensor | Sequence[int]) -> Batch:
        index = torch.as_tensor(rows, dtype=torch.long)
        return Batch(self.input_ids[index], self.attention_mask[index], self.completion_mask[index], self.prompt_width)

    def trimmed(self) -> Batch:
        """The same rows without the columns that are padding in every row (shorter forward passes)."""
        prompt_attention = self.attention_mask[:, : self.prompt_width].sum(0)
        lead = int((prompt_attention == 0).long().cumprod(0).sum())
        width_c = max(1, int(self.completion_mask.sum(1).max()))
        end = self.prompt_width + width_c
        return Batch(
            self.input_ids[:, lead:end],
            self.attention_mask[:, lead:end],
            self.completion_mask[:, :width_c],
            self.prompt_width - lead,
        )


def make_batch(prompts: Sequence[Sequence[int]], completions: Sequence[Sequence[int]], pad_id: int) -> Batch:
    """Lay out token lists as left-padded prompts followed by right-padded completions."""
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    width_p = max(len(p) for p in prompts)
    width_c = max(1, max(len(c) for c in completions))
    rows, masks, cmasks = [], [], []
    for p, c in zip(prompts, completions, strict=True):
        left, right = width_p - len(p), width_c - len(c)
        rows.append([pad_id] * left + list(p) + list(c) + [pad_id] * right)
        masks.append([0] * left + [1] * (len(p) + len(c)) + [0] * right)
        cmasks.append([1] * len(c) + [0] * right)
    return Batch(torch.tensor(rows), torch.tensor(masks), torch.tensor(cmasks, dtype=torch.float32), width_p)


def completion_logprobs(model: PreTrainedModel, batch: Batch, temperature: float = 1.0) -> torch.Tensor:
    """``[B, L]`` log-probs of the completion tokens under ``model`` (0 on padding)."""
    width_c = batch.completion_ids.shape[1]
    device = next(model.parameters()).device
    out = model(
        input_ids=batch.input_ids.to(device),
        attention_mask=batch.attention_mask.to(device),
        position_ids=batch.position_ids.to(device),
        use_cache=False,
        logits_to_keep=width_c + 1,
    )
    logits = out.logits[:, :-1].float()
    if temperature != 1.0:
        logits = logits / temperature
    logprobs = torch.log_softmax(logits, dim=-1)
    targets = batch.completion_ids.to(device).unsqueeze(-1)
    return logprobs.gather(-1, targets).squeeze(-1) * batch.completion_mask.to(device)


def grouped_logprobs(
    model: PreTrainedModel, batch: Batch, groups: Sequence[str], rows: Sequence[int] | None = None
) -> torch.Tensor:
    """:func:`completion_logprobs` of ``batch`` (or of its ``rows``), one trimmed forward pass per
    group (e.g. per domain), so short prompts are not padded to the longest prompt of another
    group. Returns ``[len(rows), L]`` in row order."""
    rows = list(range(len(groups))) if rows is None else list(rows)
    width = batch.completion_mask.shape[1]
    device = next(model.parameters()).device
    parts: list[torch.Tensor] = []
    order: list[int] = []
    for key in sorted({groups[r] for r in rows}):
        members = [i for i, r in enumerate(rows) if groups[r] == key]
        sub = batch.select([rows[i] for i in members]).trimmed()
        scored = completion_logprobs(model, sub)
        parts.append(torch.nn.functional.pad(scored, (0, width - scored.shape[1])))
        order.extend(members)
    stacked = torch.cat(parts) if parts else torch.zeros(0, width, device=device)
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order, dtype=torch.long)] = torch.arange(len(order))
    return stacked[inverse.to(stacked.device)]
