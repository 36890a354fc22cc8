"""Orbax checkpoints of the train state, with the run's metadata (model config, vocabulary) beside it."""

from __future__ import annotations

import pathlib
from typing import Any

import orbax.checkpoint as ocp

from it_jax.train.state import TrainState

STATE = "state"
METADATA = "metadata"


class Checkpointer:
    """Saves every `save_every` steps (and on demand), keeps the last `max_to_keep`, restores the latest.

    Saving is asynchronous: the train loop continues while arrays are written; `close()` waits.
    A step directory only becomes visible once complete, so a crash mid-save loses nothing older.
    """

    def __init__(self, directory: str | pathlib.Path, *, save_every: int = 1000, max_to_keep: int | None = 3):
        self.directory = pathlib.Path(directory).absolute()
        self.save_every = save_every
        self.manager = ocp.CheckpointManager(
            self.directory,
            options=ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                enable_async_checkpointing=True,
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def save(self, step: int, state: TrainState, metadata: dict[str, Any], *, force: bool = False) -> bool:
        """Saves when `step` is a multiple of `save_every` (or `force`); returns whether a save started."""
        if step % self.save_every and not force:
            return False
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                **{STATE: ocp.args.PyTreeSave(state.as_dict()), METADATA: ocp.args.JsonSave(metadata)}
            ),
            force=force,
        )

    def restore(self, target: TrainState, step: int | None = None) -> TrainState:
        """Restores `step` (default: the latest) onto the shardings of `target` (abstract arrays)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return TrainState(**self._restore_tree(step, target.as_dict(), partial=False))

    def restore_params(self, target: Any, step: int | None = None) -> Any:
        """Restores only the parameters (no optimizer state) of `step` onto `target`'s shardings."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return self._restore_tree(step, {"params": target}, partial=True)["params"]

    def _restore_tree(self, step: int, target: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        restore = ocp.args.PyTreeRestore(
            item=target,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=partial,
        )
        return self.manager.restore(step, args=ocp.args.Composite(**{STATE: restore}))[STATE]

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        step = self.latest_step() if step is None else step
        return self.manager.restore(step, args=ocp.args.Composite(**{METADATA: ocp.args.JsonRestore()}))[METADATA]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()
