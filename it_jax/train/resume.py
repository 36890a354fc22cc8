"""Resuming a run: the newest readable checkpoint (damaged ones are moved aside), checked against this run.

Before any array is read, the candidate step's stored metadata is compared with this run's: the model's
settings never change within a run; the data settings (`data`: mixture, tasks, batching, sampling, and the
feature lengths) and the optimization settings (`schedule`: schedule, optimizer, loss) change only when
`allow_changes` names them. The saved state's shapes must match the model's. A settings or shape mismatch
is the user's to resolve and stops the run with every difference listed.

Then the step is checked and restored: commit markers, readable items, arrays equal to the fingerprints
taken at save, finite values. A step failing any of these is renamed `<step>.corrupt-<UTC time>` (kept for
inspection) and the step before it is tried; every process must succeed on the same step.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import jax
import numpy as np
from jax.experimental import multihost_utils

from it_jax import errors
from it_jax.convert import tree as tree_lib
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train.state import TrainState

DATA = "data"
SCHEDULE = "schedule"
MODEL = "model"
# The metadata keys (see `launch.train_run`) of each group of settings; only `allow_changes` groups may change.
SETTINGS = {
    MODEL: ("architecture", "model_config", "vocabulary", "vocabulary_spec", "layout"),
    DATA: ("task_feature_lengths", "data"),
    SCHEDULE: ("optimization",),
}
CHANGEABLE = (DATA, SCHEDULE)
_SHOWN = 10  # differences listed in full; the rest are counted


class ResumeMismatch(errors.RunError):
    """The run's settings differ from those its checkpoint was saved with, and `allow_changes` does not allow it."""


class ShapeMismatch(errors.RunError):
    """The checkpoint's state has arrays of other shapes, or other arrays, than the model being resumed."""


class NoReadableCheckpoint(errors.RunError):
    """Checkpoints exist but none can be restored; the message lists each step and why."""


@dataclasses.dataclass(frozen=True)
class Resumed:
    """The restored state, its step, the input position to continue from, and the lines to report."""

    state: TrainState
    step: int
    position: int
    notices: tuple[str, ...] = ()


def check_allow_changes(allow_changes: Sequence[str]) -> frozenset[str]:
    """The groups of settings `allow_changes` names; `ConfigError` for any other value."""
    values = (allow_changes,) if isinstance(allow_changes, str) else tuple(allow_changes)
    unknown = sorted(set(values) - set(CHANGEABLE))
    if unknown:
        raise errors.ConfigError(
            f"train_run.allow_changes: unknown value(s) {unknown}; the valid values are {list(CHANGEABLE)}"
        )
    return frozenset(values)


def _leaves(value: Any, prefix: str) -> dict[str, Any]:
    """Nested dicts as `{dotted name: value}` (lists and scalars are leaves)."""
    if not isinstance(value, Mapping) or not value:
        return {prefix: value}
    flat: dict[str, Any] = {}
    for key, child in value.items():
        flat.update(_leaves(child, f"{prefix}.{key}"))
    return flat


def _as_json(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """`metadata` as it reads back from a checkpoint (tuples become lists, keys strings)."""
    return json.loads(json.dumps(dict(metadata)))


@dataclasses.dataclass(frozen=True)
class SettingsComparison:
    """`differences`: per group, lines `name: saved in the checkpoint, current now`; `not_compared`: names
    present on one side only (older checkpoints, library runs without metadata)."""

    differences: dict[str, list[str]]
    not_compared: list[str]


def compare_settings(saved: Mapping[str, Any], current: Mapping[str, Any]) -> SettingsComparison:
    """Compares two runs' metadata leaf by leaf, group by group (see `SETTINGS`); empty metadata compares nothing."""
    differences: dict[str, list[str]] = {}
    not_compared: list[str] = []
    if not saved or not current:
        return SettingsComparison(differences, not_compared)
    saved, current = _as_json(saved), _as_json(current)
    for group, keys in SETTINGS.items():
        for key in keys:
            if key not in saved or key not in current:
                not_compared += [key] if key in saved or key in current else []
                continue
            old, new = _leaves(saved[key], key), _leaves(current[key], key)
            not_compared += sorted(set(old) ^ set(new))
            for name in sorted(set(old) & set(new)):
                if old[name] != new[name]:
                    differences.setdefault(group, []).append(
                        f"{name}: {json.dumps(old[name])} in the checkpoint, {json.dumps(new[name])} now"
                    )
    return SettingsComparison(differences, not_compared)


def check_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any], *, allowed: frozenset[str], where: str
) -> tuple[frozenset[str], list[str]]:
    """(the allowed groups that changed, notices); `ResumeMismatch` listing every refused difference."""
    comparison = compare_settings(saved, current)
    refused = {group: lines for group, lines in comparison.differences.items() if group not in allowed}
    if refused:
        raise ResumeMismatch(_mismatch_message(refused, where))
    notices = []
    if comparison.not_compared:
        notices.append(
            "Resume check: not compared (absent from the checkpoint's metadata or this run's): "
            + tree_lib.abbreviate(comparison.not_compared, _SHOWN)
        )
    changed = frozenset(comparison.differences)
    for group in sorted(changed):
        listed = "; ".join(comparison.differences[group][:_SHOWN])
        consequence = "the input restarts at position 0" if group == DATA else "the new settings apply from here on"
        notices.append(f"The {group} settings changed since {where} ({listed}); allowed: {consequence}.")
    return changed, notices


