"""Preference pairs (prompt, chosen reply, rejected reply) for DPO: reading, rendering, batching.

Records come from JSONL in two forms, told apart per line:
- `messages` form: `{"prompt": [messages ending with a user turn], "chosen": [assistant message],
  "rejected": [assistant message]}` (a reply may also be a plain string);
- Anthropic HH transcripts: `{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": ...}`, split at the
  last "\\n\\nAssistant:" into the prompt's turns and the reply. Both transcripts must share the prompt; turns
  are stripped, must alternate starting and ending with the user, and be non-empty, as must the replies (the
  rules by which `../shared/data` derived its `*_messages` files from the transcripts).

Rendering for decoder layouts (`encode_pairs`): the prompt is
`apply_chat_template(fmt, prompt, add_generation_prompt=True)` and the whole
`apply_chat_template(fmt, prompt + [reply])` less trailing whitespace, so the response is the reply and its
end-of-turn text. The whole is tokenized once with the run's vocabulary and the response is what
follows the prompt's tokens when those are a prefix of the whole's (the tokenization SFT sees); when they are
not (a token crosses the boundary), the prompt and the response text are tokenized separately and joined.

Features (numpy, fixed-size rows, one pair per row, no packing), for each side `s` in chosen, rejected:
- decoder layouts (`PromptLayout`, as `it_jax.data.packed_input` lays out a conversation): the sequence is the
  layout's start token (unless the template wrote it) + prompt + response; `s_decoder_input_tokens` is
  `sequence[:-1]`, `s_decoder_target_tokens` `sequence[1:]`, `s_decoder_loss_weights` 1 exactly on the
  predicted response tokens, and for prefix LMs `s_decoder_causal_attention` 1 on the start + prompt;
- encoder-decoder (as seqio's chat features for T5): `s_encoder_input_tokens` the rendered prompt + EOS,
  `s_decoder_target_tokens` the reply's content + EOS (weights 1 on it), inputs shifted right after a 0.
Truncation keeps the end of the prompt and the start of the response. Decoder layouts: when a pair's prompt
and longer response do not fit `max_length`, the prompt keeps its last `max_prompt_length` tokens and each
response what fits after it; a pair whose response is left empty is dropped and counted
(`PreferenceData.dropped`). Encoder-decoder: the encoder keeps the last `max_prompt_length` tokens, each
reply its first `max_length - 1` and the EOS.

`preference_batches` makes batch b a pure function of (seed, b): epoch e visits the pairs in the order
`default_rng([seed, e]).permutation(n)`, so resuming at batch b needs no replay. `add_reference_logps` stores
the frozen reference's log-probs with the data (computed once, before training).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import seqio

from it_jax import errors
from it_jax.data import chat, chat_sources
from it_jax.data.layout import PromptLayout

Message = dict[str, str]
HUMAN, ASSISTANT = "\n\nHuman:", "\n\nAssistant:"
SIDES = ("chosen", "rejected")


class PreferenceDataError(errors.DataError):
    """A preference record cannot be read: bad fields, differing prompts, empty or misordered turns."""


@dataclasses.dataclass(frozen=True)
class PreferencePair:
    prompt: tuple[Message, ...]
    chosen: str
    rejected: str
    where: str = ""  # file:line


def split_transcript(text: str, where: str = "") -> tuple[str, list[Message], str]:
    """An HH transcript -> (the text before its last "\\n\\nAssistant:", the prompt's turns, the reply)."""
    cut = text.rfind(ASSISTANT)
    if cut < 0:
        raise PreferenceDataError(f"{where}: transcript has no {ASSISTANT!r} turn")
    head, reply = text[:cut], text[cut + len(ASSISTANT):].strip()
    parts = re.split(r"(\n\nHuman:|\n\nAssistant:)", head)
    if parts[0].strip():
        raise PreferenceDataError(f"{where}: text before the first turn: {parts[0][:40]!r}")
    turns = [{"role": "user" if marker == HUMAN else "assistant", "content": content.strip()}
             for marker, content in zip(parts[1::2], parts[2::2])]
    return head, turns, reply


def _check_pair(prompt: Sequence[Message], replies: Sequence[str], where: str) -> None:
    roles = [m["role"] for m in prompt]
    if not roles or roles != ["user" if i % 2 == 0 else "assistant" for i in range(len(roles))] or roles[-1] != "user":
        raise PreferenceDataError(f"{where}: prompt turns must alternate user/assistant, starting and ending with "
                                  f"the user; got {roles}")
    if any(not m["content"].strip() for m in prompt):
        raise PreferenceDataError(f"{where}: the prompt has an empty turn")
    if any(not r.strip() for r in replies):
        raise PreferenceDataError(f"{where}: the chosen or the rejected reply is empty")


def _reply(value: Any, field: str, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], Mapping) and \
            value[0].get("role") == "assistant" and isinstance(value[0].get("content"), str):
        return value[0]["content"]
    raise PreferenceDataError(f"{where}: field '{field}' must be a string or one assistant message")


