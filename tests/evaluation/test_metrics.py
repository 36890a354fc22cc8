import pytest

from it_jax.evaluation import metrics


def test_accuracy_is_exact_string_equality_in_percent():
    assert metrics.accuracy(["yes", "no", "yes", "no"], ["yes", "no", "no", "No"]) == {"accuracy": 50.0}


def test_exact_match_normalizes_case_punctuation_and_spaces():
    assert metrics.exact_match(["Hello, world", "a b"], ["hello world", "a  c"]) == {"exact_match": 50.0}


def test_length_mismatch_is_an_error():
    with pytest.raises(ValueError, match="2 targets but 1 predictions"):
        metrics.accuracy(["a", "b"], ["a"])
