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
