"""Vocabularies: a byte vocabulary for the embedded default, SentencePiece by path, or a Hugging Face
tokenizer directory (`tokenizer.json`, `it_jax.data.hf_vocab`).

The vocabulary is a property of the run (a byte-level tiny model and a SentencePiece Flan-T5 read the same
task): it reaches the tasks through the run's `it_jax.data.context.TaskContext` when they are registered.
"""

from __future__ import annotations

import os
from typing import Any

import seqio


def make_vocabulary(
    *, sentencepiece_model: str | None = None, extra_ids: int = 0, tokenizer_dir: str | None = None
) -> seqio.Vocabulary:
    """`seqio.ByteVocabulary` when no model path is given, else a `seqio.SentencePieceVocabulary`, or an
    `hf_vocab.HFTokenizerVocabulary` for `tokenizer_dir` (a Hugging Face tokenizer directory; no extra ids).

    T5 and Flan-T5 use the T5 SentencePiece model with `extra_ids=100` (sentinels 32,000-32,099).
    """
    if tokenizer_dir is not None:
        if sentencepiece_model is not None or extra_ids:
            raise ValueError("give a sentencepiece_model (with extra_ids) or a tokenizer_dir, not both")
        from it_jax.data import hf_vocab  # Imported here: only runs with a Hugging Face tokenizer need it.

        return hf_vocab.HFTokenizerVocabulary(tokenizer_dir)
    if sentencepiece_model is None:
        return seqio.ByteVocabulary(extra_ids=extra_ids)
    if not os.path.isfile(sentencepiece_model):
        raise FileNotFoundError(f"SentencePiece model not found: {sentencepiece_model}")
    return seqio.SentencePieceVocabulary(sentencepiece_model, extra_ids=extra_ids)


def describe(vocabulary: seqio.Vocabulary) -> dict[str, Any]:
    """What `make_vocabulary` needs to rebuild `vocabulary` (recorded with a run's checkpoints)."""
    if isinstance(vocabulary, seqio.SentencePieceVocabulary):
        path = os.path.abspath(vocabulary.sentencepiece_model_file)
        return {"sentencepiece_model": path, "extra_ids": vocabulary.extra_ids}
    if isinstance(vocabulary, seqio.ByteVocabulary):
        return {"sentencepiece_model": None, "extra_ids": vocabulary.extra_ids}
    tokenizer_dir = getattr(vocabulary, "tokenizer_dir", None)  # an hf_vocab.HFTokenizerVocabulary
    if tokenizer_dir is not None:
        return {"tokenizer_dir": os.path.abspath(tokenizer_dir)}
    raise TypeError(f"cannot record a {type(vocabulary).__name__}; use make_vocabulary's vocabularies")


def output_features(vocabulary: seqio.Vocabulary) -> dict[str, seqio.Feature]:
    """The `inputs`/`targets` text features of every instruction task, EOS appended to both."""
    return {
        "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=True, required=False),
        "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
    }
