"""Evaluation during training, every few steps: the loss on fixed batches, task metrics, or both.

Two modes of one hook (the trainer calls `due` and `run`, see `it_jax.train.trainer.EvaluationHook`):
- loss: `eval/loss` and `eval/accuracy` (per token) over the same batches every time (read once and kept),
  so the numbers are comparable along the run and can rank checkpoints;
- metrics: the evaluator's full metrics (rank classification, generation) on the first examples of chosen
  tasks, logged as `eval/<task>/<variant>/<metric>` (mean over templates) and `eval/mean_template`.
`metric_names` lists what a configuration will log, without a model (to check `best_metric` up front).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

from it_jax.data import pipeline
from it_jax.evaluation import evaluator as evaluator_lib
from it_jax.evaluation.evaluator import EvalJob, Evaluator
from it_jax.evaluation.results import EvalResults

if TYPE_CHECKING:
    from it_jax.train.trainer import Trainer

PREFIX = "eval/"
LOSS_METRICS = ("loss", "accuracy", "tokens")


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


def metric_names(*, loss: bool, jobs: Sequence[EvalJob]) -> list[str]:
    """The names `PeriodicEval.run` logs with the loss mode on (`loss`) and the metrics mode over `jobs`.

    A task's metric names come from calling each of its metric functions on one made-up example; a metric
    function that cannot score it contributes the pattern `eval/<task>/<variant>/*`.
    """
    names = [f"{PREFIX}{name}" for name in LOSS_METRICS] if loss else []
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
    """Every `every` steps (and at the last step): the loss mode's metrics over `num_batches` batches
    (when `batches` is given) and the metrics mode's (when `task_metrics` is given).

    Args:
      trainer: provides the jitted eval step and the data sharding.
      batches: a fresh iterator of this host's eval batches (the first `num_batches` are used), or None.
      num_batches: how many batches make up the loss mode's eval set.
      every: the interval in steps.
      task_metrics: `params -> {name: value}`, e.g. `TaskMetrics`, or None.
    """

    def __init__(
        self,
        *,
        trainer: Trainer,
        batches: Callable[[], Iterator[Mapping[str, np.ndarray]]] | None,
        num_batches: int,
        every: int,
        task_metrics: Callable[[Any], dict[str, float]] | None = None,
    ):
        if every < 1 or num_batches < 1:
            raise ValueError(f"every and num_batches must be positive, got {every} and {num_batches}")
        if batches is None and task_metrics is None:
            raise ValueError("periodic evaluation needs eval batches (loss), task metrics, or both")
        self.trainer = trainer
        self.batches = batches
        self.num_batches = num_batches
        self.every = every
        self.task_metrics = task_metrics
        self._host_batches: list[Mapping[str, np.ndarray]] | None = None

    def due(self, step: int, *, num_steps: int) -> bool:
        return step % self.every == 0 or step == num_steps

    def _eval_set(self) -> list[Mapping[str, np.ndarray]]:
        if self._host_batches is None:
            iterator = self.batches()
            self._host_batches = list(itertools.islice(iterator, self.num_batches))
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
            if not self._host_batches:
                raise ValueError("the eval input produced no batches")
        return self._host_batches

    def _loss(self, params: Any) -> dict[str, float]:
        totals = None
        for host_batch in self._eval_set():
            stats = self.trainer.eval(params, self.trainer.to_global(host_batch))
            totals = stats if totals is None else jax.tree.map(lambda a, b: a + b, totals, stats)
        totals = {k: float(v) for k, v in totals.items()}
        tokens = max(totals["tokens"], 1.0)
        loss, accuracy, count = (f"{PREFIX}{name}" for name in LOSS_METRICS)
        return {loss: totals["nll_sum"] / tokens, accuracy: totals["correct"] / tokens, count: totals["tokens"]}

    def run(self, params: Any) -> dict[str, float]:
        """The eval metrics of `params`: `eval/loss` (mean token NLL), `eval/accuracy`, `eval/tokens` in the
        loss mode; the task metrics in the metrics mode."""
        metrics = self._loss(params) if self.batches is not None else {}
        if self.task_metrics is not None:
            metrics.update(self.task_metrics(params))
        return metrics
