"""Batched model calls on text: scoring targets, rank classification over options, and generation.

Text becomes ids the way each family was trained:
- encoder-decoder: inputs and targets each encoded with EOS appended, 0-padded (T5's conventions);
- decoder-only: the prompt is BOS (when the vocabulary defines one) then the inputs; targets follow
  back to back with EOS appended; only target tokens are scored.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import seqio
from flax import nnx

from it_jax.models import decoding, scoring
from it_jax.models.spec import ModelSpec


def encode(vocabulary: seqio.Vocabulary, texts: Sequence[str], length: int) -> np.ndarray:
    """Token ids of `texts`, truncated to leave room for EOS, EOS appended, 0-padded to `length`."""
    rows = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        ids = list(vocabulary.encode(text))[: length - 1] + [vocabulary.eos_id]
        rows[i, : len(ids)] = ids
    return rows


def encode_prompts(vocabulary: seqio.Vocabulary, texts: Sequence[str], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Decoder-only prompts: [BOS] + ids, keeping the last `length` tokens; right-padded, with lengths."""
    bos = vocabulary.bos_id
    rows, lengths = np.zeros((len(texts), length), np.int32), np.zeros((len(texts),), np.int32)
    for i, text in enumerate(texts):
        ids = ([bos] if bos is not None and bos >= 0 else []) + list(vocabulary.encode(text))
        ids = ids[-length:]
        if not ids:
            raise ValueError(f"prompt {i} is empty and the vocabulary has no BOS: nothing to condition on")
        rows[i, : len(ids)], lengths[i] = ids, len(ids)
    return rows, lengths


def _batched(fn: Callable[..., Any], arrays: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    """Applies `fn` to fixed-size batches (padding the last with copies of row 0), so it compiles once."""
    n = len(arrays[0])
    outputs = []
    for start in range(0, n, batch_size):
        chunk = [a[start : start + batch_size] for a in arrays]
        pad = batch_size - len(chunk[0])
        if pad:
            chunk = [np.concatenate([c, np.repeat(c[:1], pad, axis=0)]) for c in chunk]
        outputs.append(np.asarray(fn(*chunk))[: batch_size - pad])
    return np.concatenate(outputs) if outputs else np.zeros((0,))


@dataclasses.dataclass
class Predictor:
    """Scores and generates with one model's parameters at fixed sequence lengths and batch size.

    `decode` holds `it_jax.models.decoding.generate`'s options (method, temperature, top_k, top_p,
    beam_size, length_penalty); `seed` seeds sampling.
    """

    spec: ModelSpec
    params: Any
    vocabulary: seqio.Vocabulary
    input_length: int = 128
    target_length: int = 32
    batch_size: int = 64
    decode: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        self.decoder_only = nnx.merge(self.spec.graphdef, self.spec.abstract_state).architecture != "encoder_decoder"
        self._score = jax.jit(
            lambda p, x, xl, y, yl: scoring.target_log_likelihood(
                self.spec.bind(p), x, y, input_lengths=xl, target_lengths=yl
            )[0]
        )
        self._generate = jax.jit(
            lambda p, x, xl, rows: decoding.generate(
                self.spec.bind(p),
                x,
                input_lengths=xl,
                max_decode_length=self.target_length,
                eos_id=self.vocabulary.eos_id,
                rng=jax.random.fold_in(jax.random.key(self.seed), rows[0]),
                **self.decode,
            )
        )

    def _inputs(self, inputs: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.decoder_only:
            return encode_prompts(self.vocabulary, inputs, self.input_length)
        x = encode(self.vocabulary, inputs, self.input_length)
        return x, (x > 0).sum(axis=1).astype(np.int32)

    def score(self, inputs: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """Sum of target-token log-likelihoods (EOS included) of each (input, target) pair."""
        x, x_lengths = self._inputs(inputs)
        y = encode(self.vocabulary, targets, self.target_length)
        y_lengths = np.asarray([min(len(self.vocabulary.encode(t)) + 1, self.target_length) for t in targets], np.int32)
        fn = functools.partial(self._score, self.params)
        return _batched(fn, [x, x_lengths, y, y_lengths.reshape(-1)], self.batch_size)

    def rank_classify(self, inputs: Sequence[str], options: Sequence[Sequence[str]]) -> list[int]:
        """Index of the highest-scoring option for each input (FLAN: no length normalization)."""
        pairs = [(text, option) for text, opts in zip(inputs, options) for option in opts]
        scores = self.score([p[0] for p in pairs], [p[1] for p in pairs])
        predictions, start = [], 0
        for opts in options:
            predictions.append(int(np.argmax(scores[start : start + len(opts)])))
            start += len(opts)
        return predictions

    def generate(self, inputs: Sequence[str]) -> list[str]:
        """Generations decoded to text up to (not including) EOS."""
        x, x_lengths = self._inputs(inputs)
        # Sampling keys follow the batch's first row index, so results do not depend on earlier calls.
        rows = np.arange(len(inputs), dtype=np.int32)
        tokens = _batched(functools.partial(self._generate, self.params), [x, x_lengths, rows], self.batch_size)
        texts = []
        for row in tokens:
            ids = row.tolist()
            if self.vocabulary.eos_id in ids:
                ids = ids[: ids.index(self.vocabulary.eos_id)]
            texts.append(self.vocabulary.decode([i for i in ids if i > 0]))
        return texts
