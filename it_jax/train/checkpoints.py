"""Orbax checkpoints of the train state, with the input position and the run's metadata beside it.

A step directory holds three items: `state` (step, parameters, optimizer state), `data` (the input
position: how many batches the run has consumed, so resumption restarts the input exactly there) and
`metadata` (the run's description: model config, vocabulary ...). Arrays are restored onto whatever
shardings the target asks for, so a checkpoint saved on one mesh restores onto another.
"""

from __future__ import annotations

import pathlib
from typing import Any

import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers

from it_jax.train.state import TrainState

STATE = "state"
DATA = "data"
METADATA = "metadata"
BEST_MODES = ("min", "max")


def _preservation_policy(
    max_to_keep: int | None, keep_best: int, best_metric: str, best_mode: str
) -> checkpoint_managers.PreservationPolicy:
    latest = checkpoint_managers.LatestN(n=max_to_keep)
    if not keep_best:
        return latest
    if best_mode not in BEST_MODES:
        raise ValueError(f"best_mode must be one of {BEST_MODES}, got {best_mode!r}")
    best = checkpoint_managers.BestN(
        get_metric_fn=lambda metrics: metrics[best_metric],
        # BestN keeps the last `n` in sorted order: sort descending to keep the smallest.
        reverse=best_mode == "min",
        n=keep_best,
        keep_checkpoints_without_metrics=False,
    )
    return checkpoint_managers.AnyPreservationPolicy([latest, best])


class Checkpointer:
    """Saves every `save_every` steps (and on demand), keeps the last `max_to_keep` (and the best), restores.

    Saving is asynchronous: the train loop continues while arrays are written; `close()` waits.
    A step directory only becomes visible once complete, so a crash mid-save loses nothing older.

    Args:
      directory: where the step directories go.
      save_every: `save` writes on multiples of this (or when forced).
      max_to_keep: the number of latest checkpoints kept (None: all).
      keep_best: also keep this many checkpoints with the best `best_metric`, among those saved with
        metrics (0: keep none for being best).
      best_metric: the key of the metrics passed to `save` that ranks checkpoints.
      best_mode: "min" (e.g. a loss) or "max" (e.g. an accuracy).
    """

    def __init__(
        self,
        directory: str | pathlib.Path,
        *,
        save_every: int = 1000,
        max_to_keep: int | None = 3,
        keep_best: int = 0,
        best_metric: str = "eval/loss",
        best_mode: str = "min",
    ):
        self.directory = pathlib.Path(directory).absolute()
        self.save_every = save_every
        self.best_metric = best_metric if keep_best else None
        self.manager = ocp.CheckpointManager(
            self.directory,
            item_handlers={
                STATE: ocp.PyTreeCheckpointHandler(),
                DATA: ocp.JsonCheckpointHandler(),
                METADATA: ocp.JsonCheckpointHandler(),
            },
            options=ocp.CheckpointManagerOptions(
                preservation_policy=_preservation_policy(max_to_keep, keep_best, best_metric, best_mode),
                enable_async_checkpointing=True,
            ),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def save(
        self,
        step: int,
        state: TrainState,
        metadata: dict[str, Any],
        *,
        data_position: int,
        metrics: dict[str, float] | None = None,
        force: bool = False,
    ) -> bool:
        """Saves when `step` is a multiple of `save_every` (or `force`); returns whether a save started.

        Args:
          data_position: the number of input batches consumed up to and including this step.
          metrics: evaluation metrics of this step (ranked by `best_metric` when keeping the best).
        """
        if step % self.save_every and not force:
            return False
        if metrics is not None and self.best_metric is not None and self.best_metric not in metrics:
            raise KeyError(f"best_metric {self.best_metric!r} is not among the metrics {sorted(metrics)}")
        return self.manager.save(
            step,
            args=ocp.args.Composite(
                **{
                    STATE: ocp.args.PyTreeSave(state.as_dict()),
                    DATA: ocp.args.JsonSave({"batches_consumed": int(data_position)}),
                    METADATA: ocp.args.JsonSave(metadata),
                }
            ),
            metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
            force=force,
        )

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return step

    def restore(self, target: TrainState, step: int | None = None) -> TrainState:
        """Restores `step` (default: the latest) onto the shardings of `target` (abstract arrays)."""
        return TrainState(**self._restore_tree(self._step(step), target.as_dict(), partial=False))

    def restore_params(self, target: Any, step: int | None = None) -> Any:
        """Restores only the parameters (no optimizer state) of `step` onto `target`'s shardings.

        `target` may hold a subset of the saved parameters (the others are not read).
        """
        return self._restore_tree(self._step(step), {"params": target}, partial=True)["params"]

    def param_shapes(self, step: int | None = None) -> Any:
        """The saved parameters' metadata (shape, dtype per leaf) as a tree, read without loading arrays."""
        tree = self.manager.item_metadata(self._step(step))[STATE]
        return getattr(tree, "tree", tree)["params"]

    def _restore_tree(self, step: int, target: dict[str, Any], *, partial: bool) -> dict[str, Any]:
        restore = ocp.args.PyTreeRestore(
            item=target,
            restore_args=ocp.checkpoint_utils.construct_restore_args(target),
            partial_restore=partial,
        )
        return self.manager.restore(step, args=ocp.args.Composite(**{STATE: restore}))[STATE]

    def data_position(self, step: int | None = None) -> int:
        """The number of input batches consumed by `step`; checkpoints without one assume one per step."""
        step = self._step(step)
        if not (self.directory / str(step) / DATA).exists():
            return step
        data = self.manager.restore(step, args=ocp.args.Composite(**{DATA: ocp.args.JsonRestore()}))[DATA]
        return int(data["batches_consumed"])

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        step = self._step(step)
        return self.manager.restore(step, args=ocp.args.Composite(**{METADATA: ocp.args.JsonRestore()}))[METADATA]

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def checkpoint_dir(path: str | pathlib.Path) -> pathlib.Path:
    """The `checkpoints/` directory of a model directory, or `path` itself if it holds step directories."""
    path = pathlib.Path(path)
    if (path / "checkpoints").is_dir():
        return path / "checkpoints"
    if path.is_dir() and any(p.name.isdigit() for p in path.iterdir()):
        return path
    raise FileNotFoundError(f"{path} is neither a model directory with checkpoints/ nor a checkpoint directory")