def _mismatch_message(refused: dict[str, list[str]], where: str) -> str:
    lines = [line for group in SETTINGS for line in refused.get(group, [])]
    shown = "; ".join(lines[:_SHOWN]) + (f"; and {len(lines) - _SHOWN} more" if len(lines) > _SHOWN else "")
    advice = []
    changeable = [group for group in CHANGEABLE if group in refused]
    if MODEL in refused:
        advice.append("The model's settings cannot change within a run: restore them")
    elif changeable:
        effect = " (the input then restarts at position 0)" if DATA in changeable else ""
        advice.append(f"To continue with the new settings, bind train_run.allow_changes = {changeable}{effect}")
    advice.append("to train from scratch, use a new --model_dir")
    return f"cannot resume from {where}: the run's settings differ from the checkpoint's: {shown}. {'; '.join(advice)}."


def check_shapes(saved: Mapping[str, tuple[int, ...]], target: TrainState, *, where: str) -> None:
    """`ShapeMismatch` naming every array whose shape differs, is missing from the checkpoint, or is extra."""
    flat = jax.tree_util.tree_flatten_with_path(target.as_dict())[0]
    wanted = {tree_lib.key_path_name(path): tuple(leaf.shape) for path, leaf in flat}
    params_first = sorted(wanted.items(), key=lambda item: (not item[0].startswith("params."), item[0]))
    problems = [
        f"{name}: {tuple(saved[name])} in the checkpoint, {shape} in the model"
        for name, shape in params_first
        if name in saved and tuple(saved[name]) != shape
    ]
    problems = problems[:_SHOWN] + ([f"and {len(problems) - _SHOWN} more shapes"] if len(problems) > _SHOWN else [])
    missing = sorted(set(wanted) - set(saved))
    extra = sorted(set(saved) - set(wanted))
    if missing:
        problems.append(f"not in the checkpoint: {tree_lib.abbreviate(missing, _SHOWN)}")
    if extra:
        problems.append(f"not in the model: {tree_lib.abbreviate(extra, _SHOWN)}")
    if problems:
        raise ShapeMismatch(
            f"cannot resume from {where}: the saved state does not fit the model: {'; '.join(problems)}. The model "
            "or optimizer changed since this checkpoint was saved: restore their settings, or use a new "
            "--model_dir (train_run.init_from = <this model dir> starts from the matching parameters)."
        )


@dataclasses.dataclass(frozen=True)
class StepCheck:
    """What a step holds besides its arrays: the input position to continue from, the fingerprints saved with
    the arrays (None: an older checkpoint), and the lines to report."""

    position: int
    fingerprints: Mapping[str, Sequence[int]] | None
    notices: tuple[str, ...]


_T = TypeVar("_T")


def _reading(checkpointer: checkpoints_lib.Checkpointer, step: int, what: str, read: Callable[[int], _T]) -> _T:
    """`read(step)`; a failure is raised as `CorruptCheckpoint` saying what could not be read, and why."""
    try:
        return read(step)
    except Exception as error:
        reason = f"could not read {what} ({errors.one_line(errors.root_cause(error))})"
        raise checkpoints_lib.CorruptCheckpoint(step, checkpointer.directory, reason) from error


def check_step(
    checkpointer: checkpoints_lib.Checkpointer,
    step: int,
    target: TrainState,
    *,
    metadata: Mapping[str, Any],
    allowed: frozenset[str] = frozenset(),
) -> StepCheck:
    """Checks `step` without reading its arrays (local reads only): `CorruptCheckpoint` (or another error) if it
    is unreadable, `ResumeMismatch` or `ShapeMismatch` if it does not fit this run."""
    where = f"step {step} in {checkpointer.directory}"
    checkpointer.check_committed(step)
    saved_metadata = _reading(checkpointer, step, "the metadata item", checkpointer.metadata)
    changed, notices = check_settings(saved_metadata, metadata, allowed=allowed, where=where)
    check_shapes(_reading(checkpointer, step, "state/_METADATA", checkpointer.state_shapes), target, where=where)
    data = _reading(checkpointer, step, "the data item", checkpointer.data)
    saved = data.get(checkpoints_lib.FINGERPRINTS)
    if saved is None:
        notices.append(f"Step {step} was saved without integrity fingerprints (an older checkpoint): not checked.")
    position = 0 if DATA in changed else int(data.get("batches_consumed", step))
    return StepCheck(position, saved, tuple(notices))


