import math

import pytest

from it_jax.evaluation import metrics


def test_accuracy_is_exact_string_equality_in_percent():
    assert metrics.accuracy(["yes", "no", "yes", "no"], ["yes", "no", "no", "No"]) == {"accuracy": 50.0}


def test_exact_match_normalizes_case_punctuation_and_spaces():
    assert metrics.exact_match(["Hello, world", "a b"], ["hello world", "a  c"]) == {"exact_match": 50.0}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        metrics.accuracy(["a", "b"], ["a"])


def test_f1_is_macro_averaged_over_labels():
    # label a: tp=1, fp=1, fn=1 -> 0.5; label b: tp=1, fp=1, fn=1 -> 0.5
    assert metrics.f1(["a", "a", "b", "b"], ["a", "b", "b", "a"]) == {"f1": 50.0}


def test_squad_token_f1_gives_partial_credit():
    result = metrics.squad(["the big cat", "Paris"], ["big cat sat", "paris!"])
    assert result["exact_match"] == 50.0
    # "big cat sat" vs "the big cat": 2 common tokens, precision 2/3, recall 2/3 -> F1 2/3.
    assert result["f1"] == pytest.approx(100.0 * (2 / 3 + 1.0) / 2)


def test_bleu_is_100_for_identical_text_and_lower_otherwise():
    sentences = ["the cat sat on the mat today", "a quick brown fox jumps over it"]
    assert metrics.bleu(sentences, sentences)["bleu"] == pytest.approx(100.0)
    assert metrics.bleu(sentences, ["the cat sat on a mat", "a brown fox jumped"])["bleu"] < 60.0


def test_rouge_reports_three_measures():
    result = metrics.rouge(["the cat sat on the mat"], ["the cat sat on the mat"])
    assert result == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeLsum": 100.0})
    assert metrics.rouge(["the cat sat"], ["dogs run fast"])["rouge1"] == 0.0


# Multiple references: each target may be a list of every acceptable answer, the primary one first.


def test_string_and_single_reference_list_targets_agree():
    predictions = ["the big cat", "paris", "dogs run"]
    strings = ["the big cat sat", "Paris", "dogs run fast"]
    lists = [[t] for t in strings]
    for metric in (metrics.accuracy, metrics.exact_match, metrics.f1, metrics.squad, metrics.bleu, metrics.rouge):
        assert metric(lists, predictions) == pytest.approx(metric(strings, predictions)), metric.__name__


def test_exact_match_and_squad_take_the_best_reference():
    targets = [["Paris", "City of Light"], ["14 December 1972", "December 1972"]]
    assert metrics.exact_match(targets, ["city of LIGHT!", "december 1972"]) == {"exact_match": 100.0}
    result = metrics.squad(targets, ["City of Light", "in December 1972"])
    assert result["exact_match"] == 50.0
    # "in december 1972" vs "december 1972": precision 2/3, recall 1 -> 0.8; vs the first: 2/3 and 2/3.
    assert result["f1"] == pytest.approx(100.0 * (1.0 + 0.8) / 2)


def test_accuracy_and_f1_use_the_primary_reference():
    assert metrics.accuracy([["yes", "no"]], ["no"]) == {"accuracy": 0.0}
    assert metrics.f1([["a", "b"], ["b", "a"]], ["a", "b"]) == {"f1": 100.0}


def test_empty_reference_list_is_an_error():
    with pytest.raises(ValueError, match="empty list of references"):
        metrics.exact_match([[]], ["a"])


def test_bleu_is_100_when_the_prediction_equals_a_later_reference():
    targets = [["a dog runs in the park", "the cat sat on the mat today"], ["a quick brown fox jumps over it"]]
    predictions = ["the cat sat on the mat today", "a quick brown fox jumps over it"]
    assert metrics.bleu(targets, predictions)["bleu"] == pytest.approx(100.0)
    assert metrics.bleu([t[0] for t in targets], predictions)["bleu"] < 60.0


