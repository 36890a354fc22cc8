"""Training and evaluation ask the model the same question: for every architecture, the training loss of an
example (through the training pipeline's feature converter) equals minus the evaluator's score of the same
(input, target) (through the evaluator's seqio reading and the predictor's prompt layout)."""

import functools

import jax
import numpy as np
import pytest
import seqio

from it_jax.data.context import TaskContext
from it_jax.data import fewshot, layout, pipeline, tasks
from it_jax.evaluation.evaluator import EvalJob, Evaluator
from it_jax.evaluation.predictor import Predictor
from it_jax.models import decoder, t5
from it_jax.models.spec import ModelSpec
from it_jax.train import losses, trainer

VOCAB = seqio.ByteVocabulary()
LENGTHS = {"inputs": 40, "targets": 12}
T5_CONFIG = t5.T5Config(
    vocab_size=384, d_model=32, d_ff=64, d_kv=8, num_heads=2, num_encoder_layers=1, num_decoder_layers=1
)


def _decoder_config(prefix_lm: bool) -> decoder.DecoderConfig:
    return decoder.DecoderConfig(
        vocab_size=384, d_model=32, d_ff=64, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=16, prefix_lm=prefix_lm
    )


def _examples(split):
    # Eight examples (two full training batches of four) of varied lengths; one input and one target are
    # longer than their feature lengths (seqio truncates them).
    words = ["cat", "a dog", "the big red balloon", "x", "seven seas", "z" * 60, "on", "four more words here"]
    for n, word in enumerate(words):
        target = f"{word[::-1]}!" if n != 2 else "a rather long answer that is trimmed"
        yield {"q": f"{word} {n}", "answer": target}


def _register(name):
    return tasks.register_task(
        name,
        source=_examples,
        templates=[("Echo: {q}", "{answer}"), ("Reverse the words {q} please.", "-> {answer}")],
        cluster="test_li",
        context=TaskContext(VOCAB),
    )


