"""From a task or mixture to host batches of model features (the feature-converter boundary).

Tasks produce `inputs`/`targets`; a model's prompt layout (`it_jax.data.layout`) decides the feature converter
that turns task features into model features (packing sequences with segment ids and positions): seqio's
for encoder-decoder models, `DecoderFeatureConverter` for decoder layouts.
Each host reads its own shard of the data (`seqio.ShardInfo`) and yields numpy batches of its share of the
global batch; the trainer assembles them into global arrays.

A `DataError` raised while tf.data reads a task (see `it_jax.data.tasks`) reaches the reader wrapped in a
`tf.errors.OpError` with TensorFlow's traceback text; `data_errors()` re-raises it as the one-line error.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import seqio
import tensorflow as tf

from it_jax import errors
from it_jax.data import chat_tasks, mixing, packed_input
from it_jax.data.layout import PromptLayout


def _subclasses(cls: type) -> dict[str, type]:
    found = {cls.__name__: cls}
    for sub in cls.__subclasses__():
        found.update(_subclasses(sub))
    return found


def recover_data_error(error: tf.errors.OpError) -> errors.DataError | None:
    """The `DataError` a tf.data generator raised, from the `OpError` TensorFlow wrapped it in (None if not one)."""
    classes = _subclasses(errors.DataError)
    pattern = r"(?<![\w.])(" + "|".join(map(re.escape, classes)) + r"): ([^\n]+)"
    match = re.search(pattern, error.message or "")
    return classes[match.group(1)](match.group(2).strip()) if match else None


@contextlib.contextmanager
def data_errors() -> Iterator[None]:
    """Inside, a `DataError` from a tf.data input surfaces as itself instead of TensorFlow's wrapped error."""
    try:
        yield
    except tf.errors.OpError as error:
        recovered = recover_data_error(error)
        if recovered is None:
            raise
        raise recovered from None