def _attempt(fn: Callable[[], _T]) -> tuple[_T | None, str | None]:
    """(what `fn` returns, None), or (None, why the step is unreadable); a mismatch with this run propagates."""
    try:
        return fn(), None
    except checkpoints_lib.CorruptCheckpoint as error:
        return None, error.reason
    except (ResumeMismatch, ShapeMismatch):
        raise
    except Exception as error:  # whatever a damaged step makes Orbax or TensorStore raise
        return None, errors.one_line(errors.root_cause(error))


def _agree(reason: str | None, where: str) -> str | None:
    """None when every process succeeded, else why not: this process's reason or the first failed process.

    A process other than 0 that failed says why itself (process 0 reports the step for all)."""
    if jax.process_count() == 1:
        return reason
    flags = np.asarray(multihost_utils.process_allgather(np.int32(reason is None))).reshape(-1)
    failed = [process for process, ok in enumerate(flags) if not ok]
    if not failed:
        return None
    if reason is not None and jax.process_index() != 0:
        print(f"[process {jax.process_index()}] {where} is unreadable here: {reason}", flush=True)
    return reason or f"unreadable on process {failed[0]}"


def restore_step(
    checkpointer: checkpoints_lib.Checkpointer,
    step: int,
    target: TrainState,
    *,
    metadata: Mapping[str, Any],
    allowed: frozenset[str] = frozenset(),
) -> tuple[Resumed | None, str | None]:
    """(the restored step, None), or (None, why it is unreadable on some process).

    Three stages, each agreed on by every process before the next, so that a failure on one process cannot
    leave the others waiting in a collective: the local checks (`check_step`), reading the arrays, and
    verifying them against their fingerprints (a collective).
    """
    where = f"step {step} in {checkpointer.directory}"
    read_arrays = functools.partial(checkpointer.restore, target, verify=False)
    checked, reason = _attempt(lambda: check_step(checkpointer, step, target, metadata=metadata, allowed=allowed))
    reason = _agree(reason, where)
    if reason is None:
        state, reason = _attempt(lambda: _reading(checkpointer, step, "the state's arrays", read_arrays))
        reason = _agree(reason, where)
    if reason is None:
        _, reason = _attempt(lambda: checkpointer.verify(step, state, checked.fingerprints))
        reason = _agree(reason, where)
    if reason is not None:
        return None, reason
    return Resumed(state, step, checked.position, checked.notices), None


def _say(line: str) -> None:
    if jax.process_index() == 0:
        print(line, flush=True)


def resume(
    checkpointer: checkpoints_lib.Checkpointer,
    target: TrainState,
    *,
    metadata: Mapping[str, Any],
    allow_changes: Sequence[str] = (),
) -> Resumed | None:
    """The newest step that is readable and fits this run, restored onto `target`'s shardings (None: no steps).

    Unreadable steps are moved aside, newest first, each with one line saying why.

    Raises:
      ResumeMismatch, ShapeMismatch: the newest readable step does not fit this run (nothing is moved).
      NoReadableCheckpoint: steps existed but none could be restored.
      ConfigError: `allow_changes` names something other than "data" or "schedule".
    """
    allowed = check_allow_changes(allow_changes)
    failures = []
    for step in sorted(checkpointer.all_steps(), reverse=True):
        resumed, reason = restore_step(checkpointer, step, target, metadata=metadata, allowed=allowed)
        if resumed is not None:
            for line in resumed.notices:
                _say(line)
            _say(f"Resuming from step {step} (input position {resumed.position}) in {checkpointer.directory}")
            return resumed
        moved = checkpointer.move_aside(step)
        _say(f"Checkpoint step {step} in {checkpointer.directory} is unreadable ({reason}); moved it to {moved.name}.")
        failures.append(f"step {step} ({reason}; now {moved.name})")
    if failures:
        raise NoReadableCheckpoint(
            f"no checkpoint in {checkpointer.directory} is readable: {'; '.join(failures)}. They are kept under "
            "their new names; running again starts from scratch, so first copy back one you can repair, or use a "
            "new --model_dir."
        )
    return None
