"""Batched model calls on token ids: scoring targets, rank classification over options, generation.

Prompts are built from seqio-tokenized inputs (EOS appended) by the model's `PromptLayout`, the one
definition training uses too. Work is split over hosts: examples are sorted by length and cut into global
batches, each padded to a length bucket (see `bucket`), not to the maximum feature length; every host fills
its rows of each global batch, the jitted call runs on the mesh with the parameters as they are sharded,
and its outputs come back replicated, so every host holds every result.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
import seqio
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import sharding as sharding_lib
from it_jax.data.layout import PromptLayout
from it_jax.models import decoding, scoring
from it_jax.models.spec import ModelSpec

Ids = Sequence[int]
MIN_BUCKET = 8


def tokenize(vocabulary: seqio.Vocabulary, text: str, length: int) -> list[int]:
    """seqio's tokenization of a task feature: ids truncated to leave room for EOS, then EOS."""
    return list(vocabulary.encode(text))[: length - 1] + [vocabulary.eos_id]


def bucket(length: int, limit: int | None = None) -> int:
    """The padded length for `length` tokens: the next of 8, 16, 32, 48, 64, 96, 128, 192, ... (powers of two
    from 8 and, from 32 on, the midpoints between them: at most 1.5x padding, two compilations an octave),
    at most `limit` (but never less than `length`)."""
    power = max(MIN_BUCKET, 1 << max(length - 1, 0).bit_length())
    padded = power * 3 // 4 if power >= 64 and length <= power * 3 // 4 else power
    return max(length, min(padded, limit)) if limit else padded


def _pad(rows: Sequence[Ids], length: int) -> np.ndarray:
    out = np.zeros((len(rows), length), np.int32)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