class DecoderFeatureConverter(seqio.FeatureConverter):
    """Task features -> (prefix-)LM model features, following a decoder `PromptLayout`.

    Each example becomes `sequence = prompt + targets`; the model reads `sequence[:-1]`
    (`decoder_input_tokens`) and predicts `sequence[1:]` (`decoder_target_tokens`), with loss weights on the
    targets and `decoder_causal_attention` marking the prompt. With `start_id=0, inputs_eos=True` this is
    exactly `seqio.PrefixLMFeatureConverter`'s output.
    """

    TASK_FEATURES = {
        "inputs": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "targets": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    MODEL_FEATURES = {
        "decoder_target_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_input_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_loss_weights": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_causal_attention": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    PACKING_FEATURE_DTYPES = {"decoder_segment_ids": tf.int32, "decoder_positions": tf.int32}

    def __init__(self, layout: PromptLayout, **kwargs):
        if not layout.decoder_only:
            raise ValueError(f"{layout.architecture} is not a decoder layout")
        self.layout = layout
        super().__init__(**kwargs)

    def _sequence(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One example as packable features (no zeros: seqio's packing counts nonzero ids): the predicted
        tokens `sequence[1:]`, the prompt length and the sequence's first token (plus one), tiled."""
        inputs, targets = features["inputs"], features["targets"]
        if not self.layout.inputs_eos:
            inputs = inputs[:-1]
        if self.layout.start_id is not None:
            inputs = tf.concat([tf.constant([self.layout.start_id], tf.int32), inputs], axis=0)
        sequence = tf.concat([inputs, targets], axis=0)
        width = tf.size(sequence) - 1
        return {
            "decoder_target_tokens": sequence[1:],
            "prompt_width": tf.fill([width], tf.size(inputs)),
            "first_token": tf.fill([width], sequence[0] + 1),
        }

    def _model_features(self, packed: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        targets = packed["decoder_target_tokens"]
        if self.pack:
            segments, positions = packed["decoder_target_tokens_segment_ids"], packed["decoder_target_tokens_positions"]
        else:
            segments, positions = tf.cast(targets != 0, tf.int32), tf.range(tf.size(targets))
        # Each segment reads its first token, then every token it predicts but the last.
        previous = tf.concat([tf.zeros([1], tf.int32), targets[:-1]], axis=0)
        inputs = tf.where(positions == 0, packed["first_token"] - 1, previous) * tf.cast(segments > 0, tf.int32)
        prompt = positions < packed["prompt_width"]
        features = {
            "decoder_target_tokens": targets,
            "decoder_input_tokens": inputs,
            "decoder_loss_weights": tf.cast(~prompt | (positions == packed["prompt_width"] - 1), tf.int32)
            * tf.cast(segments > 0, tf.int32),
            "decoder_causal_attention": tf.cast(prompt & (segments > 0), tf.int32),
        }
        if self.pack:
            features.update(decoder_segment_ids=segments, decoder_positions=positions)
        return features

    def _convert_features(self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
        ds = ds.map(self._sequence, num_parallel_calls=tf.data.AUTOTUNE)
        length = self.get_model_feature_lengths(task_feature_lengths)["decoder_target_tokens"]
        ds = self._pack_or_pad(ds, {"decoder_target_tokens": length, "prompt_width": length, "first_token": length})
        return ds.map(self._model_features, num_parallel_calls=tf.data.AUTOTUNE)

    def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> Mapping[str, int]:
        # The start token, inputs and targets, less the one position the shift drops.
        length = task_feature_lengths["inputs"] + task_feature_lengths["targets"]
        length += (self.layout.start_id is not None) - 1
        names = [*self.MODEL_FEATURES, *(self.PACKING_FEATURE_DTYPES if self.pack else ())]
        return {name: length for name in names}


def feature_converter(layout: PromptLayout, *, pack: bool) -> seqio.FeatureConverter:
    """The feature converter producing the features a model of `layout` trains on."""
    if layout.decoder_only:
        return DecoderFeatureConverter(layout, pack=pack)
    return seqio.EncDecFeatureConverter(pack=pack)


def batch_shapes(
    layout: PromptLayout, *, task_feature_lengths: Mapping[str, int], batch_size: int, pack: bool
) -> dict[str, tuple[int, int]]:
    """The global shape of each model feature of a batch (all int32), known before any data is read."""
    lengths = feature_converter(layout, pack=pack).get_model_feature_lengths(dict(task_feature_lengths))
    return {name: (batch_size, length) for name, length in lengths.items()}


def host_batches(
    mixture_or_task: str,
    *,
    task_feature_lengths: Mapping[str, int],
    layout: PromptLayout,
    batch_size: int,
    split: str = "train",
    pack: bool = True,
    shuffle: bool = True,
    seed: int = 0,
    repeat: bool = True,
    shard_index: int = 0,
    num_shards: int = 1,
    skip_batches: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this host's batches (`batch_size // num_shards` rows each) of model features.

    The pipeline is deterministic given `seed`, so skipping `skip_batches` reproduces exactly the batches
    that an uninterrupted run would have seen after that many steps. Unreadable data raises a `DataError`
    naming the task, split, file and line. A mixture with chat tasks on a decoder layout is read as training
    reads it (`packed_input`: whole conversations with their turn weights, drawn by `seed`).
    """
    if batch_size % num_shards:
        raise ValueError(f"global batch size {batch_size} is not divisible by the {num_shards} input shards")
    if layout.decoder_only and any(chat_tasks.chat_task_info(name) for name in mixing.task_names(mixture_or_task)):
        yield from _weighted_conversations(
            mixture_or_task, task_feature_lengths=task_feature_lengths, layout=layout, batch_size=batch_size,
            split=split, pack=pack, seed=seed, repeat=repeat, shard_index=shard_index, num_shards=num_shards,
            skip_batches=skip_batches,
        )
        return
    dataset = seqio.get_dataset(
        mixture_or_task,
        task_feature_lengths=dict(task_feature_lengths),
        feature_converter=feature_converter(layout, pack=pack),
        dataset_split=split,
        shuffle=shuffle,
        num_epochs=None if repeat else 1,
        shard_info=seqio.ShardInfo(index=shard_index, num_shards=num_shards),
        seed=seed,
        verbose=False,
    )
    dataset = dataset.batch(batch_size // num_shards, drop_remainder=repeat)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    with data_errors():
        for batch in dataset.prefetch(2).as_numpy_iterator():
            yield {name: np.asarray(value) for name, value in batch.items()}


def _weighted_conversations(mixture_or_task: str, *, repeat: bool, **settings: Any) -> Iterator[dict[str, np.ndarray]]:
    """Batches of a mixture with chat tasks, from `packed_input` (seqio's view has one turn and no weights)."""
    if not repeat:
        raise ValueError(
            f"{mixture_or_task!r} has chat tasks, which a decoder layout reads with packed_input's endless draws: "
            "read a number of batches (repeat=True) instead of one pass"
        )
    vocabulary = next(iter(seqio.get_mixture_or_task(mixture_or_task).output_features.values())).vocabulary
    yield from packed_input.packed_batches(mixture_or_task, vocabulary=vocabulary, **settings)
