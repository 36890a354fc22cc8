"""FLAN 2022 (Flan-T5) composition: submixtures weighted against each other, each split into prompt variants.

The published recipe mixes five submixtures (flan2021 0.4, t0 0.32, niv2 0.2, cot 0.05, dialog 0.03) and
prompts each with a share of zero-shot/few-shot and with/without-options templates: flan2021 and t0 a
quarter each; cot, niv2 and dialog half zero-shot and half few-shot, with options. `compose` builds such a
mixture from whatever submixtures are registered; `register(context)` (a task module's entry) registers the
collections it_jax has (flan2021 and cot) and `flan2022` over them, renormalizing the published weights.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

import seqio

from it_jax.data import fewshot, mixing
from it_jax.data.context import TaskContext
from it_jax.data.tasks import TaskInfo
from mixtures import cot, flan2021

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


@dataclasses.dataclass(frozen=True)
class Submixture:
    """One submixture: its tasks (registered with `fewshot.VARIANTS`), weight, per-task cap and shares."""

    name: str
    tasks: Sequence[TaskInfo]
    weight: float
    cap: int
    variant_shares: Mapping[str, float]


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
                rate=context.rate(cap=sub.cap),
            )
            parts.append((variant_mixture.name, sub.weight / total * share))
    seqio.MixtureRegistry.remove(name)
    return seqio.MixtureRegistry.add(name, parts)


def register(context: TaskContext, name: str = "flan2022") -> seqio.Mixture:
    """Registers flan2021 and cot with the run's settings, then the FLAN 2022 composition over them."""
    available = {"flan2021": flan2021.register(context), "cot": cot.register(context)}
    return compose(
        name,
        [
            Submixture(sub, available[sub], PUBLISHED_WEIGHTS[sub], PER_TASK_CAPS[sub], PUBLISHED_SHARES[sub])
            for sub in available
        ],
        context,
    )