@dataclasses.dataclass
class Predictor:
    """Scores and generates with one model's parameters over a mesh.

    Attributes:
      layout: how inputs become the model's prompt (recorded with the model).
      eos_id: the vocabulary's EOS (ends generation).
      batch_size: global batch (rounded up to a multiple of the batch-axis devices).
      max_decode_length: generation length.
      decode: `it_jax.models.decoding.generate`'s options (method, temperature, top_k, top_p, beam_size,
        length_penalty); `seed` seeds sampling.
      mesh: default: every device on the data axis.
    """

    spec: ModelSpec
    params: Any
    layout: PromptLayout
    eos_id: int
    batch_size: int = 64
    max_decode_length: int = 32
    decode: dict[str, Any] = dataclasses.field(default_factory=dict)
    seed: int = 0
    mesh: Mesh | None = None
    rules: sharding_lib.AxisRules = sharding_lib.DEFAULT_RULES

    def __post_init__(self):
        self.mesh = self.mesh or sharding_lib.create_mesh(data=-1)
        with sharding_lib.axis_rules(self.rules):
            self._batch_shardings = {ndim: sharding_lib.data_sharding(self.mesh, ndim) for ndim in (1, 2, 3)}
        batch_devices = self.mesh.devices.size // self.mesh.shape.get("tensor", 1)
        multiple = max(batch_devices, jax.process_count())
        self.batch_size = -(-self.batch_size // multiple) * multiple
        replicated = NamedSharding(self.mesh, PartitionSpec())
        self._score = jax.jit(self._score_fn, out_shardings=replicated)
        self._generate = jax.jit(self._generate_fn, out_shardings=replicated)

    def _score_fn(self, params, prompts, prompt_lengths, options, option_lengths):
        return scoring.option_log_likelihoods(
            self.spec.bind(params), prompts, options, input_lengths=prompt_lengths, option_lengths=option_lengths
        )

    def _generate_fn(self, params, prompts, prompt_lengths, rows):
        return decoding.generate(
            self.spec.bind(params),
            prompts,
            input_lengths=prompt_lengths,
            max_decode_length=self.max_decode_length,
            eos_id=self.eos_id,
            rng=jax.random.fold_in(jax.random.key(self.seed), rows[0]),
            **self.decode,
        )

    def _run(self, fn: Callable[..., Any], local: Sequence[np.ndarray]) -> Any:
        arrays = [jax.make_array_from_process_local_data(self._batch_shardings[a.ndim], a) for a in local]
        with jax.set_mesh(self.mesh), sharding_lib.axis_rules(self.rules):
            return jax.tree.map(np.asarray, fn(self.params, *arrays))

    def _batches(self, prompts: Sequence[Ids]) -> list[np.ndarray]:
        """Example indices of each global batch, longest prompts first (padding rows are -1)."""
        order = sorted(range(len(prompts)), key=lambda i: (-len(prompts[i]), i))
        batches = []
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            batches.append(np.asarray(chunk + [-1] * (self.batch_size - len(chunk))))
        return batches

    def _local(self, batch: np.ndarray) -> np.ndarray:
        """This host's rows of a global batch."""
        share = len(batch) // jax.process_count()
        return batch[jax.process_index() * share : (jax.process_index() + 1) * share]

    def score_options(
        self, inputs: Sequence[Ids], options: Sequence[Sequence[Ids]], *, normalize: bool = False
    ) -> list[np.ndarray]:
        """Log-likelihood of each example's options (target ids, EOS included) given its input ids.

        `normalize` divides each option's sum by its token count. Returns one [num_options] array per example.
        """
        prompts = [self.layout.prompt(ids) for ids in inputs]
        results: list[np.ndarray | None] = [None] * len(prompts)
        for batch in self._batches(prompts):
            real = batch[batch >= 0]
            prompt_length = bucket(max(len(prompts[i]) for i in real))
            num_options = max(len(options[i]) for i in real)
            option_length = bucket(max(len(o) for i in real for o in options[i]))
            rows = self._local(batch)
            x = np.zeros((len(rows), prompt_length), np.int32)
            x_lengths = np.ones((len(rows),), np.int32)
            y = np.zeros((len(rows), num_options, option_length), np.int32)
            y_lengths = np.zeros((len(rows), num_options), np.int32)
            for r, i in enumerate(rows):
                if i < 0:
                    continue
                x[r, : len(prompts[i])], x_lengths[r] = prompts[i], len(prompts[i])
                for k, option in enumerate(options[i]):
                    y[r, k, : len(option)], y_lengths[r, k] = option, len(option)
            total, mean = self._run(self._score, [x, x_lengths, y, y_lengths])
            scores = mean if normalize else total
            for r, i in enumerate(batch):
                if i >= 0:
                    results[i] = scores[r, : len(options[i])]
        return results

    def score(self, inputs: Sequence[Ids], targets: Sequence[Ids]) -> np.ndarray:
        """Sum of each target's token log-likelihoods (EOS included) given its input."""
        return np.asarray([s[0] for s in self.score_options(inputs, [[t] for t in targets])])

    def generate(self, inputs: Sequence[Ids]) -> list[list[int]]:
        """Generated ids of each input, up to (not including) EOS."""
        prompts = [self.layout.prompt(ids) for ids in inputs]
        results: list[list[int]] = [[] for _ in prompts]
        for batch in self._batches(prompts):
            real = batch[batch >= 0]
            length = bucket(max(len(prompts[i]) for i in real))
            rows = self._local(batch)
            filled = [prompts[i] if i >= 0 else prompts[real[0]] for i in rows]
            lengths = np.asarray([len(p) for p in filled], np.int32)
            # Each batch samples with a key from its first example's index: a batch's samples do not depend on
            # the batches before it (they do on its composition: the rows share the key).
            first = np.full((len(rows),), int(real[0]), np.int32)
            tokens = self._run(self._generate, [_pad(filled, length), lengths, first])
            for r, i in enumerate(batch):
                if i >= 0:
                    ids = tokens[r].tolist()
                    # Cut at EOS; a row without one ran to the maximum length, so every id is generated (id 0 is
                    # a real token in BPE vocabularies, not padding).
                    results[i] = ids[: ids.index(self.eos_id)] if self.eos_id in ids else ids
        return results


def rank(scores: Sequence[np.ndarray]) -> list[int]:
    """The chosen option of each example: the index of its highest score (first on ties)."""
    return [int(np.argmax(s)) for s in scores]


def decode_texts(vocabulary: seqio.Vocabulary, generated: Sequence[Ids]) -> list[str]:
    """Generated ids (cut at EOS by `Predictor.generate`) as text. seqio's byte and SentencePiece vocabularies
    decode the pad id 0 to nothing; a BPE vocabulary's id 0 is a real token, so no id is filtered here."""
    return [vocabulary.decode(list(ids)) for ids in generated]

