"""A Hugging Face tokenizer directory (`tokenizer.json`, as Llama 3, Qwen2 and most recent models ship) as a
`seqio.Vocabulary`.

Ids are exactly `tokenizers.Tokenizer.from_file("tokenizer.json").encode(text, add_special_tokens=False).ids`:
no BOS or EOS is added by encoding (seqio appends EOS where a feature asks for it, the prompt layout adds
BOS). Special tokens written in the text (e.g. "<|eot_id|>") are matched as the tokenizer's added tokens
and become their single ids, as `tokenizers` does. `decode` and `decode_tf` stop before the first EOS (the
EOS a seqio feature appends, or a model generates, is not text; seqio's SentencePiece vocabulary decodes it
to nothing too) and keep every other special token as its text (`skip_special_tokens=False`), so that
decode(encode(text)) == text for byte-level tokenizers when the text holds no EOS token; `_decode` keeps all.

The special ids come from the directory's configs, the first that names one wins: `tokenizer_config.json`
(`bos_token`, `eos_token`, `pad_token`, `unk_token`: a token string or {"content": ...}), then
`special_tokens_map.json` (same fields), then `generation_config.json` (`bos_token_id`, `eos_token_id`,
`pad_token_id`; the first id of a list).
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import seqio
import tensorflow as tf
import tokenizers

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
GENERATION_CONFIG_FILE = "generation_config.json"
# The files a tokenizer directory may hold, `tokenizer.json` required.
TOKENIZER_FILES = (TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE, GENERATION_CONFIG_FILE)
_TOKEN_FILES = (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE)


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise TypeError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _token_id(tokenizer: tokenizers.Tokenizer, value: Any, where: str) -> int | None:
    """The id of a config's token entry (a string, or {"content": string}); None when the entry is null."""
    if isinstance(value, dict):
        value = value.get("content")
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{where}: expected a token string, got {value!r}")
    token_id = tokenizer.token_to_id(value)
    if token_id is None:
        raise ValueError(f"{where}: token {value!r} is not in the tokenizer's vocabulary")
    return token_id


def special_id(
    directory: pathlib.Path, tokenizer: tokenizers.Tokenizer, name: str, *, required: bool = False
) -> int | None:
    """The id of special token `name` ("bos", "eos", "pad", "unk") by the module docstring's precedence.

    Raises `ValueError` naming the files and fields looked at when `required` and none gives it.
    """
    for file in _TOKEN_FILES:
        config = _read_json(directory / file)
        if config.get(f"{name}_token") is not None:
            return _token_id(tokenizer, config[f"{name}_token"], f"{directory / file} field {name}_token")
    generation = _read_json(directory / GENERATION_CONFIG_FILE)
    value = generation.get(f"{name}_token_id")
    if isinstance(value, list):
        value = value[0] if value else None
    if value is not None:
        if not isinstance(value, int) or not 0 <= value < tokenizer.get_vocab_size(with_added_tokens=True):
            raise ValueError(f"{directory / GENERATION_CONFIG_FILE} field {name}_token_id: {value!r} is not an id")
        return value
    if required:
        fields = [f"{file} field {name}_token" for file in _TOKEN_FILES]
        raise ValueError(
            f"{directory}: no {name.upper()} id: none of {', '.join(fields)}, {GENERATION_CONFIG_FILE} field "
            f"{name}_token_id gives one"
        )
    return None


