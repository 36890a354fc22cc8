"""Evaluation during training, every few steps: the loss on fixed batches, task metrics, or both.

Two modes of one evaluation (the trainer runs `PeriodicEval.run` every few steps through
`it_jax.train.hooks.Evaluate`):
- loss: `eval/loss` and `eval/accuracy` (per token) over the same batches every time (read once and kept),
  so the numbers are comparable along the run and can rank checkpoints; given each task's batches apart,
  also `eval/<task>/loss` and `eval/<task>/accuracy`;
- metrics: the evaluator's full metrics (rank classification, generation) on the first examples of chosen
  tasks, logged as `eval/<task>/<variant>/<metric>` (mean over templates) and `eval/mean_template`.
`metric_names` lists what a configuration will log, without a model (to check `best_metric` up front).
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from it_jax.data import pipeline
from it_jax.evaluation import evaluator as evaluator_lib
from it_jax.evaluation.evaluator import EvalJob, Evaluator
from it_jax.evaluation.results import EvalResults

PREFIX = "eval/"
LOSS_METRICS = ("loss", "accuracy", "tokens")
TASK_LOSS_METRICS = ("loss", "accuracy")
HostBatch = Mapping[str, np.ndarray]
BatchesFn = Callable[[], Iterator[HostBatch]]
EvalFn = Callable[[Any, HostBatch], Mapping[str, Any]]


def flatten_results(results: EvalResults) -> dict[str, float]:
    """`eval/<task>/<variant>/<metric>` (mean over templates) for every metric, and `eval/mean_template`:
    the mean over tasks of their primary metric's mean over templates."""
    flat = {}
    for task in results.tasks:
        for metric, value in task.mean.items():
            flat[f"{PREFIX}{task.task}/{task.variant}/{metric}"] = value
    if results.tasks:
        means = [t.mean[t.primary_metric] for t in results.tasks]
        flat[f"{PREFIX}mean_template"] = sum(means) / len(means)
    return flat


def metric_names(*, loss: bool, jobs: Sequence[EvalJob], loss_tasks: Sequence[str] = ()) -> list[str]:
    """The names `PeriodicEval.run` logs with the loss mode on (`loss`, per task for `loss_tasks`) and the
    metrics mode over `jobs`.

    A task's metric names come from calling each of its metric functions on one made-up example; a metric
    function that cannot score it contributes the pattern `eval/<task>/<variant>/*`.
    """
    names = [f"{PREFIX}{name}" for name in LOSS_METRICS] if loss else []
    names += [f"{PREFIX}{task}/{name}" for task in loss_tasks for name in TASK_LOSS_METRICS] if loss else []
    for job in jobs:
        task_prefix = f"{PREFIX}{job.info.name}/{job.variant.name}/"
        for metric in evaluator_lib._metrics(job.info):
            try:
                names += [task_prefix + name for name in metric([["0"]], ["0"])]
            except Exception:  # a metric this probe cannot feed: accept any name under the task
                names.append(task_prefix + "*")
    if jobs:
        names.append(f"{PREFIX}mean_template")
    return list(dict.fromkeys(names))


@dataclasses.dataclass
class TaskMetrics:
    """The metrics mode: evaluates `jobs` with `evaluator` (its predictor's parameters replaced)."""

    evaluator: Evaluator
    jobs: Sequence[EvalJob]

    def __call__(self, params: Any) -> dict[str, float]:
        self.evaluator.predictor.params = params
        with pipeline.data_errors():
            return flatten_results(self.evaluator.evaluate(self.jobs))


