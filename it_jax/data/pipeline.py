"""From a task or mixture to host batches of model features (the feature-converter boundary).

Tasks produce `inputs`/`targets`; a model declares its architecture, and the matching SeqIO feature
converter turns task features into model features (packing sequences with segment ids and positions).
Each host reads its own shard of the data (`seqio.ShardInfo`) and yields numpy batches of its share of the
global batch; the trainer assembles them into global arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import seqio

FEATURE_CONVERTERS: dict[str, type[seqio.FeatureConverter]] = {
    "encoder_decoder": seqio.EncDecFeatureConverter,
    "decoder_only": seqio.DecoderFeatureConverter,
    "prefix_lm": seqio.PrefixLMFeatureConverter,
}


def feature_converter(architecture: str, *, pack: bool) -> seqio.FeatureConverter:
    """The SeqIO feature converter producing the features a model of `architecture` consumes."""
    if architecture not in FEATURE_CONVERTERS:
        raise ValueError(f"unknown architecture {architecture!r}; known: {sorted(FEATURE_CONVERTERS)}")
    return FEATURE_CONVERTERS[architecture](pack=pack)


def host_batches(
    mixture_or_task: str,
    *,
    task_feature_lengths: Mapping[str, int],
    architecture: str,
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
    that an uninterrupted run would have seen after that many steps.
    """
    if batch_size % num_shards:
        raise ValueError(f"global batch size {batch_size} is not divisible by the {num_shards} input shards")
    dataset = seqio.get_dataset(
        mixture_or_task,
        task_feature_lengths=dict(task_feature_lengths),
        feature_converter=feature_converter(architecture, pack=pack),
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
    for batch in dataset.prefetch(2).as_numpy_iterator():
        yield {name: np.asarray(value) for name, value in batch.items()}
