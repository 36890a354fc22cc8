"""Chance and majority-class baselines from hand-made predictions."""

import pytest

from it_jax.evaluation import baselines, metrics
from it_jax.evaluation.results import Prediction

YES_NO_MAYBE = ["yes", "no", "maybe"]


def _classified(answers, options=YES_NO_MAYBE):
    return [Prediction(i, f"q{i}", [a], options[0], list(options)) for i, a in enumerate(answers)]


def test_chance_is_the_mean_inverse_number_of_options():
    assert baselines.chance(_classified(["yes", "no"])) == pytest.approx(100.0 / 3)
    mixed = [Prediction(0, "q", ["a"], "a", ["a", "b"]), Prediction(1, "q", ["c"], "c", ["a", "b", "c", "d"])]
    assert baselines.chance(mixed) == pytest.approx(100.0 * (1 / 2 + 1 / 4) / 2)


def test_no_chance_for_generation_or_nothing():
    generated = [Prediction(0, "q", ["42"], "41")]
    assert baselines.chance(generated) is None
    assert baselines.chance([]) is None and baselines.majority([], metrics.accuracy, "accuracy") is None


def test_majority_with_static_options_is_the_most_frequent_gold_answer():
    predictions = _classified(["no", "no", "yes", "no", "maybe"])
    assert baselines.majority(predictions, metrics.accuracy, "accuracy") == pytest.approx(60.0)
    # An option no example has as its answer still counts as a (losing) constant answer.
    assert baselines.majority(_classified(["yes"] * 4), metrics.accuracy, "accuracy") == pytest.approx(100.0)


def test_majority_with_per_example_options_is_the_best_constant_position():
    # The gold option is first in 3 of 4 examples; as strings, every gold answer occurs once.
    options = [["12", "7"], ["3", "90"], ["55", "4"], ["8", "61"]]
    golds = ["12", "90", "55", "8"]
    predictions = [Prediction(i, "q", [g], o[0], o) for i, (g, o) in enumerate(zip(golds, options))]
    assert baselines.majority(predictions, metrics.accuracy, "accuracy") == pytest.approx(75.0)


def test_majority_of_generation_is_the_reference_most_examples_share():
    predictions = [
        Prediction(0, "q", ["7", "seven"], ""),
        Prediction(1, "q", ["7"], ""),
        Prediction(2, "q", ["8"], ""),
        Prediction(3, "q", ["seven", "7"], ""),
    ]
    assert baselines.majority(predictions, metrics.exact_match, "exact_match") == pytest.approx(75.0)


def test_majority_is_scored_with_the_tasks_metric():
    predictions = _classified(["yes", "yes", "yes", "no"], options=["yes", "no"])
    # Macro F1 over the labels present: always "yes" scores F1 6/7 on "yes" and 0 on "no".
    assert baselines.majority(predictions, metrics.f1, "f1") == pytest.approx(100.0 * (6 / 7) / 2)


def test_stronger_baseline():
    assert baselines.stronger(33.3, 40.0) == 40.0
    assert baselines.stronger(None, 12.0) == 12.0
    assert baselines.stronger(None, None) is None
