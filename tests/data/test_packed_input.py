import itertools
import os
import time

import numpy as np
import pytest
import seqio
import tensorflow as tf

from it_jax.data import layout as layout_lib
import mixtures.synthetic as synthetic
from it_jax.data import packed_input, pipeline, vocab
from it_jax.data import tokenized as tokenized_lib
from it_jax.data.context import TaskContext

pytestmark = pytest.mark.usefixtures("synthetic_tasks")

LENGTHS = {"inputs": 128, "targets": 32}
MIXTURE = "synthetic_all"
LAYOUTS = {
    "encoder_decoder": layout_lib.ENCODER_DECODER,
    "prefix_lm": layout_lib.PREFIX_LM,
    "causal": layout_lib.causal_lm(None),
    "causal_bos": layout_lib.causal_lm(1),
}
SPIECE = os.path.join(
    os.path.dirname(__file__),
    "..",
    "..",
    "..",
    "shared",
    "data",
    "tokenizers",
    "t5",
    "spiece.model",
)


@pytest.fixture(scope="module")
def tokenized(synthetic_tasks):
    names, rates = packed_input.mixture_tasks(MIXTURE)
    return [tokenized_lib.tokenize_task(n, "train", vocab.make_vocabulary(), LENGTHS) for n in names], rates


def _source(tokenized, layout, pack=True, seed=0):
    """A `PackedInput` over the module's tokenized tasks (built once) with `layout`."""
    tasks, rates = tokenized
    source = packed_input.PackedInput.__new__(packed_input.PackedInput)
    source.tasks, source.store = tasks, packed_input.build_store(tasks, rates, layout)
    source.layout, source.pack, source.seed = layout, pack, seed
    if layout.decoder_only:
        source.length = LENGTHS["inputs"] + LENGTHS["targets"] + (layout.start_id is not None) - 1
        source.row_lengths = {"sequence": source.length}
    else:
        source.lengths = source.row_lengths = LENGTHS
    return source


def _seqio_rows(layout, examples, pack):
    """What seqio's converter (the pipeline's, unpacked) makes of each tokenized example alone, one row each."""

    def generate():
        for inputs, targets in examples:
            yield {
                "inputs": inputs.astype(np.int32),
                "targets": targets.astype(np.int32),
            }

    spec = tf.TensorSpec([None], tf.int32)
    ds = tf.data.Dataset.from_generator(generate, output_signature={"inputs": spec, "targets": spec})
    rows = list(pipeline.feature_converter(layout, pack=False)(ds, LENGTHS).as_numpy_iterator())
    if pack:  # the example alone in a packed row: one segment, positions from 0
        rows = [dict(row, **_alone(layout, row)) for row in rows]
    return rows


def _alone(layout, row):
    stacks = ["decoder"] if layout.decoder_only else ["encoder", "decoder"]
    extra = {}
    for stack in stacks:
        tokens = row[f"{stack}_target_tokens" if stack == "decoder" else "encoder_input_tokens"]
        width = int((tokens != 0).sum()) if stack == "encoder" else len(tokens) - int(np.argmax(tokens[::-1] != 0))
        extra[f"{stack}_segment_ids"] = (np.arange(len(tokens)) < width).astype(np.int32)
        extra[f"{stack}_positions"] = np.where(np.arange(len(tokens)) < width, np.arange(len(tokens)), 0).astype(
            np.int32
        )
    if not layout.decoder_only:  # within a packed segment the decoder inputs stop at the segment's end
        extra["decoder_input_tokens"] = row["decoder_input_tokens"] * extra["decoder_segment_ids"]
    return extra


@pytest.mark.parametrize("name", LAYOUTS)
@pytest.mark.parametrize("pack", [True, False])
def test_each_segment_has_the_features_seqio_gives_the_example_alone(tokenized, name, pack):
    source = _source(tokenized, LAYOUTS[name], pack)
    batch, rows = source.batch(7, range(6)), source.rows(7, range(6))
    assert max(len(r) for r in rows) > (1 if pack else 0)
    expected = iter(_seqio_rows(LAYOUTS[name], [source.example(i)[1:] for i in np.concatenate(rows)], pack))
    for r, ids in enumerate(rows):
        for s in range(1, len(ids) + 1):
            alone = next(expected)
            assert set(alone) == set(batch)
            for feature, value in alone.items():
                got = batch[feature][r]
                assert got.dtype == np.int32
                if not pack:
                    np.testing.assert_array_equal(got, value, err_msg=feature)
                    continue
                segments = batch[feature.split("_")[0] + "_segment_ids"][r]
                width = int((segments == s).sum())
                want = value[:width] * (s if feature.endswith("segment_ids") else 1)
                np.testing.assert_array_equal(got[segments == s], want, err_msg=feature)
                assert not value[width:].any(), feature


def _seqio_tokens(task_name, count):
    task = seqio.get_mixture_or_task(task_name)
    ds = task.get_dataset(LENGTHS, split="train", shuffle=False, use_cached=False)
    return [(e["inputs"], e["targets"]) for e in itertools.islice(ds.as_numpy_iterator(), count)]


