"""Metric functions in SeqIO's shape: `metric(targets, predictions) -> {name: value}` (values in percent).

Each target is either a string or a sequence of strings: every acceptable reference of that example, the
primary one first (the `references` feature of `it_jax.data.tasks`). Metrics that compare against one
label (accuracy, macro F1, correlations) use the primary reference; exact match, SQuAD EM/F1, BLEU and
ROUGE credit a prediction with its best reference.
"""

from __future__ import annotations

import collections
import math
import string
from collections.abc import Callable, Mapping, Sequence

Target = str | Sequence[str]


def _references(target: Target) -> list[str]:
    """Every reference of one example, primary first; a string (or bytes) is its own single reference."""
    if isinstance(target, (str, bytes)):
        target = [target]
    references = [r.decode("utf-8") if isinstance(r, bytes) else str(r) for r in target]
    if not references:
        raise ValueError("an example has an empty list of references")
    return references


def _primary(target: Target) -> str:
    return _references(target)[0]


def _normalize(text: str) -> str:
    """Lower-cased, punctuation-free, whitespace-collapsed text (the SQuAD normalization, minus articles)."""
    text = text.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(text.split())


def accuracy(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Percentage of predictions equal to their (primary) target string."""
    _check_lengths(targets, predictions)
    correct = sum(_primary(t) == p for t, p in zip(targets, predictions))
    return {"accuracy": 100.0 * correct / max(len(targets), 1)}


def _exact(target: Target, prediction: str) -> float:
    return float(any(_normalize(r) == _normalize(prediction) for r in _references(target)))


def exact_match(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Percentage of predictions equal to any reference after normalizing case, punctuation and spaces."""
    _check_lengths(targets, predictions)
    return {"exact_match": 100.0 * sum(map(_exact, targets, predictions)) / max(len(targets), 1)}


def f1(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Macro-averaged F1 over the label strings that occur among the (primary) targets (percent)."""
    _check_lengths(targets, predictions)
    labels = [_primary(t) for t in targets]
    scores = []
    for label in sorted(set(labels)):
        tp = sum(t == label and p == label for t, p in zip(labels, predictions))
        fp = sum(t != label and p == label for t, p in zip(labels, predictions))
        fn = sum(t == label and p != label for t, p in zip(labels, predictions))
        scores.append(2 * tp / max(2 * tp + fp + fn, 1))
    return {"f1": 100.0 * sum(scores) / max(len(scores), 1)}


def _token_f1(reference: str, prediction: str) -> float:
    reference_tokens, predicted_tokens = _normalize(reference).split(), _normalize(prediction).split()
    common = collections.Counter(reference_tokens) & collections.Counter(predicted_tokens)
    overlap = sum(common.values())
    if not reference_tokens or not predicted_tokens:
        return float(reference_tokens == predicted_tokens)
    if not overlap:
        return 0.0
    precision, recall = overlap / len(predicted_tokens), overlap / len(reference_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """SQuAD's exact match and token-overlap F1 after normalization, each the best over the references."""
    _check_lengths(targets, predictions)
    n = max(len(targets), 1)
    best_f1 = (max(_token_f1(r, p) for r in _references(t)) for t, p in zip(targets, predictions))
    return {"exact_match": exact_match(targets, predictions)["exact_match"], "f1": 100.0 * sum(best_f1) / n}


def bleu(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Corpus BLEU with sacrebleu's defaults (13a tokenization, exponential smoothing) over all references.

    sacrebleu takes one stream per reference position; an example with fewer references than the widest
    one is padded with None, which sacrebleu 2.6 drops (`_cache_references`; an empty string would instead
    count as a reference of length 0). An added reference never removes n-gram matches, but it can lower the
    score through the brevity penalty, which uses the reference length closest to the prediction's.
    """
    import sacrebleu

    _check_lengths(targets, predictions)
    if not targets:
        return {"bleu": 0.0}
    references = [_references(t) for t in targets]
    width = max(len(r) for r in references)
    streams = [[r[i] if i < len(r) else None for r in references] for i in range(width)]
    return {"bleu": sacrebleu.corpus_bleu(list(predictions), streams).score}


def rouge(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Mean ROUGE-1, ROUGE-2 and ROUGE-Lsum F-measures (rouge-score, with stemming; percent), each example
    scored against its best reference per measure (`RougeScorer.score_multi`)."""
    from rouge_score import rouge_scorer, scoring

    _check_lengths(targets, predictions)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    aggregator = scoring.BootstrapAggregator()
    for target, prediction in zip(targets, predictions):
        aggregator.add_scores(scorer.score_multi(_references(target), prediction))
    result = aggregator.aggregate()
    return {name: 100.0 * result[name].mid.fmeasure for name in ("rouge1", "rouge2", "rougeLsum")}


def rouge_l(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Mean ROUGE-L F-measure (rouge-score, with stemming; percent), each example scored against its best
    reference, as Super-NaturalInstructions reports it."""
    from rouge_score import rouge_scorer

    _check_lengths(targets, predictions)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    best = [max(scorer.score(r, p)["rougeL"].fmeasure for r in _references(t)) for t, p in zip(targets, predictions)]
    return {"rougeL": 100.0 * sum(best) / max(len(best), 1)}


def _as_number(prediction: str) -> float:
    """The prediction as a float; text that is not a finite number counts as 0."""
    try:
        value = float(prediction)
    except (TypeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def _correlation(name: str, statistic: Callable, targets: Sequence[Target], predictions: Sequence[str]) -> dict:
    _check_lengths(targets, predictions)
    gold = []
    for target in targets:
        try:
            gold.append(float(_primary(target)))
        except ValueError:
            raise ValueError(f"{name}: target {_primary(target)!r} is not a number") from None
    predicted = [_as_number(p) for p in predictions]
    if len(set(gold)) < 2 or len(set(predicted)) < 2:
        return {name: 0.0}
    return {name: 100.0 * float(statistic(predicted, gold).statistic)}


def pearson(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Pearson correlation (times 100) of the predicted numbers with the (primary) target numbers, as FLAN
    reports STS-B. Predictions that are not a finite number count as 0; when either side is constant (or
    there are fewer than two examples) the correlation is undefined (NaN in scipy) and 0.0 is returned."""
    from scipy import stats

    return _correlation("pearson", stats.pearsonr, targets, predictions)


def spearman(targets: Sequence[Target], predictions: Sequence[str]) -> Mapping[str, float]:
    """Spearman rank correlation (times 100), with `pearson`'s parsing and its 0.0 for undefined cases."""
    from scipy import stats

    return _correlation("spearman", stats.spearmanr, targets, predictions)


def _check_lengths(targets: Sequence[Target], predictions: Sequence[str]) -> None:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