def pair_from_record(record: Mapping[str, Any], where: str = "") -> PreferencePair:
    """A `PreferencePair` from a messages-form or a transcript-form record (see the module docstring)."""
    if not isinstance(record, Mapping) or "chosen" not in record or "rejected" not in record:
        raise PreferenceDataError(f"{where}: a preference record needs fields 'chosen' and 'rejected'")
    if "prompt" in record:
        try:
            prompt = chat_sources.from_messages({"messages": record["prompt"]})
        except chat_sources.RecordError as e:
            raise PreferenceDataError(f"{where}: field 'prompt': {e}") from None
        replies = [_reply(record[side], side, where) for side in SIDES]
    else:
        chosen, rejected = (record[side] for side in SIDES)
        if not isinstance(chosen, str) or not isinstance(rejected, str):
            raise PreferenceDataError(f"{where}: transcripts 'chosen' and 'rejected' must be strings")
        head, prompt, chosen_reply = split_transcript(chosen, where)
        other_head, _, rejected_reply = split_transcript(rejected, where)
        if head != other_head:
            at = next((i for i, (a, b) in enumerate(zip(head, other_head)) if a != b), min(len(head), len(other_head)))
            lo = max(0, at - 10)
            raise PreferenceDataError(f"{where}: the chosen and rejected transcripts have different prompts (at "
                                      f"character {at}: {head[lo:at + 30]!r} vs {other_head[lo:at + 30]!r})")
        replies = [chosen_reply, rejected_reply]
    _check_pair(prompt, replies, where)
    return PreferencePair(tuple(prompt), replies[0], replies[1], where)


