"""What runs after a training step besides the step itself: hooks, each due every `every` steps.

A hook is called after step `step` when `step % every == 0`, and always after the run's final step
(`num_steps`), so a run whose length is not a multiple of `every` still ends with it. A hook with `on_stop`
True also runs when the run stops early on a preemption notice. Hooks run in order; what each returns (a
dict of metrics, or None) is gathered in `context.metrics` for the hooks after it: the checkpoint hook stores
an evaluation's metrics with the checkpoint saved at the same step (the "best" bookkeeping).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import jax
import numpy as np

from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import divergence as divergence_lib
from it_jax.train import metrics as metrics_lib
from it_jax.train import peers, preemption
from it_jax.train.state import TrainState


@dataclasses.dataclass
class Context:
    """What a hook may read besides the state.

    Attributes:
      num_steps: the run's total number of steps.
      position: input batches consumed so far (stored with a checkpoint).
      stats: the step's statistics (device arrays).
      logger: the run's metrics logger.
      stopping: the run stops after this step (a preemption notice).
      metrics: what the hooks before this one returned at this step.
    """

    num_steps: int
    position: int
    stats: Mapping[str, jax.Array]
    logger: metrics_lib.MetricsLogger
    stopping: bool = False
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)


class Hook(Protocol):
    """Runs every `every` steps and after the final step (see the module docstring)."""

    every: int

    def __call__(self, step: int, state: TrainState, context: Context) -> dict[str, float] | None: ...


def due(hook: Hook, step: int, context: Context) -> bool:
    """Whether `hook` runs after `step`: a multiple of its `every`, the final step, or a stop (`on_stop`)."""
    if context.stopping and getattr(hook, "on_stop", False):
        return True
    return step % hook.every == 0 or step == context.num_steps


def run_hooks(hooks: Sequence[Hook], step: int, state: TrainState, context: Context) -> dict[str, float]:
    """Runs the due hooks in order, each seeing what the earlier ones returned; returns all of it."""
    for hook in hooks:
        if due(hook, step, context):
            metrics = hook(step, state, context)
            if metrics:
                context.metrics.update(metrics)
    return context.metrics


def _check_every(every: int, what: str) -> None:
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise ValueError(f"{what}: every must be an int ≥ 1, got {every!r}")


@dataclasses.dataclass
class LogMetrics:
    """Feeds every step's statistics to the logger (which writes a record every `log_every` steps)."""

    every: int = 1

    def __call__(self, step: int, state: TrainState, context: Context) -> None:
        context.logger.update(step, dict(context.stats))


@dataclasses.dataclass
class Evaluate:
    """Evaluates the parameters every `every` steps (e.g. `it_jax.evaluation.periodic.PeriodicEval.run`) and
    logs the metrics (names like `eval/loss`); the time it takes is left out of the training rates. A state
    with a frozen reference passes it too, as `reference=`."""

    evaluation: Callable[[Any], dict[str, float]]
    every: int

    def __post_init__(self):
        _check_every(self.every, "Evaluate")

    def __call__(self, step: int, state: TrainState, context: Context) -> dict[str, float]:
        started = time.perf_counter()
        if state.reference is None:
            metrics = self.evaluation(state.params)
        else:
            metrics = self.evaluation(state.params, reference=state.reference)
        context.logger.log_eval(step, metrics, seconds=time.perf_counter() - started)
        return metrics


@dataclasses.dataclass
class SaveCheckpoint:
    """Saves the state every `every` steps, at the final step and on a stop, with the input position and the
    metrics the earlier hooks returned (the checkpointer keeps the best by one of them). A non-finite state
    raises (through the divergence monitor) instead of being saved."""

    checkpointer: checkpoints_lib.Checkpointer
    monitor: divergence_lib.DivergenceMonitor
    metadata: Mapping[str, Any]
    every: int
    on_stop: bool = True

    def __post_init__(self):
        _check_every(self.every, "SaveCheckpoint")

    def __call__(self, step: int, state: TrainState, context: Context) -> None:
        self.monitor.settle()
        self.checkpointer.save(
            step,
            state,
            dict(self.metadata),
            data_position=context.position,
            metrics=dict(context.metrics) or None,
            force=True,
        )
        self.monitor.saved(step)


@dataclasses.dataclass
class Loop:
    """One training step and what follows it: the divergence monitor, the preemption watcher, the checkpointer
    (a failed background save stops the run) and the hooks (logging, evaluation, saving)."""

    step: Callable[[TrainState, Mapping[str, np.ndarray]], tuple[TrainState, Mapping[str, jax.Array]]]
    checkpointer: checkpoints_lib.Checkpointer
    logger: metrics_lib.MetricsLogger
    monitor: divergence_lib.DivergenceMonitor
    watcher: preemption.PreemptionWatcher
    hooks: Sequence[Hook]
    num_steps: int

    def run_step(
        self, state: TrainState, host_batch: Mapping[str, np.ndarray], *, step: int, position: int
    ) -> TrainState:
        """Runs `step` on this host's `host_batch`, then the due hooks (`position`: batches consumed).

        Raises:
          preemption.Preempted: after the hooks, on a preemption notice.
        """
        state, stats = self.step(state, host_batch)
        self.checkpointer.raise_if_save_failed()
        self.monitor.observe(step, stats)
        stop = self.watcher.should_stop(step)
        context = Context(num_steps=self.num_steps, position=position, stats=stats, logger=self.logger, stopping=stop)
        run_hooks(self.hooks, step, state, context)
        peers.report_progress(step=step, saved_step=self.checkpointer.last_committed)
        if stop:
            raise preemption.Preempted(step)
        return state
