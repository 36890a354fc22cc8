"""Evaluation during training: loss and token accuracy on a fixed set of batches every few steps.

The same batches are used every time (read once and kept), so the numbers are comparable along the run
and can rank checkpoints.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import jax
import numpy as np

if TYPE_CHECKING:
    from it_jax.train.trainer import Trainer

PREFIX = "eval/"


class PeriodicEval:
    """Every `every` steps (and at the last step), `eval/loss` and `eval/accuracy` over `num_batches`.

    Args:
      trainer: provides the jitted eval step and the data sharding.
      batches: a fresh iterator of this host's eval batches (the first `num_batches` are used).
      num_batches: how many batches make up the eval set.
      every: the interval in steps.
    """

    def __init__(
        self,
        *,
        trainer: Trainer,
        batches: Callable[[], Iterator[Mapping[str, np.ndarray]]],
        num_batches: int,
        every: int,
    ):
        if every < 1 or num_batches < 1:
            raise ValueError(f"every and num_batches must be positive, got {every} and {num_batches}")
        self.trainer = trainer
        self.batches = batches
        self.num_batches = num_batches
        self.every = every
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

    def run(self, params: Any) -> dict[str, float]:
        """The eval metrics of `params`: `eval/loss` (mean token NLL), `eval/accuracy`, `eval/tokens`."""
        totals = None
        for host_batch in self._eval_set():
            stats = self.trainer.eval(params, self.trainer.to_global(host_batch))
            totals = stats if totals is None else jax.tree.map(lambda a, b: a + b, totals, stats)
        totals = {k: float(v) for k, v in totals.items()}
        tokens = max(totals["tokens"], 1.0)
        return {
            f"{PREFIX}loss": totals["nll_sum"] / tokens,
            f"{PREFIX}accuracy": totals["correct"] / tokens,
            f"{PREFIX}tokens": totals["tokens"],
        }
