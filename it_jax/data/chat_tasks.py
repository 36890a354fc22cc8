"""Chat and instruction-following tasks: conversations registered as seqio tasks, trained with per-token weights.

`register_chat_task(name, source=..., context=...)` registers a `seqio.Task` whose source carries a
`ChatTaskInfo`; it mixes with other chat tasks and with the FLAN collection by rate like any task. Its
conversations (`chat_sources`: messages, Alpaca, Dolly or ShareGPT records) are rendered by the run's chat
format (`TaskContext.chat_format_name()`: the checkpoint's template or a built-in one) in two views:

- Training a decoder layout (`it_jax.data.tokenized`): the whole conversation is one token sequence whose loss
  weights are 1 on the turns `train_on` selects (`chat.conversation_tokens`: assistant turns with their
  end-of-turn token, all turns, or the last assistant turn). A conversation longer than the row is truncated
  (`overflow="truncate"`) or split between exchanges (`"split"`: each piece opens at a user turn, after the
  system messages); a piece left with no weighted token is dropped. Every truncation, split and drop is
  counted and printed when the task is tokenized (`OverflowCounts`), never silent.
- seqio's features (`seqio.get_dataset`, and encoder-decoder training): `inputs` is the conversation before
  its last assistant turn, rendered with the generation prompt, and `targets` that turn's content.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import seqio
import tensorflow as tf

from it_jax import errors
from it_jax.data import chat, chat_sources, sources
from it_jax.data import vocab as vocab_lib

if TYPE_CHECKING:
    from it_jax.data.context import TaskContext

Message = chat_sources.Message
OVERFLOW = ("truncate", "split")


@dataclasses.dataclass
class OverflowCounts:
    """What fitting a task's conversations into rows did to them."""

    conversations: int = 0
    truncated: int = 0  # pieces cut at the row's end
    split: int = 0  # conversations split into several pieces
    pieces: int = 0  # the pieces of those split conversations
    dropped: int = 0  # pieces with no weighted token left (not trained on)

    def summary(self, task: str, max_tokens: int) -> str | None:
        """One line for the log when anything was changed, else None."""
        if not (self.truncated or self.split or self.dropped):
            return None
        return (
            f"chat task {task!r}: of {self.conversations:,} conversations, {self.split:,} were split into "
            f"{self.pieces:,} pieces, {self.truncated:,} pieces truncated to {max_tokens:,} tokens and "
            f"{self.dropped:,} dropped (no trained token within the row)"
        )