def test_tokenization_equals_the_seqio_tasks(tokenized):
    tasks, _ = tokenized
    for task in tasks[:4]:
        for i, (inputs, targets) in enumerate(_seqio_tokens(task.name, 20)):
            (fi, oi), (ft, ot) = task.inputs, task.targets
            np.testing.assert_array_equal(fi[oi[i] : oi[i + 1]], inputs)
            np.testing.assert_array_equal(ft[ot[i] : ot[i + 1]], targets)


@pytest.mark.skipif(not os.path.isfile(SPIECE), reason="no T5 SentencePiece model in ../shared/data")
def test_sentencepiece_tokenization_equals_seqio():
    vocabulary = vocab.make_vocabulary(sentencepiece_model=SPIECE)
    synthetic.register(TaskContext(vocabulary))
    try:
        task = tokenized_lib.tokenize_task("synthetic_caesar_cipher", "train", vocabulary, LENGTHS)
        expected = _seqio_tokens("synthetic_caesar_cipher", 20)
    finally:
        synthetic.register(TaskContext())  # back to the module's byte vocabulary
    for i, (inputs, targets) in enumerate(expected):
        (fi, oi), (ft, ot) = task.inputs, task.targets
        np.testing.assert_array_equal(fi[oi[i] : oi[i + 1]], inputs)
        np.testing.assert_array_equal(ft[ot[i] : ot[i + 1]], targets)


def _same(a, b):
    assert a.keys() == b.keys()
    return all(np.array_equal(a[k], b[k]) for k in a)


def test_skipping_is_free_and_lands_on_the_uninterrupted_batch(tokenized, monkeypatch):
    tasks, rates = tokenized
    monkeypatch.setattr(packed_input, "mixture_tasks", lambda name: ([t.name for t in tasks], rates))
    monkeypatch.setattr(
        packed_input,
        "tokenize_task",
        lambda name, *a, **k: tasks[[t.name for t in tasks].index(name)],
    )
    kwargs = {
        "task_feature_lengths": LENGTHS,
        "layout": layout_lib.ENCODER_DECODER,
        "vocabulary": None,
        "batch_size": 8,
        "seed": 5,
    }
    straight = list(itertools.islice(packed_input.packed_batches(MIXTURE, **kwargs), 1000, 1003))
    resumed = packed_input.packed_batches(MIXTURE, skip_batches=1000, prefetch=2, **kwargs)
    for expected in straight:
        assert _same(expected, next(resumed))
    assert not _same(straight[0], straight[1])
    timings = []
    for skip in (0, 10_000_000):
        start = time.perf_counter()
        next(packed_input.packed_batches(MIXTURE, skip_batches=skip, **kwargs))
        timings.append(time.perf_counter() - start)
    assert timings[1] < 5 * timings[0] + 0.05


def test_host_shards_concatenate_to_the_global_batch(tokenized):
    for name in ("encoder_decoder", "prefix_lm"):
        source = _source(tokenized, LAYOUTS[name])
        whole = source.batch(3, range(8))
        halves = [source.batch(3, range(4)), source.batch(3, range(4, 8))]
        for feature in whole:
            np.testing.assert_array_equal(whole[feature], np.concatenate([h[feature] for h in halves]))
    with pytest.raises(ValueError, match="not divisible"):
        next(
            packed_input.packed_batches(
                MIXTURE,
                task_feature_lengths=LENGTHS,
                layout=layout_lib.ENCODER_DECODER,
                vocabulary=None,
                batch_size=8,
                num_shards=3,
            )
        )


def _shares(source, batches, rows=64):
    counts = np.zeros(len(source.store.task_names))
    base = source.store.task_base
    for b in range(batches):
        ids = np.concatenate(source.rows(b, range(rows)))
        counts += np.bincount(np.searchsorted(base, ids, side="right") - 1, minlength=len(counts))
    realized = counts / counts.sum()
    expected = np.diff(np.concatenate([[0], source.store.cumulative_shares]))
    return realized, expected


def test_task_shares_follow_the_mixture_rates(tokenized):
    realized, expected = _shares(_source(tokenized, layout_lib.ENCODER_DECODER, pack=False), 320)  # 20,480 examples
    deviation = np.abs(realized / expected - 1)
    print(f"unpacked: worst relative share deviation {deviation.max():.3f}")
    assert deviation.max() < 0.08
    realized, expected = _shares(_source(tokenized, layout_lib.ENCODER_DECODER), 200)
    deviation = np.abs(realized / expected - 1)
    print(f"packed: worst relative share deviation {deviation.max():.3f}")
    assert deviation.max() < 0.08  # packing loses only the example that would start the row after the last


def test_packing_fills_rows_far_better_than_padding(tokenized):
    fills = {}
    for pack in (True, False):
        batch = _source(tokenized, layout_lib.ENCODER_DECODER, pack).batch(0, range(256))
        fills[pack] = [float((batch[k] != 0).mean()) for k in ("encoder_input_tokens", "decoder_target_tokens")]
    print(f"fill (encoder, decoder): packed {fills[True]}, unpacked {fills[False]}")
    assert fills[True][0] > 1.3 * fills[False][0] and fills[True][1] > 1.3 * fills[False][1]
