"""Batched model calls for evaluation: rank classification over answer options, and greedy generation."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import seqio

from it_jax.models import decoding, scoring
from it_jax.train.state import ModelSpec


def encode(vocabulary: seqio.Vocabulary, texts: Sequence[str], length: int) -> np.ndarray:
    """Token ids of `texts`, truncated to leave room for EOS, EOS appended, 0-padded to `length`."""
    rows = np.zeros((len(texts), length), np.int32)
    for i, text in enumerate(texts):
        ids = list(vocabulary.encode(text))[: length - 1] + [vocabulary.eos_id]
        rows[i, : len(ids)] = ids
    return rows


def _batched(fn, arrays: Sequence[np.ndarray], batch_size: int) -> np.ndarray:
    """Applies `fn` to fixed-size batches (padding the last), so it compiles once."""
    n = len(arrays[0])
    outputs = []
    for start in range(0, n, batch_size):
        chunk = [a[start : start + batch_size] for a in arrays]
        pad = batch_size - len(chunk[0])
        if pad:
            chunk = [np.concatenate([c, np.zeros((pad, *c.shape[1:]), c.dtype)]) for c in chunk]
        outputs.append(np.asarray(fn(*chunk))[: batch_size - pad])
    return np.concatenate(outputs) if outputs else np.zeros((0,))


@dataclasses.dataclass
class Predictor:
    """Scores and generates with one model's parameters at fixed sequence lengths and batch size."""

    spec: ModelSpec
    params: Any
    vocabulary: seqio.Vocabulary
    input_length: int = 128
    target_length: int = 32
    batch_size: int = 64

    def __post_init__(self):
        self._score = jax.jit(lambda p, x, y: scoring.target_log_likelihood(self.spec.bind(p), x, y)[0])
        self._generate = jax.jit(
            lambda p, x: decoding.greedy_decode(
                self.spec.bind(p), x, max_length=self.target_length, eos_id=self.vocabulary.eos_id
            )
        )

    def score(self, inputs: Sequence[str], targets: Sequence[str]) -> np.ndarray:
        """Sum of target-token log-likelihoods (EOS included) of each (input, target) pair."""
        x = encode(self.vocabulary, inputs, self.input_length)
        y = encode(self.vocabulary, targets, self.target_length)
        return _batched(functools.partial(self._score, self.params), [x, y], self.batch_size)

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
        """Greedy generations, decoded to text up to (not including) EOS."""
        x = encode(self.vocabulary, inputs, self.input_length)
        tokens = _batched(functools.partial(self._generate, self.params), [x], self.batch_size)
        texts = []
        for row in tokens:
            ids = row.tolist()
            if self.vocabulary.eos_id in ids:
                ids = ids[: ids.index(self.vocabulary.eos_id)]
            texts.append(self.vocabulary.decode([i for i in ids if i > 0]))
        return texts
