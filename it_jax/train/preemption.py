"""Preemption: on SIGTERM, finish the current step, save a checkpoint and stop (rerunning resumes).

A single process catches SIGTERM itself and sets a flag the train loop checks after each step. With
several processes every one must stop at the same step: JAX's preemption service (started by
`jax.distributed.initialize`) catches the signal on any host and agrees on the step to stop at.
"""

from __future__ import annotations

import signal
import threading
import types

import jax
from jax.experimental import multihost_utils


class Preempted(Exception):
    """Training stopped on a preemption notice after saving a checkpoint of `step`."""

    def __init__(self, step: int):
        super().__init__(f"preempted: saved a checkpoint of step {step}; run again to resume")
        self.step = step


class PreemptionWatcher:
    """A context in which `should_stop(step)` turns True once a preemption notice (SIGTERM) arrived."""

    def __init__(self):
        self._requested = False
        self._previous = None

    def __enter__(self) -> PreemptionWatcher:
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_sigterm(self, signum: int, frame: types.FrameType | None) -> None:
        self._requested = True

    def request(self) -> None:
        """Asks to stop after the current step, as SIGTERM does."""
        self._requested = True

    def should_stop(self, step: int) -> bool:
        """Whether to save and stop after `step` (all processes agree on the step)."""
        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._requested