def read_pairs(path: str | os.PathLike, *, skip_invalid: bool = False) -> tuple[list[PreferencePair], list[str]]:
    """The pairs of a JSONL file and the skipped lines ("file:line: reason"; empty unless `skip_invalid`)."""
    pairs, skipped = [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as e:
                    raise PreferenceDataError(f"{where}: not JSON: {e}") from None
                pairs.append(pair_from_record(record, where))
            except PreferenceDataError as e:
                if not skip_invalid:
                    raise
                skipped.append(str(e))
    return pairs, skipped


@dataclasses.dataclass(frozen=True)
class PreferenceData:
    """Features [pairs, ...] of the kept pairs, and the pairs dropped by truncation ("file:line")."""

    features: dict[str, np.ndarray]
    dropped: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(next(iter(self.features.values())))


def tokenize_pair_side(vocabulary: seqio.Vocabulary, fmt: str, prompt: Sequence[Message],
                       reply: str) -> tuple[list[int], list[int]]:
    """(prompt token ids, response token ids) of one reply rendered with chat format `fmt` (see the module)."""
    prompt_text = chat.apply_chat_template(fmt, prompt, add_generation_prompt=True)
    whole = chat.apply_chat_template(fmt, list(prompt) + [{"role": "assistant", "content": reply}]).rstrip()
    if not whole.startswith(prompt_text):
        raise chat.ChatTemplateError(f"chat format {fmt}: the prompt with a generation prompt does not begin the "
                                     f"rendered conversation; preference data needs a prefix-stable template")
    whole_ids, prompt_ids = list(vocabulary.encode(whole)), list(vocabulary.encode(prompt_text))
    if whole_ids[:len(prompt_ids)] == prompt_ids:
        return prompt_ids, whole_ids[len(prompt_ids):]
    return prompt_ids, list(vocabulary.encode(whole[len(prompt_text):]))


def _pad(values: Sequence[int], length: int, dtype=np.int32) -> np.ndarray:
    row = np.zeros(length, dtype)
    row[:len(values)] = values
    return row


def _decoder_row(head: list[int], response: list[int], length: int, prefix_lm: bool) -> dict[str, np.ndarray]:
    """A decoder layout's row: the model reads `sequence[:-1]` and predicts `sequence[1:]`, sequence = head
    (start token and prompt) + response; the weights mark the predicted response tokens."""
    sequence = head + response
    weights = [0] * (len(head) - 1) + [1] * len(response)
    row = {"decoder_input_tokens": _pad(sequence[:-1], length), "decoder_target_tokens": _pad(sequence[1:], length),
           "decoder_loss_weights": _pad(weights, length, np.float32)}
    if prefix_lm:
        row["decoder_causal_attention"] = _pad([1] * len(head), length)
    return row


def _encode_pair(pair: PreferencePair, vocabulary: seqio.Vocabulary, fmt: str, layout: PromptLayout,
                 max_length: int, max_prompt_length: int) -> dict[str, np.ndarray] | None:
    if layout.decoder_only:
        sides = [tokenize_pair_side(vocabulary, fmt, pair.prompt, reply) for reply in (pair.chosen, pair.rejected)]
        if sides[1][0] != sides[0][0]:
            raise PreferenceDataError(f"{pair.where}: the prompt tokenizes differently with the two replies")
        prompt, responses = sides[0][0], [response for _, response in sides]
        start = layout.conversation_start(prompt)
        if len(start) + len(prompt) + max(map(len, responses)) > max_length + 1:
            prompt = prompt[-max_prompt_length:]
        head = start + prompt
        responses = [r[:max(max_length + 1 - len(head), 0)] for r in responses]
    else:  # as seqio's encoder-decoder chat features: prompt + EOS in, the reply's content + EOS out
        prompt_text = chat.apply_chat_template(fmt, pair.prompt, add_generation_prompt=True)
        head = (list(vocabulary.encode(prompt_text)) + [vocabulary.eos_id])[-max_prompt_length:]
        responses = [list(vocabulary.encode(reply))[:max_length - 1] + [vocabulary.eos_id]
                     for reply in (pair.chosen, pair.rejected)]
    if not all(responses):
        return None
    features = {}
    for side, response in zip(SIDES, responses):
        if layout.decoder_only:
            row = _decoder_row(head, response, max_length, layout.architecture == "prefix_lm")
        else:
            row = {"encoder_input_tokens": _pad(head, max_prompt_length),
                   "decoder_target_tokens": _pad(response, max_length),
                   "decoder_input_tokens": _pad([0] + response[:-1], max_length),
                   "decoder_loss_weights": _pad([1] * len(response), max_length, np.float32)}
        features.update({f"{side}_{name}": value for name, value in row.items()})
    return features


def encode_pairs(pairs: Sequence[PreferencePair], vocabulary: seqio.Vocabulary, *, chat_format: str,
                 layout: PromptLayout, max_length: int, max_prompt_length: int | None = None) -> PreferenceData:
    """Renders, tokenizes and truncates `pairs` into fixed-size features (see the module docstring).

    Args:
      chat_format: a built-in chat format name or a tokenizer directory (`chat.chat_format`).
      layout: the model's `PromptLayout` (its start token; prefix LMs also get `decoder_causal_attention`).
      max_length: the decoder row length (decoder layouts: prompt and response together).
      max_prompt_length: the prompt tokens kept when truncating; the encoder length for encoder-decoder
        (default: max_length // 2).
    """
    max_prompt_length = max_length // 2 if max_prompt_length is None else max_prompt_length
    if max_length < 2 or max_prompt_length < 1 or (layout.decoder_only and max_prompt_length > max_length):
        raise ValueError(f"need max_length >= 2 and 0 < max_prompt_length (<= max_length for decoder layouts); "
                         f"got {max_length}, {max_prompt_length}")
    rows, dropped = [], []
    for pair in pairs:
        row = _encode_pair(pair, vocabulary, chat_format, layout, max_length, max_prompt_length)
        if row is None:
            dropped.append(pair.where)
        else:
            rows.append(row)
    if not rows:
        raise PreferenceDataError(f"all {len(pairs)} pairs were dropped by truncation to max_length {max_length}, "
                                  f"max_prompt_length {max_prompt_length}; raise max_length or lower the prompt's")
    return PreferenceData({k: np.stack([r[k] for r in rows]) for k in rows[0]}, tuple(dropped))


def batch_indices(num_pairs: int, batch_size: int, seed: int, batch: int) -> np.ndarray:
    """The pair indices of batch `batch`: positions `batch * batch_size ...` of the epochs' permutations."""
    positions = batch * batch_size + np.arange(batch_size)
    epochs, within = positions // num_pairs, positions % num_pairs
    indices = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        order = np.random.default_rng([seed, int(epoch)]).permutation(num_pairs)
        indices[epochs == epoch] = order[within[epochs == epoch]]
    return indices


def preference_batches(data: PreferenceData, *, batch_size: int, seed: int = 0,
                       skip_batches: int = 0) -> Iterator[dict[str, np.ndarray]]:
    """Endless batches of `data`'s features from batch `skip_batches` on; batch b depends only on (seed, b)."""
    if batch_size < 1 or skip_batches < 0:
        raise ValueError(f"need batch_size >= 1 and skip_batches >= 0, got {batch_size}, {skip_batches}")
    batch = skip_batches
    while True:
        indices = batch_indices(len(data), batch_size, seed, batch)
        yield {k: v[indices] for k, v in data.features.items()}
        batch += 1


LogpsFn = Callable[[dict[str, np.ndarray]], tuple[Any, Any]]


def add_reference_logps(data: PreferenceData, logps_fn: LogpsFn, *, batch_size: int) -> PreferenceData:
    """`data` with `reference_chosen_logps` and `reference_rejected_logps` [pairs] (float32) from `logps_fn`.

    `logps_fn(batch)` returns the reference's summed response log-probs (chosen, rejected) for a batch of
    `batch_size` rows (the last batch is filled with copies of row 0, so one compiled shape serves all).
    """
    n = len(data)
    chosen, rejected = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for start in range(0, n, batch_size):
        rows = np.arange(start, start + batch_size)
        rows = np.where(rows < n, rows, 0)
        out_chosen, out_rejected = logps_fn({k: v[rows] for k, v in data.features.items()})
        count = min(batch_size, n - start)
        chosen[start:start + count] = np.asarray(out_chosen, np.float32)[:count]
        rejected[start:start + count] = np.asarray(out_rejected, np.float32)[:count]
    features = {**data.features, "reference_chosen_logps": chosen, "reference_rejected_logps": rejected}
    return dataclasses.replace(data, features=features)
