"""Baselines of one evaluated template, computed from its examples: chance and majority class.

- chance (rank classification only): the expected accuracy of picking one of an example's options uniformly at
  random, i.e. the mean over examples of 1 / number of options (percent); None for generation tasks.
- majority: the task's primary metric scored for the best constant answer. For classification with the same
  options in every example that is the most frequent gold answer (its share of the examples, for accuracy);
  where each example has its own options (e.g. "which word is longer?") a constant string is rarely among them,
  so the constant is a position (always the first option, always the second ...); for generation tasks it is
  the reference shared by the most examples.

A model is only convincing where it beats the stronger of the two (`stronger`).
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping, Sequence

from it_jax.evaluation.results import Prediction

MetricFn = Callable[[Sequence[Sequence[str]], Sequence[str]], Mapping[str, float]]


def chance(predictions: Sequence[Prediction]) -> float | None:
    """Percent expected from a uniformly random option; None without predictions or options (generation)."""
    if not predictions or any(not p.options for p in predictions):
        return None
    return 100.0 * sum(1.0 / len(p.options) for p in predictions) / len(predictions)


def constant_answers(predictions: Sequence[Prediction]) -> list[list[str]]:
    """The constant-answer strategies of `majority`, each as one answer per example."""
    if not predictions:
        return []
    if all(p.options for p in predictions):
        if all(p.options == predictions[0].options for p in predictions):
            return [[option] * len(predictions) for option in predictions[0].options]
        positions = min(len(p.options) for p in predictions)
        return [[p.options[k] for p in predictions] for k in range(positions)]
    counts = collections.Counter(r for p in predictions for r in dict.fromkeys(p.targets))
    if not counts:
        return []
    most_common, _ = counts.most_common(1)[0]
    return [[most_common] * len(predictions)]


def majority(predictions: Sequence[Prediction], metric: MetricFn, name: str) -> float | None:
    """The best score (metric `name` of `metric`) of a constant answer; None without predictions."""
    targets = [p.targets for p in predictions]
    scores = [metric(targets, answers)[name] for answers in constant_answers(predictions)]
    return max(scores) if scores else None


def stronger(chance_score: float | None, majority_score: float | None) -> float | None:
    """The higher of the two baselines (either may be missing)."""
    known = [s for s in (chance_score, majority_score) if s is not None]
    return max(known) if known else None
