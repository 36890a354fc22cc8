"""Preference pairs (prompt, chosen reply, rejected reply) for DPO: reading, rendering, batching.

Records come from JSONL in two forms, told apart per line:
- `messages` form: `{"prompt": [messages ending with a user turn], "chosen": [assistant message],
  "rejected": [assistant message]}` (a reply may also be a plain string);
- Anthropic HH transcripts: `{"chosen": "\\n\\nHuman: ...\\n\\nAssistant: ...", "rejected": ...}`, split at the
  last "\\n\\nAssistant:" into the prompt's turns and the reply. Both transcripts must share the prompt; turns
  are stripped, must alternate starting and ending with the user, and be non-empty, as must the replies (the
  rules by which `../shared/data` derived its `*_messages` files from the transcripts).

Rendering (`encode_pairs`): the prompt is `apply_chat_template(fmt, prompt, add_generation_prompt=True)` and
the whole `apply_chat_template(fmt, prompt + [reply])` less trailing whitespace, so the response is the reply
and its end-of-turn text. The whole is tokenized once with the run's vocabulary and the response is what
follows the prompt's tokens when those are a prefix of the whole's (the tokenization SFT sees); when they are
not (a token crosses the boundary), the prompt and the response text are tokenized separately and joined.

Features (numpy, fixed-size rows, one pair per row, no packing), for each side `s` in chosen, rejected:
- decoder-only: `s_decoder_target_tokens` (prompt then response), `s_decoder_input_tokens` (the targets
  shifted right after a 0), `s_decoder_loss_weights` (1 exactly on the response tokens);
- encoder-decoder: `s_encoder_input_tokens` (the prompt), `s_decoder_*` (the response; weights 1 on it).
Truncation keeps the end of the prompt and the start of the response: when a pair's prompt and longer
response do not fit `max_length`, the prompt keeps its last `max_prompt_length` tokens and each response its
first `max_length - prompt` tokens (encoder-decoder: the prompt is cut to `max_prompt_length`, the responses
to `max_length`). A pair whose response is left empty is dropped and counted (`PreferenceData.dropped`).

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


def _row(tokens: Sequence[int], weights: Sequence[int], length: int, prefix: str) -> dict[str, np.ndarray]:
    targets = np.zeros(length, np.int32)
    targets[:len(tokens)] = tokens
    loss_weights = np.zeros(length, np.float32)
    loss_weights[:len(weights)] = weights
    return {f"{prefix}decoder_target_tokens": targets,
            f"{prefix}decoder_input_tokens": np.concatenate([[0], targets[:-1]]).astype(np.int32),
            f"{prefix}decoder_loss_weights": loss_weights}


def _encode_pair(pair: PreferencePair, vocabulary: seqio.Vocabulary, fmt: str, *, encoder_decoder: bool,
                 max_length: int, max_prompt_length: int) -> dict[str, np.ndarray] | None:
    sides = [tokenize_pair_side(vocabulary, fmt, pair.prompt, reply) for reply in (pair.chosen, pair.rejected)]
    prompt = sides[0][0]
    if sides[1][0] != prompt:
        raise PreferenceDataError(f"{pair.where}: the prompt tokenizes differently with the two replies")
    responses = [response for _, response in sides]
    if encoder_decoder:
        prompt, room = prompt[-max_prompt_length:], max_length
    else:
        if len(prompt) + max(map(len, responses)) > max_length:
            prompt = prompt[-max_prompt_length:]
        room = max_length - len(prompt)
    responses = [r[:max(room, 0)] for r in responses]
    if not all(responses):
        return None
    features = {}
    for side, response in zip(SIDES, responses):
        if encoder_decoder:
            features.update(_row(response, [1] * len(response), max_length, f"{side}_"))
            encoder = np.zeros(max_prompt_length, np.int32)
            encoder[:len(prompt)] = prompt
            features[f"{side}_encoder_input_tokens"] = encoder
        else:
            features.update(_row(prompt + response, [0] * len(prompt) + [1] * len(response), max_length, f"{side}_"))
    return features


def encode_pairs(pairs: Sequence[PreferencePair], vocabulary: seqio.Vocabulary, *, chat_format: str,
                 max_length: int, max_prompt_length: int | None = None,
                 encoder_decoder: bool = False) -> PreferenceData:
    """Renders, tokenizes and truncates `pairs` into fixed-size features (see the module docstring).

    Args:
      chat_format: a built-in chat format name or a tokenizer directory (`chat.chat_format`).
      max_length: the decoder row length (decoder-only: prompt and response together).
      max_prompt_length: the prompt tokens kept when truncating; the encoder length for encoder-decoder
        (default: max_length // 2).
    """
    max_prompt_length = max_length // 2 if max_prompt_length is None else max_prompt_length
    if max_length < 1 or max_prompt_length < 1 or (not encoder_decoder and max_prompt_length > max_length):
        raise ValueError(f"need max_length >= 1 and 0 < max_prompt_length (<= max_length for decoder-only); got "
                         f"{max_length}, {max_prompt_length}")
    rows, dropped = [], []
    for pair in pairs:
        row = _encode_pair(pair, vocabulary, chat_format, encoder_decoder=encoder_decoder, max_length=max_length,
                           max_prompt_length=max_prompt_length)
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
