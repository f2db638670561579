"""Getting our JSONL rows into NeMo RL with their ground truth / tests / problem intact.

- :func:`extra_env_info` picks what a reward reads from a row; NeMo RL carries it per sample as
  ``extra_env_info`` and hands it to the environment's ``step`` as ``metadata``.
- :func:`cascade_data_processor` is a NeMo RL data processor (``processor: cascade_data_processor``)
  that templates the prompt with the tokenizer's chat template and returns a ``DatumSpec``.
- :class:`~cascade_plugins.backends.nemo_rl.dataset.CascadeJsonlDataset` loads our JSONL files
  (``dataset_name: cascade_plugins.backends.nemo_rl.dataset.CascadeJsonlDataset``).

Rows are JSON objects: ``prompt`` (or chat ``messages``), and whichever of ``ground_truth``,
``tests``, ``problem`` the reward needs; ``domain`` and any other keys travel as metadata.
This module imports neither NeMo RL nor Ray.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from cascade_plugins.interfaces import TARGET_KEYS, Sample
from cascade_plugins.jsonl import JsonlError

#: the column of the Hugging Face dataset that holds each row as JSON text (rows have nested,
#: heterogeneous values such as test lists, which Arrow columns cannot hold uniformly)
ROW_COLUMN = "cascade_row"

#: keys NeMo RL's dataset adds to a row (the routing task, our JSON column): not the row's own
_NEMO_RL_KEYS = ("task_name", ROW_COLUMN)


#: a data row that cannot be used; the message names the file, line and key
DataRowError = JsonlError


def prompt_messages(row: Mapping[str, Any], where: str = "row") -> list[dict[str, Any]]:
    """The chat messages to template: ``messages`` without a trailing assistant turn (that turn
    is the reference answer), or one user turn made of ``prompt``."""
    messages = row.get("messages")
    if messages is not None:
        if not isinstance(messages, list) or not all(isinstance(m, Mapping) and "role" in m for m in messages):
            raise DataRowError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        turns = [dict(m) for m in messages]
        if turns and turns[-1]["role"] == "assistant":
            turns = turns[:-1]
        if not turns:
            raise DataRowError(f"{where}: 'messages' has no prompt turn")
        return turns
    prompt = row.get("prompt")
    if not isinstance(prompt, str):
        raise DataRowError(f"{where}: needs a string 'prompt' (or 'messages'), got {type(prompt).__name__}")
    return [{"role": "user", "content": prompt}]


def extra_env_info(
    row: Mapping[str, Any], where: str = "row", *, require_target: bool = True, domain: str | None = None
) -> dict[str, Any]:
    """What our environments read, as :meth:`Sample.from_row` reads the row (the one rule for
    every backend): ``ground_truth``/``tests``/``problem`` (those set), the ``prompt`` text,
    ``domain`` (``domain`` given: the domain the row is routed to, else the row's), and every
    other key under ``metadata``. :func:`~.env_core.sample_from_message_log` turns it back into
    the :class:`Sample` with the model's response.

    ``require_target=False`` accepts prompt-only rows (distillation-only domains).
    """
    prompt_messages(row, where)  # a usable prompt, or the error says which key is wrong
    try:
        sample = Sample.from_row({k: v for k, v in row.items() if k not in _NEMO_RL_KEYS}, response="", domain=domain)
    except (TypeError, ValueError) as exc:
        raise DataRowError(f"{where}: {exc}") from None
    info: dict[str, Any] = {key: getattr(sample, key) for key in TARGET_KEYS if getattr(sample, key) is not None}
    if not info and require_target:
        raise DataRowError(f"{where}: has none of {list(TARGET_KEYS)}: nothing to score against")
    info["prompt"] = sample.prompt
    if sample.domain is not None:
        info["domain"] = sample.domain
    if sample.metadata:
        info["metadata"] = sample.metadata
    return info


def decode_row(datum: Mapping[str, Any]) -> dict[str, Any]:
    """A dataset item back to the original row (our dataset stores rows as JSON text)."""
    if ROW_COLUMN in datum:
        row = json.loads(datum[ROW_COLUMN])
        if "task_name" in datum:
            row.setdefault("task_name", datum["task_name"])
        return row
    return dict(datum)


def cascade_data_processor(
    datum_dict: dict[str, Any],
    task_data_spec: Any,
    tokenizer: Any,
    max_seq_length: int | None,
    idx: int,
) -> dict[str, Any]:
    """NeMo RL ``TaskDataProcessFnCallable``: row -> ``DatumSpec`` with ``extra_env_info``.

    The prompt is formatted with the task's prompt file (``prompt.format(text)``), the system
    prompt file is prepended, and the tokenizer's chat template is applied with a generation
    prompt. Prompts of ``max_seq_length`` tokens or more are cut and masked out
    (``loss_multiplier = 0``), as NeMo RL's own processors do.
    """
    row = decode_row(datum_dict)
    task_name = row.get("task_name") or getattr(task_data_spec, "task_name", None)
    where = f"sample {idx} of task {task_name!r}"
    # the task a row is routed by is the domain it is scored for (as the local host's stage domain)
    info = extra_env_info(row, where, require_target=False, domain=task_name)
    turns = prompt_messages(row, where)
    template = getattr(task_data_spec, "prompt", None)
    system = getattr(task_data_spec, "system_prompt", None)
    if template:
        last_user = max(i for i, m in enumerate(turns) if m["role"] == "user") if any(
            m["role"] == "user" for m in turns
        ) else None
        if last_user is not None:
            turns[last_user] = {**turns[last_user], "content": template.format(turns[last_user]["content"])}
    if system and not any(m["role"] == "system" for m in turns):
        turns = [{"role": "system", "content": system}, *turns]
    text: str = tokenizer.apply_chat_template(
        turns, tokenize=False, add_generation_prompt=True, add_special_tokens=False
    )
    token_ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    length = len(token_ids)
    loss_multiplier = 1.0
    if max_seq_length is not None and length >= max_seq_length:
        token_ids = token_ids[: min(4, max_seq_length)]
        loss_multiplier = 0.0
    return {
        "message_log": [{"role": "user", "content": text, "token_ids": token_ids}],
        "length": length,
        "extra_env_info": info,
        "loss_multiplier": loss_multiplier,
        "idx": idx,
        "task_name": task_name,
    }