@dataclasses.dataclass(frozen=True)
class ChatTaskInfo:
    """A registered chat task: its conversations and how they are rendered and weighted.

    Attributes:
      source: yields `{"messages": [...]}` examples (e.g. `chat_sources.ConversationSource`).
      chat_format: a built-in format name or a tokenizer directory with a chat template.
      train_on: "assistant", "all" or "last_assistant" (see `chat.turn_spans`).
      overflow: "truncate" or "split" (see the module docstring).
      max_train_examples: trim the train split to this many conversations.
      cluster: the task cluster, as templated tasks have (held-out-cluster mixtures, reports).
    """

    name: str
    source: sources.Source
    chat_format: str
    train_on: str = "assistant"
    overflow: str = "truncate"
    max_train_examples: int | None = None
    cluster: str = "chat"

    def __post_init__(self):
        if self.train_on not in chat.TRAIN_ON:
            raise errors.ConfigError(f"chat task {self.name!r}: train_on must be one of {chat.TRAIN_ON}")
        if self.overflow not in OVERFLOW:
            raise errors.ConfigError(f"chat task {self.name!r}: overflow must be one of {OVERFLOW}")
        if self.overflow == "split" and self.train_on == "last_assistant":
            raise errors.ConfigError(
                f"chat task {self.name!r}: overflow='split' trains every piece, which contradicts "
                "train_on='last_assistant'; use overflow='truncate'"
            )

    @property
    def format(self) -> chat.ChatFormat:
        return chat.chat_format(self.chat_format)

    def conversations(self, split: str) -> Iterator[tuple[int, list[Message]]]:
        """(index, messages) of `split` (the train split trimmed); an unreadable or empty split is a DataError."""
        index = -1
        try:
            for index, example in enumerate(self.source.examples(split)):
                if split == "train" and self.max_train_examples and index >= self.max_train_examples:
                    return
                yield index, example["messages"]
        except sources.SourceError as error:
            raise errors.DataError(f"chat task {self.name!r}, split {split!r}: {errors.one_line(error)}") from None
        if index < 0:
            raise errors.DataError(
                f"chat task {self.name!r} split {split!r} has no conversations ({sources.locate(self.source, split)})"
            )

    def num_examples(self, split: str) -> int:
        try:
            n = self.source.num_examples(split)
        except sources.SourceError as error:
            raise errors.DataError(f"chat task {self.name!r}, split {split!r}: {errors.one_line(error)}") from None
        return min(n, self.max_train_examples) if split == "train" and self.max_train_examples else n

    def _error(self, split: str, index: int, detail: str) -> errors.DataError:
        where = sources.locate(self.source, split, index)
        return errors.DataError(f"chat task {self.name!r}, conversation {index} ({where}): {detail}")

    def render(self, split: str) -> Iterator[dict[str, Any]]:
        """seqio's view: `inputs` (the conversation before its last assistant turn, with the generation
        prompt) and `targets` (that turn's content)."""
        fmt = self.format
        for index, messages in self.conversations(split):
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
            if last is None:
                raise self._error(split, index, "it has no assistant turn")
            try:
                prompt = chat.render(fmt, messages[:last], add_generation_prompt=True)
            except chat.ChatTemplateError as error:
                raise self._error(split, index, errors.one_line(error)) from None
            yield {"inputs": prompt, "targets": messages[last]["content"], "idx": index, "task": self.name}

    def tokenize(self, split: str, vocabulary: Any, max_tokens: int
                 ) -> tuple[list[np.ndarray], list[np.ndarray], OverflowCounts]:
        """The token ids and loss weights of each trained piece of `split`'s conversations, at most `max_tokens`
        long, and what fitting them did (see the module docstring)."""
        ids, weights, counts = [], [], OverflowCounts()
        fmt = self.format
        for index, messages in self.conversations(split):
            counts.conversations += 1
            try:
                pieces = _pieces(fmt, messages, vocabulary, max_tokens, self.train_on, self.overflow)
            except chat.ChatTemplateError as error:
                raise self._error(split, index, errors.one_line(error)) from None
            if len(pieces) > 1:
                counts.split += 1
                counts.pieces += len(pieces)
            for piece_ids, piece_weights in pieces:
                if len(piece_ids) > max_tokens:
                    counts.truncated += 1
                    piece_ids, piece_weights = piece_ids[:max_tokens], piece_weights[:max_tokens]
                if not piece_weights.any():
                    counts.dropped += 1
                    continue
                ids.append(piece_ids)
                weights.append(piece_weights.astype(np.uint8))
        return ids, weights, counts


def _exchanges(messages: Sequence[Message]) -> tuple[list[Message], list[list[Message]]]:
    """The leading system messages, and the rest cut before each user turn."""
    start = next((i for i, m in enumerate(messages) if m["role"] != "system"), len(messages))
    exchanges: list[list[Message]] = []
    for message in messages[start:]:
        if message["role"] == "user" or not exchanges:
            exchanges.append([])
        exchanges[-1].append(message)
    return list(messages[:start]), exchanges


