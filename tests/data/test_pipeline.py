import numpy as np
import pytest

import mixtures.synthetic  # noqa: F401  (registers the synthetic collection)
from it_jax.data import layout, pipeline


def _batches(skip: int, count: int, **kwargs):
    iterator = pipeline.host_batches(
        "synthetic_heldout_entailment",
        task_feature_lengths={"inputs": 64, "targets": 16},
        layout=layout.ENCODER_DECODER,
        batch_size=4,
        seed=3,
        skip_batches=skip,
        **kwargs,
    )
    return [next(iterator) for _ in range(count)]


def test_skipping_batches_resumes_exactly_where_an_uninterrupted_run_would_be():
    straight = _batches(0, 5)
    resumed = _batches(3, 2)
    for expected, got in zip(straight[3:], resumed):
        assert expected.keys() == got.keys()
        for name in expected:
            np.testing.assert_array_equal(expected[name], got[name])
    assert not np.array_equal(straight[0]["encoder_input_tokens"], resumed[0]["encoder_input_tokens"])


def test_each_host_reads_its_own_share_of_the_global_batch():
    shards = [_batches(0, 1, shard_index=i, num_shards=2)[0] for i in range(2)]
    assert all(s["encoder_input_tokens"].shape[0] == 2 for s in shards)
    assert not np.array_equal(shards[0]["encoder_input_tokens"], shards[1]["encoder_input_tokens"])
    with pytest.raises(ValueError, match="not divisible"):
        _batches(0, 1, shard_index=0, num_shards=3)
