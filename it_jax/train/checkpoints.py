"""Orbax checkpoints of the train state, with the input position and the run's metadata beside it.

A step directory holds three items: `state` (step, parameters, optimizer state), `data` (the input
position: how many batches the run has consumed, so resumption restarts the input exactly there, and an
integrity fingerprint of every array) and `metadata` (the run's description: model config, vocabulary ...).
Arrays are restored onto whatever shardings the target asks for, so a checkpoint saved on one mesh restores
onto another.

Integrity: Orbax restores a damaged array file without complaint when the damage stays inside the data, so
each save records per array an exact fingerprint (see `integrity`), and `restore` recomputes it on the
restored arrays (`CorruptCheckpoint` names the arrays that differ, or that hold non-finite values).
A save that fails in the background (a full disk, no permission) raises `CheckpointSaveError` at the next
`raise_if_save_failed`, `save` or `close`.
"""

from __future__ import annotations

import contextlib
import json
import pathlib
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import orbax.checkpoint as ocp
from jax.experimental import multihost_utils
from orbax.checkpoint import checkpoint_managers

from it_jax import errors
from it_jax.convert import tree as tree_lib
from it_jax.run_dir import RunDirectory
from it_jax.train import integrity, orbax_errors
from it_jax.train.state import TrainState

STATE = "state"
DATA = "data"
METADATA = "metadata"
BEST_MODES = ("min", "max")
COMMIT_MARKER = "commit_success.txt"
STEP_METADATA = "_CHECKPOINT_METADATA"
FINGERPRINTS = "fingerprints"
CORRUPT_SUFFIX = ".corrupt-"


class CorruptCheckpoint(errors.RunError):
    """A step directory cannot be restored as it was saved: a commit marker or item is missing, a file does
    not parse, or the restored arrays differ from the fingerprints taken at save."""

    def __init__(self, step: int, directory: pathlib.Path, reason: str):
        super().__init__(f"checkpoint step {step} in {directory} is unreadable: {reason}")
        self.step = step
        self.reason = reason


