"""Metric functions in SeqIO's shape: `metric(targets, predictions) -> {name: value}` (values in percent)."""

from __future__ import annotations

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


def _check_lengths(targets: Sequence[str], predictions: Sequence[str]) -> None:
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions")