def _pieces(fmt: chat.ChatFormat, messages: Sequence[Message], vocabulary: Any, max_tokens: int,
            train_on: str, overflow: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """The conversation's (ids, weights), or, when it overflows and may be split, those of each piece: as many
    whole exchanges as fit (at least one), each piece after the system messages."""

    def tokens(part: Sequence[Message]) -> tuple[np.ndarray, np.ndarray]:
        return chat.conversation_tokens(fmt, part, vocabulary, train_on=train_on)

    whole = tokens(messages)
    if overflow != "split" or len(whole[0]) <= max_tokens:
        return [whole]
    system, exchanges = _exchanges(messages)
    pieces, current, current_tokens = [], [], None
    for exchange in exchanges:
        candidate = tokens(system + current + exchange)
        if current and len(candidate[0]) > max_tokens:
            pieces.append(current_tokens)
            current, candidate = [], tokens(system + exchange)
        current, current_tokens = current + exchange, candidate
    pieces.append(current_tokens)
    return pieces


_OUTPUT_SIGNATURE = {
    "inputs": tf.TensorSpec([], tf.string),
    "targets": tf.TensorSpec([], tf.string),
    "idx": tf.TensorSpec([], tf.int32),
    "task": tf.TensorSpec([], tf.string),
}


class _ChatSource(seqio.FunctionDataSource):
    """A seqio data source over a chat task's seqio view; carries the task's `ChatTaskInfo`."""

    def __init__(self, info: ChatTaskInfo):
        def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
            del shuffle_files, seed  # read in order; seqio shuffles after preprocessing
            return tf.data.Dataset.from_generator(lambda: info.render(split), output_signature=_OUTPUT_SIGNATURE)

        super().__init__(dataset_fn, splits=info.source.splits)
        self.info = info

    def num_input_examples(self, split: str) -> int:
        return self.info.num_examples(split)


def conversation_source(source: str | os.PathLike | Mapping[str, str] | sources.Source, record_layout: str,
                        name: str) -> sources.Source:
    """A source of `{"messages"}` examples: given, or JSONL files (a `{split}` pattern or split -> path)."""
    if not isinstance(source, (str, os.PathLike, Mapping)):
        return source
    if isinstance(source, Mapping):
        paths = dict(source)
    else:
        pattern = str(source)
        if "{split}" not in pattern:
            raise errors.ConfigError(f"chat task {name!r}: a JSONL path needs a '{{split}}' placeholder: {pattern}")
        paths = {s: pattern.format(split=s) for s in ("train", "validation", "test")}
        paths = {s: p for s, p in paths.items() if os.path.isfile(p)}
        if not paths:
            raise errors.ConfigError(f"chat task {name!r}: no file matches {pattern} for train, validation or test")
    return chat_sources.ConversationSource(paths, record_layout, description=f"chat task {name!r}")


def register_chat_task(
    name: str,
    *,
    source: str | os.PathLike | Mapping[str, str] | sources.Source,
    context: TaskContext,
    record_layout: str = "messages",
    train_on: str = "assistant",
    overflow: str = "truncate",
    max_train_examples: int | None = None,
) -> ChatTaskInfo:
    """Registers the chat task `name` (a `seqio.Task`) rendered with the context's chat format.

    Args:
      source: a source of `{"messages"}` examples, or JSONL files in `record_layout` ("messages", "alpaca",
        "dolly", "sharegpt"): a path with a `{split}` placeholder or a mapping split -> path.
      context: the run's settings: the vocabulary, and the chat format (`context.chat_format_name()`).
      train_on, overflow, max_train_examples: see `ChatTaskInfo`.
    """
    info = ChatTaskInfo(
        name=name,
        source=conversation_source(source, record_layout, name),
        chat_format=context.chat_format_name(),
        train_on=train_on,
        overflow=overflow,
        max_train_examples=max_train_examples,
    )
    seqio.TaskRegistry.remove(name)
    seqio.TaskRegistry.add(
        name,
        source=_ChatSource(info),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features=vocab_lib.output_features(context.vocabulary),
    )
    return info


def chat_task_info(name: str) -> ChatTaskInfo | None:
    """The `ChatTaskInfo` of a registered chat task, None for any other (or unknown) task."""
    if name not in seqio.TaskRegistry.names():
        return None
    source = seqio.TaskRegistry.get(name).source
    return source.info if isinstance(source, _ChatSource) else None
