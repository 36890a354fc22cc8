"""Vocabularies: a byte vocabulary for the embedded default, SentencePiece by path, and the run's choice.

Tasks are registered once, at import, but the vocabulary is a property of the run (a byte-level tiny model
and a SentencePiece Flan-T5 read the same task). Tasks therefore tokenize with `RUN_VOCABULARY`, a
`seqio.Vocabulary` that forwards to whatever `use_vocabulary` installed (a `ByteVocabulary` until then).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import seqio


def make_vocabulary(*, sentencepiece_model: str | None = None, extra_ids: int = 0) -> seqio.Vocabulary:
    """`seqio.ByteVocabulary` when no model path is given, else a `seqio.SentencePieceVocabulary`.

    T5 and Flan-T5 use the T5 SentencePiece model with `extra_ids=100` (sentinels 32,000-32,099).
    """
    if sentencepiece_model is None:
        return seqio.ByteVocabulary(extra_ids=extra_ids)
    if not os.path.isfile(sentencepiece_model):
        raise FileNotFoundError(f"SentencePiece model not found: {sentencepiece_model}")
    return seqio.SentencePieceVocabulary(sentencepiece_model, extra_ids=extra_ids)


def describe(vocabulary: seqio.Vocabulary) -> dict[str, Any]:
    """What `make_vocabulary` needs to rebuild `vocabulary` (recorded with a run's checkpoints)."""
    vocabulary = getattr(vocabulary, "current", vocabulary)
    if isinstance(vocabulary, seqio.SentencePieceVocabulary):
        path = os.path.abspath(vocabulary.sentencepiece_model_file)
        return {"sentencepiece_model": path, "extra_ids": vocabulary.extra_ids}
    if isinstance(vocabulary, seqio.ByteVocabulary):
        return {"sentencepiece_model": None, "extra_ids": vocabulary.extra_ids}
    raise TypeError(f"cannot record a {type(vocabulary).__name__}; use make_vocabulary's vocabularies")


class _RunVocabulary(seqio.Vocabulary):
    """Forwards every call to the vocabulary installed with `use_vocabulary`."""

    def __init__(self):
        super().__init__(extra_ids=0)
        self._stack: list[seqio.Vocabulary] = [seqio.ByteVocabulary()]

    @property
    def current(self) -> seqio.Vocabulary:
        return self._stack[-1]

    @property
    def bos_id(self) -> int | None:
        return self.current.bos_id

    @property
    def eos_id(self) -> int | None:
        return self.current.eos_id

    @property
    def pad_id(self) -> int:
        return self.current.pad_id

    @property
    def unk_id(self) -> int | None:
        return self.current.unk_id

    @property
    def extra_ids(self) -> int:
        return self.current.extra_ids

    @property
    def vocab_size(self) -> int:
        return self.current.vocab_size

    @property
    def _base_vocab_size(self) -> int:
        return self.current.vocab_size - self.current.extra_ids

    def _encode(self, s: str) -> Sequence[int]:
        return self.current.encode(s)

    def _decode(self, ids):
        return self.current.decode(ids)

    def encode(self, s) -> Sequence[int]:
        return self.current.encode(s)

    def decode(self, ids: Iterable[int]):
        return self.current.decode(ids)

    def _encode_tf(self, s):
        return self.current.encode_tf(s)

    def _decode_tf(self, ids):
        return self.current.decode_tf(ids)

    def encode_tf(self, s):
        return self.current.encode_tf(s)

    def decode_tf(self, ids):
        return self.current.decode_tf(ids)

    def __eq__(self, other) -> bool:
        return other is self or self.current == other

    def __hash__(self) -> int:
        return id(self)


RUN_VOCABULARY = _RunVocabulary()


@contextlib.contextmanager
def use_vocabulary(vocabulary: seqio.Vocabulary) -> Iterator[seqio.Vocabulary]:
    """Makes tasks registered with the run vocabulary tokenize with `vocabulary` inside the block."""
    RUN_VOCABULARY._stack.append(vocabulary)
    try:
        yield vocabulary
    finally:
        RUN_VOCABULARY._stack.pop()


def output_features(vocabulary: seqio.Vocabulary = RUN_VOCABULARY) -> dict[str, seqio.Feature]:
    """The `inputs`/`targets` text features of every instruction task, EOS appended to both."""
    return {
        "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=True, required=False),
        "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
    }
