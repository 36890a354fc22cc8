"""From a task or mixture to host batches of model features (the feature-converter boundary).

Tasks produce `inputs`/`targets`; a model's prompt layout (`it_jax.data.layout`) picks the feature converter
that turns task features into model features (packing sequences with segment ids and positions).
Each host reads its own shard of the data (`seqio.ShardInfo`) and yields numpy batches of its share of the
global batch; the trainer assembles them into global arrays.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import seqio

from it_jax.data.layout import PromptLayout, feature_converter


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
    that an uninterrupted run would have seen after that many steps.
    """
    if batch_size % num_shards:
        raise ValueError(f"global batch size {batch_size} is not divisible by the {num_shards} input shards")
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
    for batch in dataset.prefetch(2).as_numpy_iterator():
        yield {name: np.asarray(value) for name, value in batch.items()}
