"""Preemption: on SIGTERM, finish the current step, save a checkpoint and stop (rerunning resumes).

A single process catches SIGTERM itself and sets a flag the train loop checks after each step. With
several processes every one must stop at the same step: JAX's preemption service (started by
`jax.distributed.initialize`) catches the signal on any host and agrees on the step to stop at.

Outside the train loop (start-up, which may spend minutes restoring a checkpoint, and the evaluation after
training) there is nothing to save: `stop_outside_training` makes SIGTERM exit 0 at once, saying so. The
entry points install it first thing; the loop's `PreemptionWatcher` takes over while it runs and hands
back when it ends. In a multi-process run JAX's preemption service owns SIGTERM from
`jax.distributed.initialize` on: a notice that arrives after it, even before the first step, makes every
process take one step, save it and stop (`Preempted`); a notice before it still exits 0 at once.

JAX is imported only when the loop needs it, so that the entry points can install the handler before
their heavy imports.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import types

STOPPED_BEFORE_TRAINING = "Stopped before the first step; nothing to save. Run the same command again to resume."
STOPPED_AFTER_TRAINING = (
    "Stopped after training (its last step is saved). Run the same command again to resume; "
    "it finishes what came after training."
)


class Preempted(Exception):
    """Training stopped on a preemption notice after saving a checkpoint of `step`."""

    def __init__(self, step: int):
        super().__init__(f"preempted: saved a checkpoint of step {step}; run again to resume")
        self.step = step


class _Phase:
    """Whether a train loop of this process has run to its end (the message on SIGTERM depends on it)."""

    trained = False


def _exit_outside_training(signum: int, frame: types.FrameType | None) -> None:
    message = STOPPED_AFTER_TRAINING if _Phase.trained else STOPPED_BEFORE_TRAINING
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, RuntimeError, ValueError):  # RuntimeError: the signal interrupted a write to it
            pass
    try:
        os.write(1, f"\n{message}\n".encode())
    finally:
        os._exit(0)


def stop_outside_training() -> None:
    """From now on, SIGTERM outside a train loop prints why nothing needs saving and exits 0 at once.

    `os._exit` skips interpreter shutdown: threads of a half-built input pipeline cannot hang it. Inside a
    train loop, `PreemptionWatcher` handles SIGTERM instead (finish the step, save, stop).
    """
    signal.signal(signal.SIGTERM, _exit_outside_training)


class PreemptionWatcher:
    """A context in which `should_stop(step)` turns True once a preemption notice (SIGTERM) arrived.

    It replaces the SIGTERM handler while it is open and puts the previous one back when it closes.
    """

    def __init__(self):
        self._requested = False
        self._previous = None

    def __enter__(self) -> PreemptionWatcher:
        import jax

        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
        return self

    def __exit__(self, exc_type, exc_value, traceback) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None
        if exc_type is None:
            _Phase.trained = True

    def _on_sigterm(self, signum: int, frame: types.FrameType | None) -> None:
        self._requested = True

    def request(self) -> None:
        """Asks to stop after the current step, as SIGTERM does."""
        self._requested = True

    def should_stop(self, step: int) -> bool:
        """Whether to save and stop after `step` (all processes agree on the step)."""
        import jax
        from jax.experimental import multihost_utils

        if jax.process_count() > 1:
            return multihost_utils.reached_preemption_sync_point(step)
        return self._requested
