"""Mixtures: examples-proportional rates with a per-task cap, and held-out-cluster mixtures.

FLAN mixes each task at `rate = min(num_train_examples, cap)` (optionally `rate ** (1 / temperature)`) and,
for each task cluster, trains on every other cluster and evaluates zero-shot on the held-out one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import seqio

from it_jax.data import tasks as tasks_lib

RateFn = Callable[[seqio.Task], float]

DEFAULT_CAP = 3000  # FLAN's per-task cap on the examples-proportional rate
INVERSION_WEIGHT = 0.3  # FLAN 2022 mixes the input-inversion tasks of cot and dialog at 0.3 of their rate


def capped_rate(*, cap: int | None = DEFAULT_CAP, temperature: float = 1.0, split: str = "train") -> RateFn:
    """Examples-proportional mixing rate `min(examples, cap) ** (1 / temperature)` (seqio's rate function)."""
    return functools.partial(
        seqio.mixing_rate_num_examples, maximum=cap, temperature=temperature, split=split
    )


def inversions_weighted(rate: RateFn, *, marker: str = "_inverted", weight: float = INVERSION_WEIGHT) -> RateFn:
    """`rate`, times `weight` for the tasks whose name contains `marker` (input-inversion tasks)."""

    def weighted(task: seqio.Task) -> float:
        return rate(task) * (weight if marker in task.name else 1.0)

    return weighted


def register_mixture(name: str, task_names: Sequence[str], *, rate: RateFn | float) -> seqio.Mixture:
    """Registers (or replaces) a `seqio.Mixture` of `task_names` sampled at `rate`."""
    if not task_names:
        raise ValueError(f"mixture {name!r} has no tasks")
    seqio.MixtureRegistry.remove(name)
    return seqio.MixtureRegistry.add(name, list(task_names), default_rate=rate)


def task_names(mixture_or_task: str) -> list[str]:
    """The names of the seqio tasks a mixture samples from (through nested mixtures), or the task itself."""
    return [task.name for task in seqio.get_subtasks(seqio.get_mixture_or_task(mixture_or_task))]


def heldout_clusters(cluster: str, overlaps: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """The clusters removed when holding out `cluster`: itself and those it overlaps with (both ways)."""
    removed = {cluster, *overlaps.get(cluster, ())}
    removed.update(c for c, others in overlaps.items() if cluster in others)
    return frozenset(removed)


def register_heldout_mixtures(
    prefix: str,
    infos: Sequence[tasks_lib.TaskInfo],
    *,
    rate: RateFn | float,
    overlaps: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, str]:
    """Registers `<prefix>_all` and, per cluster, `<prefix>_heldout_<cluster>` (all other clusters).

    Returns:
      cluster -> name of its held-out training mixture.
    """
    overlaps = overlaps or {}
    register_mixture(f"{prefix}_all", [info.name for info in infos], rate=rate)
    mixtures = {}
    for cluster in sorted({info.cluster for info in infos}):
        removed = heldout_clusters(cluster, overlaps)
        kept = [info.name for info in infos if info.cluster not in removed]
        mixtures[cluster] = f"{prefix}_heldout_{cluster}"
        register_mixture(mixtures[cluster], kept, rate=rate)
    return mixtures


def mixture_shares(mixture: seqio.Mixture) -> dict[str, float]:
    """Each task's expected share of the mixture's examples (rates normalized to sum to 1)."""
    rates = {task.name: mixture.get_rate(task) for task in mixture.tasks}
    total = sum(rates.values())
    return {name: rate / total for name, rate in rates.items()}