@functools.cache
def _model(kind):
    """A tiny model, its parameters and its jitted training statistics (shared by the cases that use it)."""
    build = {
        "t5": lambda rngs: t5.T5(T5_CONFIG, rngs=rngs),
        "prefix_lm": lambda rngs: decoder.Decoder(_decoder_config(True), rngs=rngs),
        "causal": lambda rngs: decoder.Decoder(_decoder_config(False), rngs=rngs),
    }[kind]
    spec = ModelSpec.create(build)

    @jax.jit
    def statistics(params, batch):
        """Each row's summed token NLL, and the batch's `nll_sum` from the trainer's eval step."""
        logits = spec.bind(params).logits_from_features(batch)
        one_row = lambda l, t, w: losses.cross_entropy(l[None], t[None], w[None])[1]["nll_sum"]  # noqa: E731
        rows = jax.vmap(one_row)(logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"])
        return rows, trainer.eval_step(params, batch, spec=spec)["nll_sum"]

    return spec, spec.init_params(3), statistics


# case -> (model, the layout it is trained and evaluated with, a planted mismatch or None)
CASES = {
    "encoder_decoder": ("t5", layout.ENCODER_DECODER, None),
    # The prefix LM's start token and the EOS separating inputs from targets both matter.
    "prefix_lm": ("prefix_lm", layout.PREFIX_LM, layout.causal_lm(0)),
    "decoder_only_pad_start": ("causal", layout.causal_lm(0), layout.PREFIX_LM),  # keeps the inputs' EOS
    "decoder_only_bos": ("causal", layout.causal_lm(2), layout.causal_lm(0)),  # the wrong start token
}


def _training_nll(statistics, params, name, prompt_layout):
    """Per-example summed token NLL over the training pipeline's (unpacked) batches, in split order, and
    each batch's `nll_sum` from the trainer's eval step."""
    per_example, batch_totals = [], []
    for batch in pipeline.host_batches(
        name,
        task_feature_lengths=LENGTHS,
        layout=prompt_layout,
        batch_size=4,
        split="validation",
        pack=False,
        shuffle=False,
        repeat=False,
    ):
        rows, total = statistics(params, batch)
        per_example.extend(np.asarray(rows).tolist())
        batch_totals.append(float(total))
    return np.asarray(per_example), np.asarray(batch_totals)


@pytest.mark.parametrize("case", sorted(CASES))
def test_training_loss_equals_evaluator_score(case):
    kind, prompt_layout, mismatch = CASES[case]
    info = _register(f"test_li_{case}")
    spec, params, statistics = _model(kind)
    template = 1

    train_nll, batch_totals = _training_nll(statistics, params, info.template_task_name(template), prompt_layout)
    assert len(train_nll) == 8 and len(batch_totals) == 2

    predictor = Predictor(spec, params, prompt_layout, VOCAB.eos_id, batch_size=8)
    evaluator = Evaluator(predictor, VOCAB, LENGTHS)
    examples = evaluator.examples(EvalJob(info, fewshot.ZERO_SHOT), template)
    assert [int(ex["idx"]) for ex in examples] == list(range(len(train_nll)))
    inputs = [ex["inputs"].tolist() for ex in examples]
    targets = [ex["targets"].tolist() for ex in examples]
    # Truncation happened as in training: the long input and the long target end in EOS at their limits.
    assert max(len(i) for i in inputs) == LENGTHS["inputs"] and max(len(t) for t in targets) == LENGTHS["targets"]
    assert all(i[-1] == VOCAB.eos_id for i in inputs) and all(t[-1] == VOCAB.eos_id for t in targets)

    scores = predictor.score(inputs, targets)
    assert np.all(np.isfinite(scores)) and np.all(scores < 0)
    np.testing.assert_allclose(-scores, train_nll, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(-scores.sum(), batch_totals.sum(), rtol=1e-5, atol=1e-3)

    if mismatch is not None:
        # The same model asked in another format scores differently: the identity above can fail.
        predictor.layout = mismatch
        wrong = predictor.score(inputs, targets)
        assert np.max(np.abs(wrong + train_nll)) > 0.03, "a different prompt layout scored the same"


def _colour_examples(split):
    # 2 + 3 + 3 + 4 = 12 (example, option) pairs: three full training batches of four.
    options = [["yes", "no"], ["red", "green", "light blue"], ["a", "bb", "ccc"], ["one", "two", "three", "four"]]
    for n, opts in enumerate(options):
        yield {"thing": f"thing number {n}", "options": opts, "answer": opts[n % len(opts)]}


@pytest.mark.parametrize("case", sorted(CASES))
def test_rank_classification_scores_equal_the_training_loss_of_the_scoring_task(case):
    """The evaluator's option scores (options tokenized by the predictor) are minus the training loss of the
    seqio rank-classification task's (input, option) examples (options tokenized by seqio)."""
    kind, prompt_layout, _ = CASES[case]
    info = tasks.register_task(
        f"test_li_rank_{case}",
        source=_colour_examples,
        templates=[("Which one fits {thing}?\n{options_}", "{answer}")],
        cluster="test_li",
        options=(),
        context=TaskContext(VOCAB),
    )
    spec, params, statistics = _model(kind)
    train_nll, _ = _training_nll(statistics, params, info.scoring_task_name, prompt_layout)
    assert len(train_nll) == 12

    predictor = Predictor(spec, params, prompt_layout, VOCAB.eos_id, batch_size=8)
    result, predictions = Evaluator(predictor, VOCAB, LENGTHS).evaluate_template(EvalJob(info, fewshot.ZERO_SHOT), 0)
    option_scores = np.concatenate([p.option_scores for p in predictions])
    np.testing.assert_allclose(option_scores, -train_nll, rtol=1e-5, atol=1e-4)
    for p in predictions:
        assert p.prediction == p.options[int(np.argmax(p.option_scores))]
    correct = sum(p.prediction == p.targets[0] for p in predictions)
    assert result.metrics == {"accuracy": 100.0 * correct / 4}


def test_training_rows_read_the_layout_prompt():
    """The predictor's prompt is exactly what the training row reads before its first scored token."""
    info = _register("test_li_prompt_rows")
    evaluator = Evaluator(None, VOCAB, LENGTHS)  # reading examples needs no predictor
    examples = evaluator.examples(EvalJob(info, fewshot.ZERO_SHOT), 0)
    for prompt_layout in (layout.PREFIX_LM, layout.causal_lm(0), layout.causal_lm(2)):
        (batch,) = pipeline.host_batches(
            info.template_task_name(0),
            task_feature_lengths=LENGTHS,
            layout=prompt_layout,
            batch_size=len(examples),
            split="validation",
            pack=False,
            shuffle=False,
            repeat=False,
        )
        for row, ex in enumerate(examples):
            prompt = prompt_layout.prompt(ex["inputs"].tolist())
            weights = batch["decoder_loss_weights"][row]
            first = int(np.argmax(weights))
            assert first == len(prompt) - 1
            assert batch["decoder_input_tokens"][row, : first + 1].tolist() == prompt
            assert batch["decoder_target_tokens"][row][weights > 0].tolist() == ex["targets"].tolist()

