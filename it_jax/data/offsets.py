"""Token ids of a text with the character each token starts at, for any of the project's vocabularies.

Chat loss weights are character spans of the rendered conversation (`it_jax.data.chat.turn_spans`); a token
takes the weight of the span holding its first character. This module gives those first characters:

- a Hugging Face tokenizer (`tokenizers.Tokenizer`, or an `hf_vocab.HFTokenizerVocabulary`): its offsets;
- `seqio.SentencePieceVocabulary`: the pieces' byte offsets into the original text (SentencePiece keeps the
  alignment through its normalization), mapped to characters; a piece with no surface (the dummy-prefix "▁"
  before the text) starts where the next one does;
- `seqio.ByteVocabulary`: one token per UTF-8 byte, each starting at the character it belongs to.

Ids equal `vocabulary.encode(text)` (no EOS, no BOS): the same tokens training would read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import seqio
import tokenizers


def _char_of_byte(text: str) -> np.ndarray:
    """For each UTF-8 byte of `text` (and one past the end), the index of the character it belongs to."""
    widths = np.fromiter((len(c.encode("utf-8")) for c in text), np.int64, len(text))
    return np.append(np.repeat(np.arange(len(text), dtype=np.int64), widths), len(text))


def _sentencepiece(vocabulary: seqio.SentencePieceVocabulary, text: str) -> tuple[np.ndarray, np.ndarray]:
    proto = vocabulary.tokenizer.encode(text, return_type="proto")
    ids = np.fromiter((p.id for p in proto.pieces), np.int32, len(proto.pieces))
    byte_starts = np.fromiter((p.begin for p in proto.pieces), np.int64, len(proto.pieces))
    return ids, _char_of_byte(text)[byte_starts]


def _bytes(vocabulary: seqio.ByteVocabulary, text: str) -> tuple[np.ndarray, np.ndarray]:
    raw = np.frombuffer(text.encode("utf-8"), np.uint8).astype(np.int32)
    return raw + vocabulary._num_special_tokens, _char_of_byte(text)[:-1]


def _hugging_face(tokenizer: tokenizers.Tokenizer, text: str) -> tuple[np.ndarray, np.ndarray]:
    encoding = tokenizer.encode(text, add_special_tokens=False)
    starts = np.fromiter((start for start, _ in encoding.offsets), np.int64, len(encoding.offsets))
    return np.asarray(encoding.ids, np.int32), starts


def encode_with_starts(vocabulary: Any, text: str) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (int32) of `text` and the character index (int64) each token starts at.

    `vocabulary`: a seqio Byte or SentencePiece vocabulary, an `HFTokenizerVocabulary`, or a
    `tokenizers.Tokenizer`. Any other vocabulary is a `TypeError` (its tokens cannot be placed in the text).
    """
    if isinstance(vocabulary, tokenizers.Tokenizer):
        return _hugging_face(vocabulary, text)
    if isinstance(vocabulary, seqio.ByteVocabulary):
        return _bytes(vocabulary, text)
    if isinstance(vocabulary, seqio.SentencePieceVocabulary):
        return _sentencepiece(vocabulary, text)
    tokenizer = getattr(vocabulary, "tokenizer", None)
    if hasattr(vocabulary, "tokenizer_dir") and isinstance(tokenizer, tokenizers.Tokenizer):
        return _hugging_face(tokenizer, text)
    raise TypeError(
        f"cannot place the tokens of a {type(vocabulary).__name__} in their text (chat loss weights need it); "
        "use a byte, SentencePiece or Hugging Face tokenizer vocabulary"
    )