class CheckpointSaveError(errors.RunError):
    """Writing a checkpoint failed (a full disk, no permission): the run stops instead of training on unsaved."""


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
        orbax_errors.summarize_orbax_errors()
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
        self._reader = ocp.PyTreeCheckpointHandler()
        self._pending: int | None = None  # the step of a save started but not yet confirmed
        self._failed = False
        self.last_committed = self.manager.latest_step()

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def reload(self) -> None:
        """Re-reads the step directories (after they changed on disk)."""
        self.manager.reload()
        self.last_committed = self.manager.latest_step()

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

        Waits for the previous save first, raising `CheckpointSaveError` if it failed.

        Args:
          data_position: the number of input batches consumed up to and including this step.
          metrics: evaluation metrics of this step (ranked by `best_metric` when keeping the best).
        """
        if step % self.save_every and not force:
            return False
        if metrics is not None and self.best_metric is not None and self.best_metric not in metrics:
            raise KeyError(f"best_metric {self.best_metric!r} is not among the metrics {sorted(metrics)}")
        self._finish_pending()
        data = {
            "batches_consumed": int(data_position),
            FINGERPRINTS: {name: list(fp[:2]) for name, fp in integrity.fingerprints(state.as_dict()).items()},
        }
        try:
            started = self.manager.save(
                step,
                args=ocp.args.Composite(
                    **{
                        STATE: ocp.args.PyTreeSave(state.as_dict()),
                        DATA: ocp.args.JsonSave(data),
                        METADATA: ocp.args.JsonSave(metadata),
                    }
                ),
                metrics=None if metrics is None else {k: float(v) for k, v in metrics.items()},
                force=force,
            )
        except Exception as error:
            if orbax_errors.os_error(error) is None:
                raise
            raise self._save_error(step, error) from error
        if started:
            self._pending = step
        return started

    def raise_if_save_failed(self) -> None:
        """Raises `CheckpointSaveError` if the save in flight has failed; otherwise returns at once.

        Cheap enough to call after every step, so that a full disk stops the run at the next step.
        """
        if self._pending is not None and not self.manager.is_saving_in_progress():
            self._finish_pending()

    def _finish_pending(self) -> None:
        """Waits for the save in flight; raises `CheckpointSaveError` if it did not commit."""
        step, self._pending = self._pending, None
        if step is None:
            return
        try:
            self.manager.wait_until_finished()
        except Exception as error:
            raise self._save_error(step, error) from error
        if not (self.directory / str(step)).is_dir():
            raise self._save_error(step, None)
        self.last_committed = step

    def _save_error(self, step: int, error: BaseException | None) -> CheckpointSaveError:
        self._failed = True
        cause = "its directory was not committed" if error is None else orbax_errors.os_error(error) or errors.one_line(error)
        if self.last_committed is None:
            last, then = "no checkpoint of this run is complete yet", "start again"
        else:
            last = f"the last complete checkpoint is step {self.last_committed}"
            then = f"resume from step {self.last_committed}"
        return CheckpointSaveError(
            f"saving the checkpoint of step {step} to {self.directory / str(step)} failed: {cause}. Training "
            f"stopped; {last}. Free space or fix the permissions under {self.directory}, then run the same "
            f"command again to {then}."
        )

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"no checkpoint in {self.directory}")
        return step

    def check_committed(self, step: int) -> None:
        """Raises `CorruptCheckpoint` unless `step`'s directory is complete: its commit marker, a parseable
        `_CHECKPOINT_METADATA`, and a directory for each item it lists (the state and metadata at least)."""
        path = self.directory / str(step)
        if not (path / COMMIT_MARKER).is_file():
            raise CorruptCheckpoint(step, self.directory, f"no {COMMIT_MARKER} (the save did not complete)")
        try:
            info = json.loads((path / STEP_METADATA).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptCheckpoint(step, self.directory, f"no {STEP_METADATA}") from None
        except ValueError as error:
            raise CorruptCheckpoint(step, self.directory, f"{STEP_METADATA} is not valid JSON ({error})") from None
        items = info.get("item_handlers") if isinstance(info, dict) else None
        listed = set(items) if isinstance(items, dict) else set()
        missing = sorted(name for name in listed | {STATE, METADATA} if not (path / name).is_dir())
        if missing:
            raise CorruptCheckpoint(step, self.directory, f"item {', '.join(missing)} missing (a half-written save)")

    def restore(self, target: TrainState, step: int | None = None, *, verify: bool = True) -> TrainState:
        """Restores `step` (default: the latest) onto the shardings of `target` (abstract arrays).

        With `verify`, the restored state is checked (see `verify`) against the fingerprints saved with it.
        """
        step = self._step(step)
        state = TrainState(**self._restore_tree(step, target.as_dict(), partial=False))
        if verify:
            self.verify(step, state, self.data(step).get(FINGERPRINTS))
        return state

    def verify(self, step: int, state: TrainState, saved: Mapping[str, Sequence[int]] | None) -> None:
        """Raises `CorruptCheckpoint` naming the arrays of `state` (restored from `step`) that differ from the
        fingerprints `saved` with it, or that hold non-finite values. Without `saved` (checkpoints older than
        fingerprints) only the values are checked. A collective: every process calls it."""
        computed = integrity.fingerprints(state.as_dict())
        saved = saved or {}
        changed = sorted(name for name, fp in computed.items() if name in saved and list(saved[name]) != list(fp[:2]))
        if changed:
            raise CorruptCheckpoint(
                step,
                self.directory,
                f"fingerprint mismatch (the files were damaged after saving) in {tree_lib.abbreviate(changed)}",
            )
        nonfinite = sorted(name for name, (_, _, bad) in computed.items() if bad)
        if nonfinite:
            raise CorruptCheckpoint(step, self.directory, f"non-finite values in {tree_lib.abbreviate(nonfinite)}")

    def restore_params(self, target: Any, step: int | None = None) -> Any:
        """Restores only the parameters (no optimizer state) of `step` onto `target`'s shardings.

        `target` may hold a subset of the saved parameters (the others are not read).
        """
        return self._restore_tree(self._step(step), {"params": target}, partial=True)["params"]

    def state_shapes(self, step: int) -> dict[str, tuple[int, ...]]:
        """The saved state's array shapes by `tree.key_path_name`, read from its metadata without loading arrays."""
        tree = self.manager.item_metadata(step)[STATE]
        flat = jax.tree_util.tree_flatten_with_path(getattr(tree, "tree", tree))[0]
        return {tree_lib.key_path_name(path): tuple(leaf.shape) for path, leaf in flat if hasattr(leaf, "shape")}

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
        # The item's handler reads without the barrier `CheckpointManager.restore` ends with: a read failing on
        # one process only then leaves no other process waiting in it (`resume` agrees on the outcome instead).
        return self._reader.restore(self.directory / str(step) / STATE, args=restore)

    def data(self, step: int) -> dict[str, Any]:
        """`step`'s `data` item: the input position and fingerprints ({} for checkpoints saved without one)."""
        if not (self.directory / str(step) / DATA).exists():
            return {}
        return self.manager.restore(step, args=ocp.args.Composite(**{DATA: ocp.args.JsonRestore()}))[DATA]

    def data_position(self, step: int | None = None) -> int:
        """The number of input batches consumed by `step`; checkpoints without one assume one per step."""
        step = self._step(step)
        return int(self.data(step).get("batches_consumed", step))

    def metadata(self, step: int | None = None) -> dict[str, Any]:
        step = self._step(step)
        return self.manager.restore(step, args=ocp.args.Composite(**{METADATA: ocp.args.JsonRestore()}))[METADATA]

    def move_aside(self, step: int) -> pathlib.Path:
        """Renames `step`'s directory to `<step>.corrupt-<UTC time>` (kept, no longer a step), then reloads.

        Process 0 renames; every process waits for it before reloading the step list.
        """
        moved = self.directory / f"{step}{CORRUPT_SUFFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
        if jax.process_index() == 0:
            (self.directory / str(step)).rename(moved)
        if jax.process_count() > 1:
            multihost_utils.sync_global_devices(f"it_jax checkpoint {step} moved aside")
        self.reload()
        if step in self.all_steps():
            raise RuntimeError(f"{self.directory / str(step)} is still listed as a step after moving it to {moved}")
        return moved

    def close(self) -> None:
        """Waits for the last save; raises `CheckpointSaveError` if it failed (a failure is reported once)."""
        try:
            self._finish_pending()
        finally:
            self._reader.close()
            # After a failed save, what closing raises is that failure again, already raised as CheckpointSaveError.
            with contextlib.suppress(Exception) if self._failed else contextlib.nullcontext():
                self.manager.close()


def checkpoint_dir(path: str | pathlib.Path) -> pathlib.Path:
    """The `checkpoints/` directory of a model directory, or `path` itself if it holds step directories."""
    path = pathlib.Path(path)
    if RunDirectory(path).checkpoints.is_dir():
        return RunDirectory(path).checkpoints
    if path.is_dir() and any(p.name.isdigit() for p in path.iterdir()):
        return path
    raise FileNotFoundError(f"{path} is neither a model directory with checkpoints/ nor a checkpoint directory")
