import numpy as np
import pytest
import seqio

from it_jax.data import tasks
from it_jax.evaluation import heldout
from it_jax.evaluation.predictor import Predictor, encode
from it_jax.models import t5
from it_jax.models.spec import ModelSpec

CONFIG = t5.T5Config(vocab_size=384, d_model=32, d_ff=64, d_kv=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1)


def _examples(split):
    for i in range(6):
        yield {"x": f"item {i}", "answer": "even" if i % 2 == 0 else "odd"}


@pytest.fixture(scope="module")
def predictor():
    spec = ModelSpec.create(lambda rngs: t5.T5(CONFIG, rngs=rngs))
    return Predictor(spec=spec, params=spec.init_params(0), vocabulary=seqio.ByteVocabulary(),
                     input_length=32, target_length=8, batch_size=4)


def test_encode_truncates_and_appends_eos():
    rows = encode(seqio.ByteVocabulary(), ["abcdef", "a"], 4)
    np.testing.assert_array_equal(rows, [[100, 101, 102, 1], [100, 1, 0, 0]])


def test_rank_classification_picks_the_highest_scoring_option(predictor):
    inputs = ["is 2 even?", "is 3 even?", "pick one"]
    options = [["yes", "no"], ["yes", "no", "maybe"], ["a"]]
    predictions = predictor.rank_classify(inputs, options)
    for text, opts, chosen in zip(inputs, options, predictions):
        scores = predictor.score([text] * len(opts), opts)
        assert chosen == int(np.argmax(scores))
        assert np.all(scores < 0)


def test_generation_returns_text_and_is_deterministic(predictor):
    first = predictor.generate(["hello", "world"])
    assert first == predictor.generate(["hello", "world"])
    assert all(isinstance(t, str) for t in first)


def test_evaluate_tasks_covers_every_template(predictor):
    tasks.register_task(
        "test_eval_parity", source=_examples, cluster="test_eval",
        templates=[("Is {x} even or odd?\n{options_}", "{answer}"), ("{x}: parity?\n{options_}", "{answer}")],
        options=["even", "odd"],
    )
    tasks.register_task(
        "test_eval_echo", source=_examples, cluster="test_eval", templates=[("Repeat: {x}", "{x}")],
    )
    results = heldout.evaluate_tasks(predictor, ["test_eval_parity", "test_eval_echo"], max_examples=4)
    parity = results["test_eval_parity"]
    assert parity["scoring"] == "rank" and len(parity["templates"]) == 2
    assert all(t["num_examples"] == 4 for t in parity["templates"])
    assert all(s["prediction"] in ("even", "odd") for t in parity["templates"] for s in t["samples"])
    assert parity["mean"]["accuracy"] == pytest.approx(np.mean([t["metrics"]["accuracy"] for t in parity["templates"]]))
    assert results["test_eval_echo"]["scoring"] == "generate"
    assert "exact_match" in results["test_eval_echo"]["mean"]
