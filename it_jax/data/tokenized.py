"""A task's examples tokenized once into flat arrays: what the training input (`packed_input`) draws from.

Templated tasks are rendered and tokenized exactly as their seqio pipeline does (`tokenize` +
`append_eos_after_trim`: each of inputs and targets trimmed to its length, EOS last). Chat tasks
(`it_jax.data.chat_tasks`) on a decoder layout become whole conversations with per-token loss weights, fitted
to the row (`max_tokens`) by the task's overflow rule, the counts printed; on an encoder-decoder layout they
take seqio's view (the history as inputs, the last assistant turn as targets) like any task.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import jax
import numpy as np
import seqio

from it_jax.data import chat_tasks
from it_jax.data import tasks as tasks_lib


def ragged(pieces: Sequence[np.ndarray], dtype: type = np.int32) -> tuple[np.ndarray, np.ndarray]:
    """Flat tokens and int64 offsets (n + 1) of a list of arrays."""
    lengths = np.fromiter((len(p) for p in pieces), np.int64, len(pieces))
    offsets = np.zeros(len(pieces) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.concatenate(pieces).astype(dtype) if pieces else np.zeros(0, dtype)
    return flat, offsets


def encode_texts(vocabulary: seqio.Vocabulary, texts: Sequence[str]) -> list[np.ndarray]:
    """Token ids of each text, as `vocabulary.encode` gives them (no EOS), in bulk where possible."""
    if isinstance(vocabulary, seqio.ByteVocabulary):
        encoded = [t.encode("utf-8") for t in texts]
        lengths = np.fromiter(map(len, encoded), np.int64, len(encoded))
        flat = np.frombuffer(b"".join(encoded), np.uint8).astype(np.int32) + vocabulary._num_special_tokens
        return np.split(flat, np.cumsum(lengths)[:-1]) if texts else []
    if isinstance(vocabulary, seqio.SentencePieceVocabulary):
        return [np.asarray(ids, np.int32) for ids in vocabulary.tokenizer.EncodeAsIds(list(texts))]
    if hasattr(vocabulary, "tokenizer_dir"):  # an hf_vocab.HFTokenizerVocabulary: a Rust batch encode
        encodings = vocabulary.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [np.asarray(e.ids, np.int32) for e in encodings]
    return [np.asarray(vocabulary.encode(t), np.int32) for t in texts]


def trim_and_append_eos(ids: np.ndarray, length: int, eos_id: int, add_eos: bool = True) -> np.ndarray:
    """seqio's `append_eos_after_trim`: keep `length - 1` tokens and append EOS (else trim to `length`)."""
    if not add_eos:
        return ids[:length]
    return np.append(ids[: length - 1], np.int32(eos_id)).astype(np.int32)


@dataclasses.dataclass(frozen=True)
class TokenizedTask:
    """One task's examples, tokenized: per stream, flat tokens and offsets (example i: flat[off[i]:off[i+1]]).

    `weights` (chat tasks on decoder layouts): per-token loss weights aligned with `targets`, which then hold
    whole conversations (and `inputs` are empty); None: the loss is on the targets.
    """

    name: str
    inputs: tuple[np.ndarray, np.ndarray]
    targets: tuple[np.ndarray, np.ndarray]
    weights: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def size(self) -> int:
        return len(self.inputs[1]) - 1


def _templated_examples(name: str, split: str) -> list[dict]:
    info = tasks_lib.task_info(name)
    return list(info.render(split, tasks_lib.template_index(name), tasks_lib.task_variant(name)))


def _chat_conversations(info: chat_tasks.ChatTaskInfo, split: str, vocabulary: seqio.Vocabulary,
                        max_tokens: int) -> TokenizedTask:
    ids, weights, counts = info.tokenize(split, vocabulary, max_tokens)
    summary = counts.summary(info.name, max_tokens)
    if summary and jax.process_index() == 0:
        print(summary, flush=True)
    empty = [np.zeros(0, np.int32)] * len(ids)
    return TokenizedTask(info.name, ragged(empty), ragged(ids), ragged(weights, np.uint8))


def tokenize_task(
    name: str,
    split: str,
    vocabulary: seqio.Vocabulary,
    task_feature_lengths: Mapping[str, int],
    *,
    max_tokens: int | None = None,
) -> TokenizedTask:
    """Renders `split` of seqio task `name` and tokenizes it as its seqio pipeline does (EOS after trim).

    `max_tokens`: a decoder layout's room for one sequence; given, chat tasks become whole weighted
    conversations of at most that many tokens (see the module docstring).
    """
    chat = chat_tasks.chat_task_info(name)
    if chat is not None and max_tokens is not None:
        return _chat_conversations(chat, split, vocabulary, max_tokens)
    examples = list(chat.render(split)) if chat is not None else _templated_examples(name, split)
    features = seqio.get_mixture_or_task(name).output_features
    streams = []
    for key in ("inputs", "targets"):
        ids = encode_texts(vocabulary, [e[key] for e in examples])
        length = task_feature_lengths[key]
        add_eos = features[key].add_eos
        streams.append(ragged([trim_and_append_eos(t, length, vocabulary.eos_id, add_eos) for t in ids]))
    return TokenizedTask(name, *streams)