class PeriodicEval:
    """The loss mode's metrics over `num_batches` batches (when `batches` is given) and the metrics mode's
    (when `task_metrics` is given); the trainer calls `run` every few steps (see `it_jax.train.hooks.Evaluate`).

    Args:
      evaluate: `(params, host batch[, reference]) -> summed statistics` of one batch (e.g.
        `Trainer.eval_host_batch`); the reference parameters are passed when `run` is given them.
      batches: a fresh iterator of this host's eval batches, or one such function per task (each task's loss
        and token accuracy are then logged too, and the overall ones pool every task's batches), or None.
      num_batches: how many batches make up the loss mode's eval set (per task, given tasks).
      task_metrics: `params -> {name: value}`, e.g. `TaskMetrics`, or None.
      summarize: summed statistics -> the logged values (`Objective.metrics`, e.g. a DPO objective's), or
        None: cross-entropy's `loss`, `accuracy` and `tokens` (per task: `loss` and `accuracy`).
    """

    def __init__(
        self,
        *,
        evaluate: EvalFn,
        batches: BatchesFn | Mapping[str, BatchesFn] | None,
        num_batches: int,
        task_metrics: Callable[[Any], dict[str, float]] | None = None,
        summarize: Callable[[Mapping[str, float]], dict[str, float]] | None = None,
    ):
        if num_batches < 1:
            raise ValueError(f"num_batches must be positive, got {num_batches}")
        if not batches and task_metrics is None:
            raise ValueError("periodic evaluation needs eval batches (loss), task metrics, or both")
        self.evaluate = evaluate
        self.batches = batches
        self.num_batches = num_batches
        self.task_metrics = task_metrics
        self.summarize = summarize
        self._host_batches: dict[str | None, list[HostBatch]] | None = None

    def _eval_sets(self) -> dict[str | None, list[Mapping[str, np.ndarray]]]:
        """The kept eval batches, by task (None: one set for all), read on first use."""
        if self._host_batches is None:
            sources = self.batches if isinstance(self.batches, Mapping) else {None: self.batches}
            self._host_batches = {name: _first_batches(fn, self.num_batches, name) for name, fn in sources.items()}
        return self._host_batches

    def _totals(
        self, params: Any, host_batches: Sequence[Mapping[str, np.ndarray]], reference: Any
    ) -> dict[str, float]:
        totals = None
        for host_batch in host_batches:
            stats = self.evaluate(params, host_batch) if reference is None else self.evaluate(
                params, host_batch, reference
            )
            totals = stats if totals is None else jax.tree.map(lambda a, b: a + b, totals, stats)
        return {k: float(v) for k, v in totals.items()}

    def _loss(self, params: Any, reference: Any) -> dict[str, float]:
        metrics, pooled = {}, collections.Counter()
        for name, host_batches in self._eval_sets().items():
            totals = self._totals(params, host_batches, reference)
            pooled.update(totals)
            if name is not None:
                metrics.update(self._summary(totals, f"{PREFIX}{name}/", TASK_LOSS_METRICS))
        return {**self._summary(pooled, PREFIX, LOSS_METRICS), **metrics}

    def _summary(self, totals: Mapping[str, float], prefix: str, names: Sequence[str]) -> dict[str, float]:
        if self.summarize is None:
            return _loss_metrics(totals, prefix, names)
        return {f"{prefix}{name}": value for name, value in self.summarize(totals).items()}

    def run(self, params: Any, reference: Any = None) -> dict[str, float]:
        """The eval metrics of `params`: `eval/loss` (mean token NLL), `eval/accuracy`, `eval/tokens` (and
        `eval/<task>/loss`, `eval/<task>/accuracy`) in the loss mode; the task metrics in the metrics mode.
        `reference`: frozen reference parameters, passed on to `evaluate` (for an objective that needs them)."""
        metrics = self._loss(params, reference) if self.batches else {}
        if self.task_metrics is not None:
            metrics.update(self.task_metrics(params))
        return metrics


def _first_batches(batches: BatchesFn, count: int, task: str | None) -> list[Mapping[str, np.ndarray]]:
    """The first `count` batches of a fresh iterator (closed afterwards); raises if there are none."""
    iterator = batches()
    kept = list(itertools.islice(iterator, count))
    close = getattr(iterator, "close", None)
    if close is not None:
        close()
    if not kept:
        raise ValueError("the eval input produced no batches" + (f" for task {task!r}" if task else ""))
    return kept


def _loss_metrics(totals: Mapping[str, float], prefix: str, names: Sequence[str]) -> dict[str, float]:
    """Of summed eval statistics, those of `names` among `loss` (mean token NLL), `accuracy` (per token) and
    `tokens`, each under `prefix`."""
    tokens = max(totals["tokens"], 1.0)
    values = {"loss": totals["nll_sum"] / tokens, "accuracy": totals["correct"] / tokens, "tokens": totals["tokens"]}
    return {f"{prefix}{name}": values[name] for name in names}
