"""What a run does when it diverges: a non-finite loss, gradient norm or updated parameter.

`stop` (the default) ends the run with an error naming the step; `skip` drops the update (the step counter
and the input still advance) and ends the run after `max_consecutive_skips` non-finite steps in a row. Either
way a non-finite state is never saved, so the newest checkpoint on disk is always a finite one.

The device computes one flag per step; the host reads it one step late (after dispatching the next step),
so watching costs no pipeline stall, and reads it at once before a checkpoint is written.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

from it_jax import errors

STOP = "stop"
SKIP = "skip"
POLICIES = (STOP, SKIP)


@dataclasses.dataclass(frozen=True)
class DivergencePolicy:
    """`on_nonfinite`: "stop" or "skip"; `max_consecutive_skips`: how many skipped steps in a row end a
    skipping run."""

    on_nonfinite: str = STOP
    max_consecutive_skips: int = 10

    def __post_init__(self):
        if self.on_nonfinite not in POLICIES:
            raise errors.ConfigError(
                f"train_run.on_nonfinite must be one of {POLICIES}, got {self.on_nonfinite!r}"
            )
        if isinstance(self.max_consecutive_skips, bool) or not isinstance(self.max_consecutive_skips, int):
            raise errors.ConfigError(
                f"train_run.max_consecutive_skips must be an int, got {self.max_consecutive_skips!r}"
            )
        if self.max_consecutive_skips < 1:
            raise errors.ConfigError(
                f"train_run.max_consecutive_skips must be ≥ 1, got {self.max_consecutive_skips}"
            )

    @property
    def skip(self) -> bool:
        return self.on_nonfinite == SKIP


class Diverged(errors.RunError):
    """Training produced a non-finite loss, gradient norm or parameter and the policy says stop."""

    def __init__(self, message: str, step: int):
        super().__init__(message)
        self.step = step


def all_finite(tree: Any) -> jax.Array:
    """Whether every floating-point value in `tree` is finite (one fused pass over the leaves)."""
    flags = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.inexact)]
    return jnp.stack(flags).all() if flags else jnp.bool_(True)


def keep_if(finite: jax.Array, new: Any, old: Any) -> Any:
    """`new` where `finite`, else `old`, leaf by leaf (inside jit: skipping an update)."""
    return jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)


class DivergenceMonitor:
    """The host side of the policy: reads each step's `nonfinite` statistic and stops or counts skips.

    `observe(step, stats)` after dispatching a step checks the previous step's flag; `settle()` checks
    every pending flag (call it before saving a checkpoint).
    """

    def __init__(self, policy: DivergencePolicy, *, checkpoints: str, last_saved: int | None):
        self.policy = policy
        self.checkpoints = checkpoints
        self.last_saved = last_saved
        self.skipped = 0
        self._in_a_row = 0
        self._pending: list[tuple[int, dict[str, jax.Array]]] = []

    def saved(self, step: int) -> None:
        self.last_saved = step

    def observe(self, step: int, stats: dict[str, jax.Array]) -> None:
        """Queues `step`'s flag and checks the ones before it (already computed, so reading them is free)."""
        self._pending.append((step, stats))
        while len(self._pending) > 1:
            self._check(*self._pending.pop(0))

    def settle(self) -> None:
        """Checks every queued flag (waits for the latest step): a state about to be saved is then finite."""
        while self._pending:
            self._check(*self._pending.pop(0))

    def _check(self, step: int, stats: dict[str, jax.Array]) -> None:
        if not float(stats["nonfinite"]):
            self._in_a_row = 0
            return
        if not self.policy.skip:
            raise Diverged(self._stop_message(step, stats), step)
        self.skipped += 1
        self._in_a_row += 1
        print(
            f"step {step}: non-finite loss, gradients or parameters; update skipped "
            f"({self._in_a_row} in a row, the run stops at {self.policy.max_consecutive_skips})",
            flush=True,
        )
        if self._in_a_row >= self.policy.max_consecutive_skips:
            first = step - self._in_a_row + 1
            raise Diverged(
                f"training diverged: steps {first}-{step} were all non-finite and skipped "
                f"(train_run.max_consecutive_skips = {self.policy.max_consecutive_skips}). {self._advice()}",
                step,
            )

    def _stop_message(self, step: int, stats: dict[str, jax.Array]) -> str:
        # The token loss where the objective is cross-entropy; other objectives' statistics name no token loss.
        loss = f"loss {float(stats['nll_sum']) / max(float(stats['tokens']), 1.0):.4g}, " if "nll_sum" in stats else ""
        return (
            f"training diverged at step {step}: {loss}gradient norm {float(stats['grad_norm']):.4g} "
            f"(train_run.on_nonfinite = 'stop'). {self._advice()}"
        )

    def _advice(self) -> str:
        if self.last_saved is None:
            kept = f"No checkpoint was saved in {self.checkpoints}"
        else:
            kept = f"The last checkpoint, step {self.last_saved} in {self.checkpoints}, is finite"
        return (
            f"{kept}; nothing non-finite was saved. Lower the learning rate (or raise warmup / clip_norm), or "
            "set train_run.on_nonfinite = 'skip' to drop such updates, then rerun to resume."
        )