def test_bleu_with_variable_reference_counts_leaves_short_examples_alone():
    # A missing reference must not count as an empty one: "the cat" would be closest in length to an empty
    # reference, and the brevity penalty would vanish. A duplicated reference changes nothing.
    single = metrics.bleu(["the cat sat on the mat today", "a quick brown fox"], ["the cat", "a quick brown fox"])
    padded = metrics.bleu(
        [["the cat sat on the mat today"], ["a quick brown fox", "a quick brown fox"]], ["the cat", "a quick brown fox"]
    )
    assert padded == pytest.approx(single)


def test_adding_an_equally_long_reference_never_lowers_bleu():
    first = ["the cat sat on the mat", "a quick brown fox jumps"]
    second = ["a cat was on a mat", "the fast brown fox leaps"]
    for predictions in (["a cat sat on the mat", "the quick brown fox leaps"], ["the cat", "fox jumps over"]):
        one = metrics.bleu(first, predictions)["bleu"]
        two = metrics.bleu([[a, b] for a, b in zip(first, second)], predictions)["bleu"]
        assert two >= one
    assert metrics.bleu([[a, b] for a, b in zip(first, second)], ["a cat was on a mat", "a quick brown fox jumps"])[
        "bleu"
    ] == pytest.approx(100.0)


def test_rouge_takes_the_best_reference_per_example():
    targets = [["dogs run fast", "the cat sat on the mat"], ["a b c"]]
    result = metrics.rouge(targets, ["the cat sat on the mat", "a b c"])
    assert result == pytest.approx({"rouge1": 100.0, "rouge2": 100.0, "rougeLsum": 100.0})
    assert metrics.rouge([["dogs run fast", "the cat"]], ["the cat sat"])["rouge1"] == pytest.approx(80.0)


def test_pearson_and_spearman_on_hand_computed_values():
    gold = ["1", "2", "3", "4"]
    # Deviations (-1.5, .5, -.5, 1.5) and (-1.5, -.5, .5, 1.5): covariance sum 4, squares 5 and 5 -> r = 0.8.
    assert metrics.pearson(gold, ["1", "3", "2", "4"]) == pytest.approx({"pearson": 80.0})
    assert metrics.spearman(gold, ["1", "3", "2", "4"]) == pytest.approx({"spearman": 80.0})
    # Monotonic but not linear: Spearman 1; Pearson 14 / sqrt(50 * 5).
    assert metrics.spearman(gold, ["1", "2", "3", "10"]) == pytest.approx({"spearman": 100.0})
    assert metrics.pearson(gold, ["1", "2", "3", "10"]) == pytest.approx({"pearson": 100.0 * 14 / math.sqrt(250)})


def test_correlations_count_unparsable_predictions_as_zero_and_use_the_primary_reference():
    # x = (0, 2, 3), y = (1, 2, 3): covariance sum 3, squares 42/9 and 2 -> r = 9 / sqrt(84).
    expected = {"pearson": 100.0 * 9 / math.sqrt(84)}
    assert metrics.pearson([["1", "x"], "2", "3"], ["about one", "2", "3.0"]) == pytest.approx(expected)
    assert metrics.pearson(["1", "2", "3"], ["nan", "2", "3"]) == pytest.approx(expected)


@pytest.mark.filterwarnings("error")
def test_undefined_correlations_are_zero():
    assert metrics.pearson(["1", "2", "3"], ["3", "3", "3"]) == {"pearson": 0.0}
    assert metrics.spearman(["1", "2", "3"], ["no", "no", "no"]) == {"spearman": 0.0}
    assert metrics.spearman(["2", "2"], ["1", "3"]) == {"spearman": 0.0}
    assert metrics.pearson(["1"], ["1"]) == {"pearson": 0.0}


def test_correlation_targets_must_be_numbers():
    with pytest.raises(ValueError, match="pearson: target 'high' is not a number"):
        metrics.pearson(["high", "2"], ["1", "2"])
