"""FLAN 2022 (Flan-T5) composition: submixtures weighted against each other, each split into prompt variants.

The published recipe mixes five submixtures (flan2021 0.4, t0 0.32, niv2 0.2, cot 0.05, dialog 0.03) and
prompts each with a share of zero-shot/few-shot and with/without-options templates: flan2021 and t0 a
quarter each; cot, niv2 and dialog half zero-shot and half few-shot, with options. Caps are rate ceilings
(a task mixes at min(examples, cap)); the input-inversion tasks of cot and dialog mix at 0.3 of that.

`compose` builds such a mixture from submixtures; `register(context)` (a task module's entry: `--task_module
mixtures.flan2022`) registers the five collections and `flan2022` over them. A submix whose data is not there
(NIv2 needs a clone of the natural-instructions repository) is an error naming it, unless it is dropped
explicitly: `register(context, drop=("niv2",))` from a task module of one's own renormalizes the others'
weights, and `submix_shares` (what `it-jax-inspect flan2022` prints) shows it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import seqio

from it_jax import errors
from it_jax.data import fewshot, mixing
from it_jax.data.context import RateFn, TaskContext
from it_jax.data.tasks import TaskInfo
from mixtures import cot, dialog, flan2021, natural_instructions, t0

PUBLISHED_WEIGHTS = {"flan2021": 0.4, "t0": 0.32, "niv2": 0.2, "cot": 0.05, "dialog": 0.03}
PER_TASK_CAPS = {"flan2021": 30_000, "t0": 20_000, "niv2": 5_000, "cot": 100_000, "dialog": 200_000}

_BY_SUFFIX = {variant.suffix: variant for variant in fewshot.VARIANTS}
FOUR_WAY = {"": 0.25, "_zs_noopt": 0.25, "_fs_opt": 0.25, "_fs_noopt": 0.25}
ZERO_AND_FEW_SHOT = {"": 0.5, "_fs_opt": 0.5}
PUBLISHED_SHARES = {
    "flan2021": FOUR_WAY,
    "t0": FOUR_WAY,
    "niv2": ZERO_AND_FEW_SHOT,
    "cot": ZERO_AND_FEW_SHOT,
    "dialog": ZERO_AND_FEW_SHOT,
}


_MODULES = {"flan2021": flan2021, "t0": t0, "niv2": natural_instructions, "cot": cot, "dialog": dialog}
_INVERSION_RATES = {"cot": cot.rate, "dialog": dialog.rate}  # their input-inversion tasks mix at 0.3


@dataclasses.dataclass(frozen=True)
class Submixture:
    """One submixture: its tasks (registered with `fewshot.VARIANTS`), weight, per-task cap and shares.

    `rate` replaces the capped examples-proportional rate inside the submixture (e.g. dialog's, which weights
    its inversion tasks at 0.3).
    """

    name: str
    tasks: Sequence[TaskInfo]
    weight: float
    cap: int
    variant_shares: Mapping[str, float]
    rate: RateFn | None = None


@dataclasses.dataclass(frozen=True)
class SubmixShare:
    """One submixture's share of a registered composition, beside its published weight."""

    name: str
    share: float
    published: float
    tasks: int
    dropped: bool = False


def compose(name: str, submixtures: Sequence[Submixture], context: TaskContext) -> seqio.Mixture:
    """Registers `name`: each submixture's variants as `<name>_<sub><suffix>` mixtures, weighted together.

    Inside a variant mixture tasks are mixed examples-proportionally up to the submixture's cap; the
    variant mixture's weight in `name` is `weight * share`, with weights normalized over `submixtures`
    (`context` gives the temperature).
    """
    total = sum(sub.weight for sub in submixtures)
    parts = []
    for sub in submixtures:
        if abs(sum(sub.variant_shares.values()) - 1.0) > 1e-6:
            raise ValueError(f"{name}: the variant shares of {sub.name!r} must sum to 1, got {sub.variant_shares}")
        for suffix, share in sub.variant_shares.items():
            if suffix not in _BY_SUFFIX:
                raise ValueError(f"{name}: unknown variant suffix {suffix!r}; known: {sorted(_BY_SUFFIX)}")
            variant_mixture = mixing.register_mixture(
                f"{name}_{sub.name}{suffix or '_zs_opt'}",
                [f"{info.name}{suffix}" for info in sub.tasks],
                rate=sub.rate or context.rate(cap=sub.cap),
            )
            parts.append((variant_mixture.name, sub.weight / total * share))
    seqio.MixtureRegistry.remove(name)
    return seqio.MixtureRegistry.add(name, parts)


def register(context: TaskContext, name: str = "flan2022", drop: Sequence[str] = ()) -> seqio.Mixture:
    """Registers the five submixes (all but `drop`) with the run's settings, then `name` over them at the
    published weights (renormalized over those kept)."""
    unknown = sorted(set(drop) - set(PUBLISHED_WEIGHTS))
    if unknown:
        raise errors.ConfigError(f"{name}: cannot drop {unknown}: the submixes are {list(PUBLISHED_WEIGHTS)}")
    submixtures = []
    for sub, module in _MODULES.items():
        if sub in drop:
            continue
        try:
            infos = module.register(context)
        except errors.RunError as error:
            raise errors.ConfigError(
                f"{name}: the {sub} submix is unavailable: {error.message} To train without it, register "
                f"flan2022.register(context, drop=({sub!r},)) from a task module of your own (the other "
                "submixes' weights are renormalized)."
            ) from error
        rate = _INVERSION_RATES[sub](context) if sub in _INVERSION_RATES else None
        shares = PUBLISHED_SHARES[sub]
        submixtures.append(Submixture(sub, infos, PUBLISHED_WEIGHTS[sub], PER_TASK_CAPS[sub], shares, rate))
    return compose(name, submixtures, context)


def submix_shares(name: str) -> list[SubmixShare] | None:
    """Each published submix's share of the registered composition `name` (summed over its tasks in every
    prompt variant), or None when `name` is not a composition of `compose`."""
    registered = set(seqio.MixtureRegistry.names())
    parts = {
        sub: [part for suffix in _BY_SUFFIX if (part := f"{name}_{sub}{suffix or '_zs_opt'}") in registered]
        for sub in PUBLISHED_WEIGHTS
    }
    if name not in registered or not any(parts.values()):
        return None
    mixture = seqio.MixtureRegistry.get(name)
    rates = {task.name: mixture.get_rate(task) for task in mixture.tasks}
    total = sum(rates.values())
    rows = []
    for sub, published in PUBLISHED_WEIGHTS.items():
        tasks = {task.name for part in parts[sub] for task in seqio.MixtureRegistry.get(part).tasks}
        share = sum(rates.get(task, 0.0) for task in tasks) / total
        rows.append(SubmixShare(sub, share, published, len(tasks), dropped=not parts[sub]))
    return rows
