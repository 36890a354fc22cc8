"""Conversation sources: JSONL records in common chat and instruction layouts, read as lists of messages.

A message is `{"role": "system" | "user" | "assistant", "content": str}`. Four record layouts are read:

- `messages`: `{"messages": [{"role": ..., "content": ...}, ...]}` (hh_rlhf_chat, oasst1_en_top1).
- `alpaca`: `{"instruction", "input", "output"}`; the user turn is the instruction, then a blank line and the
  input when there is one (alpaca, self_instruct__*).
- `dolly`: `{"instruction", "context", "response"}`, laid out as Alpaca with context in place of input.
- `sharegpt`: `{"conversations": [{"from": "system" | "human" | "gpt", "value": ...}, ...]}`.

A record that does not fit its layout raises a `sources.SourceError` naming the file, the line and the field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from it_jax.data import sources

Message = dict[str, str]
ROLES = ("system", "user", "assistant")
SHAREGPT_ROLES = {"system": "system", "human": "user", "gpt": "assistant"}


class RecordError(ValueError):
    """A record does not fit its layout; the message names the field (the caller adds file and line)."""


def _string(record: Mapping[str, Any], field: str, *, where: str = "", required: bool = True) -> str:
    """`record[field]` as a string; missing (when required) or not a string raises a RecordError."""
    name = f"{where}{field}"
    if field not in record:
        if required:
            raise RecordError(f"missing field {name!r}")
        return ""
    value = record[field]
    if not isinstance(value, str):
        raise RecordError(f"field {name!r} must be a string, got {type(value).__name__}")
    return value


def _turns(record: Mapping[str, Any], field: str) -> list[Any]:
    if field not in record:
        raise RecordError(f"missing field {field!r}")
    turns = record[field]
    if not isinstance(turns, list) or not turns:
        raise RecordError(f"field {field!r} must be a non-empty list of turns, got {turns!r:.80}")
    for index, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RecordError(f"field '{field}[{index}]' must be an object, got {type(turn).__name__}")
    return turns


def _conversation(record: Mapping[str, Any], field: str, speaker_key: str, text_key: str,
                  roles: Mapping[str, str]) -> list[Message]:
    """The turns of `record[field]` as messages: each turn's `speaker_key` (one of `roles`, mapped to a role)
    and its `text_key` string."""
    messages = []
    for index, turn in enumerate(_turns(record, field)):
        where = f"{field}[{index}]."
        speaker = _string(turn, speaker_key, where=where)
        if speaker not in roles:
            raise RecordError(f"field '{where}{speaker_key}' must be one of {list(roles)}, got {speaker!r}")
        messages.append({"role": roles[speaker], "content": _string(turn, text_key, where=where)})
    return messages


def from_messages(record: Mapping[str, Any]) -> list[Message]:
    """A `messages` record: roles must be system, user or assistant, contents strings."""
    return _conversation(record, "messages", "role", "content", {role: role for role in ROLES})


def _instruction_record(record: Mapping[str, Any], extra_field: str, answer_field: str) -> list[Message]:
    """A user turn (the non-empty `instruction`, then a blank line and the optional `extra_field`) and the
    assistant's `answer_field`."""
    instruction = _string(record, "instruction")
    if not instruction.strip():
        raise RecordError("field 'instruction' is empty")
    extra = _string(record, extra_field, required=False)
    user = f"{instruction}\n\n{extra}" if extra.strip() else instruction
    return [{"role": "user", "content": user}, {"role": "assistant", "content": _string(record, answer_field)}]


def from_alpaca(record: Mapping[str, Any]) -> list[Message]:
    """An Alpaca record: instruction (non-empty), optional input, output."""
    return _instruction_record(record, "input", "output")


def from_dolly(record: Mapping[str, Any]) -> list[Message]:
    """A Dolly record: instruction (non-empty), optional context, response."""
    return _instruction_record(record, "context", "response")


def from_sharegpt(record: Mapping[str, Any]) -> list[Message]:
    """A ShareGPT record: `conversations` of `{"from": system|human|gpt, "value": str}`."""
    return _conversation(record, "conversations", "from", "value", SHAREGPT_ROLES)


READERS: dict[str, Callable[[Mapping[str, Any]], list[Message]]] = {
    "messages": from_messages,
    "alpaca": from_alpaca,
    "dolly": from_dolly,
    "sharegpt": from_sharegpt,
}


def reader(layout: str) -> Callable[[Mapping[str, Any]], list[Message]]:
    """The record -> messages function of a layout name (one of `READERS`)."""
    if layout not in READERS:
        raise sources.SourceError(f"unknown conversation layout {layout!r}; known: {sorted(READERS)}")
    return READERS[layout]


class ConversationSource:
    """A JSONL source whose examples are `{"messages": [...]}` (plus the record's `id` when it has one).

    Implements `sources.Source`; a record that does not fit `layout` raises `sources.SourceError` with
    `path:line` and the field.
    """

    def __init__(self, paths: Mapping[str, str | os.PathLike], layout: str, *, description: str = ""):
        self.layout = layout
        self._read = reader(layout)
        self.jsonl = sources.JsonlSource(paths, description=description)
        self.splits = self.jsonl.splits

    def examples(self, split: str) -> Iterator[sources.Example]:
        for index, record in enumerate(self.jsonl.examples(split)):
            try:
                example: sources.Example = {"messages": self._read(record)}
            except RecordError as e:
                where = self.jsonl.location(split, index)
                raise sources.SourceError(f"{where}: not a {self.layout!r} conversation: {e}") from None
            if "id" in record:
                example["id"] = record["id"]
            yield example

    def num_examples(self, split: str) -> int:
        return self.jsonl.num_examples(split)

    def location(self, split: str, index: int | None = None) -> str:
        return self.jsonl.location(split, index)


def read_conversations(path: str | os.PathLike, layout: str) -> Iterator[list[Message]]:
    """The message lists of one JSONL file in `layout`; errors name the file, line and field."""
    for example in ConversationSource({"data": path}, layout).examples("data"):
        yield example["messages"]
