"""Metric functions in SeqIO's shape: `metric(targets, predictions) -> {name: value}` (values in percent)."""

from __future__ import annotations

import collections
import string
from collections.abc import Mapping, Sequence


def _normalize(text: str) -> str:
    """Lower-cased, punctuation-free, whitespace-collapsed text (the SQuAD normalization, minus articles)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def accuracy(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """Percentage of predictions equal to their target string."""
    _check_lengths(targets, predictions)
    correct = sum(t == p for t, p in zip(targets, predictions))
    return {"accuracy": 100.0 * correct / max(len(targets), 1)}


def exact_match(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """Percentage of predictions equal to their target after normalizing case, punctuation and spaces."""
    _check_lengths(targets, predictions)
    correct = sum(_normalize(t) == _normalize(p) for t, p in zip(targets, predictions))
    return {"exact_match": 100.0 * correct / max(len(targets), 1)}


def f1(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """Macro-averaged F1 over the label strings that occur among the targets (percent)."""
    _check_lengths(targets, predictions)
    scores = []
    for label in sorted(set(targets)):
        tp = sum(t == label and p == label for t, p in zip(targets, predictions))
        fp = sum(t != label and p == label for t, p in zip(targets, predictions))
        fn = sum(t == label and p != label for t, p in zip(targets, predictions))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return {"f1": 100.0 * sum(scores) / max(len(scores), 1)}


def _token_f1(target: str, prediction: str) -> float:
    target_tokens, predicted_tokens = _normalize(target).split(), _normalize(prediction).split()
    common = collections.Counter(target_tokens) & collections.Counter(predicted_tokens)
    overlap = sum(common.values())
    if not target_tokens or not predicted_tokens:
        return float(target_tokens == predicted_tokens)
    if not overlap:
        return 0.0
    precision, recall = overlap / len(predicted_tokens), overlap / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """SQuAD's exact match and token-overlap F1 after normalization (percent)."""
    _check_lengths(targets, predictions)
    n = max(len(targets), 1)
    return {
        "exact_match": exact_match(targets, predictions)["exact_match"],
        "f1": 100.0 * sum(_token_f1(t, p) for t, p in zip(targets, predictions)) / n,
    }


def bleu(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """Corpus BLEU with sacrebleu's defaults (13a tokenization, exponential smoothing)."""
    import sacrebleu

    _check_lengths(targets, predictions)
    return {"bleu": sacrebleu.corpus_bleu(list(predictions), [list(targets)]).score}


def rouge(targets: Sequence[str], predictions: Sequence[str]) -> Mapping[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures (rouge-score, with stemming; percent)."""
    from rouge_score import rouge_scorer, scoring

    _check_lengths(targets, predictions)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    aggregator = scoring.BootstrapAggregator()
    for target, prediction in zip(targets, predictions):
        aggregator.add_scores(scorer.score(target, prediction))
    result = aggregator.aggregate()
    return {name: 100.0 * result[name].mid.fmeasure for name in ("rouge1", "rouge2", "rougeLsum")}


def _check_lengths(targets: Sequence[str], predictions: Sequence[str]) -> None:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