class HFTokenizerVocabulary(seqio.Vocabulary):
    """`tokenizer.json` of a Hugging Face tokenizer directory, with its special ids (see the module docstring).

    `vocab_size` is the tokenizer's full size, added tokens included. `pad_id` is the configured pad token,
    else the EOS id (as many decoder-only models do: padding is masked, so it only needs to be a valid id).
    Two vocabularies are equal when their `tokenizer.json` files have the same content and their special ids
    agree, wherever the files lie.
    """

    def __init__(self, tokenizer_dir: str | pathlib.Path):
        directory = pathlib.Path(tokenizer_dir).absolute()
        path = directory / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: a Hugging Face tokenizer directory needs {TOKENIZER_FILE}")
        content = path.read_bytes()
        self._tokenizer_dir = str(directory)
        self._sha256 = hashlib.sha256(content).hexdigest()
        self._tokenizer = tokenizers.Tokenizer.from_str(content.decode("utf-8"))
        self._eos_id = special_id(directory, self._tokenizer, "eos", required=True)
        self._bos_id = special_id(directory, self._tokenizer, "bos")
        self._unk_id = special_id(directory, self._tokenizer, "unk")
        pad_id = special_id(directory, self._tokenizer, "pad")
        self._pad_id = self._eos_id if pad_id is None else pad_id
        super().__init__(extra_ids=0)

    @property
    def tokenizer(self) -> tokenizers.Tokenizer:
        """The `tokenizers.Tokenizer` (for bulk encoding: `encode_batch(texts, add_special_tokens=False)`)."""
        return self._tokenizer

    @property
    def tokenizer_dir(self) -> str:
        """The absolute directory the tokenizer was read from."""
        return self._tokenizer_dir

    @property
    def bos_id(self) -> int | None:
        return self._bos_id

    @property
    def eos_id(self) -> int:
        return self._eos_id

    @property
    def pad_id(self) -> int:
        return self._pad_id

    @property
    def unk_id(self) -> int | None:
        return self._unk_id

    @property
    def _base_vocab_size(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    def _encode(self, s: str) -> list[int]:
        return self._tokenizer.encode(s, add_special_tokens=False).ids

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def _before_eos(self, ids: Any) -> list[int]:
        ids = [int(i) for i in ids]
        return ids[: ids.index(self._eos_id)] if self._eos_id in ids else ids

    def decode(self, ids: Any) -> str:
        """Text of `ids` up to (not including) the first EOS; ids past the vocabulary become UNK, if any."""
        if isinstance(ids, (tf.Tensor, np.ndarray)):
            ids = np.asarray(ids).tolist()
        ids = self._before_eos(ids)
        if self._unk_id is not None:
            ids = [self._unk_id if i >= self._base_vocab_size else i for i in ids]
        return self._decode(ids)

    def _encode_flat(self, texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of a 1-D array of UTF-8 strings: (concatenated ids, ids per text)."""
        strings = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts.reshape(-1).tolist()]
        encodings = self._tokenizer.encode_batch(strings, add_special_tokens=False) if strings else []
        lengths = np.asarray([len(e.ids) for e in encodings], np.int64)
        values = np.asarray([i for e in encodings for i in e.ids], np.int32)
        return values, lengths

    def _encode_tf(self, s: tf.Tensor) -> tf.Tensor | tf.RaggedTensor:
        """A scalar string gives int32 ids [None]; a 1-D batch a `tf.RaggedTensor` [batch, None]."""
        s = tf.convert_to_tensor(s, tf.string)
        if s.shape.rank not in (0, 1):
            raise ValueError(f"encode_tf takes a scalar or 1-D string tensor, got shape {s.shape}")
        values, lengths = tf.numpy_function(self._encode_flat, [tf.reshape(s, [-1])], [tf.int32, tf.int64])
        values.set_shape([None])
        lengths.set_shape([None])
        if s.shape.rank == 0:
            return values
        return tf.RaggedTensor.from_row_lengths(values, lengths, validate=False)

    def _decode_rows(self, ids: np.ndarray) -> np.ndarray:
        rows = [self._before_eos(row) for row in ids.reshape(int(np.prod(ids.shape[:-1])), ids.shape[-1])]
        texts = self._tokenizer.decode_batch(rows, skip_special_tokens=False) if rows else []
        return np.asarray([t.encode("utf-8") for t in texts], dtype=object).reshape(ids.shape[:-1])

    def _decode_tf(self, ids: tf.Tensor) -> tf.Tensor:
        """Int ids [..., length] to UTF-8 strings [...], each up to its first EOS."""
        ids = tf.convert_to_tensor(ids)
        if ids.shape.rank is None or ids.shape.rank == 0:
            raise ValueError(f"decode_tf takes ids of rank >= 1, got shape {ids.shape}")
        text = tf.numpy_function(self._decode_rows, [ids], tf.string)
        text.set_shape(ids.shape[:-1])
        return text

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HFTokenizerVocabulary):
            return False
        mine = (self._sha256, self._bos_id, self._eos_id, self._pad_id, self._unk_id)
        return mine == (other._sha256, other._bos_id, other._eos_id, other._pad_id, other._unk_id)

    def __hash__(self) -> int:
        return hash((self._sha256, self._eos_id, self._pad_id))

    def __repr__(self) -> str:
        return f"HFTokenizerVocabulary({self._tokenizer_dir!r}, size={self.vocab_size}, eos={self._eos_id})"
