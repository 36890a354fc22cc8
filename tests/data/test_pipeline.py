import numpy as np
import pytest

from it_jax.data import layout, pipeline

pytestmark = pytest.mark.usefixtures("synthetic_tasks")


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


@pytest.mark.parametrize("prompt_layout", [layout.ENCODER_DECODER, layout.PREFIX_LM, layout.causal_lm(2)])
@pytest.mark.parametrize("pack", [True, False])
def test_batch_shapes_are_those_of_the_batches(prompt_layout, pack):
    """The shapes the train step compiles for ahead of time are exactly the pipeline's (else it recompiles)."""
    lengths = {"inputs": 32, "targets": 8}
    batch = next(
        pipeline.host_batches(
            "synthetic_addition", task_feature_lengths=lengths, layout=prompt_layout, batch_size=4, pack=pack, seed=1
        )
    )
    expected = pipeline.batch_shapes(prompt_layout, task_feature_lengths=lengths, batch_size=4, pack=pack)
    assert {name: value.shape for name, value in batch.items()} == expected
    assert all(value.dtype == np.int32 for value in batch.values())
