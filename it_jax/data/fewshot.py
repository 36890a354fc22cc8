"""Prompt variants: zero- or few-shot, with or without answer options (FLAN 2022's four template types).

A few-shot input is a handful of solved exemplars from the training split, rendered with the same template
as the query, each as "inputs\\ntargets", separated by blank lines, then the query's inputs. Exemplars are
dropped (last chosen first) until the whole input fits the character budget.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Sequence

EXEMPLAR_SEPARATOR = "\n\n"


@dataclasses.dataclass(frozen=True)
class Variant:
    """How a task's examples are prompted; `suffix` is appended to the task name of the variant's task."""

    suffix: str
    with_options: bool = True
    num_shots: int = 0
    max_input_chars: int = 2048

    @property
    def few_shot(self) -> bool:
        return self.num_shots > 0

    @property
    def name(self) -> str:
        """"zs_opt", "zs_noopt", "fs_opt" or "fs_noopt" (the zero-shot-with-options variant has no suffix)."""
        return self.suffix.lstrip("_") or "zs_opt"


ZERO_SHOT = Variant("")
VARIANTS = (
    ZERO_SHOT,
    Variant("_zs_noopt", with_options=False),
    Variant("_fs_opt", num_shots=3),
    Variant("_fs_noopt", with_options=False, num_shots=3),
)


def variant_named(name: str) -> Variant:
    """The variant called `name` (see `Variant.name`)."""
    for variant in VARIANTS:
        if variant.name == name:
            return variant
    raise ValueError(f"unknown prompt variant {name!r}; choose from {[v.name for v in VARIANTS]}")


def choose_exemplars(key: str, index: int, *, pool_size: int, num_shots: int, exclude: int | None) -> list[int]:
    """Deterministically picks `num_shots` distinct pool indices for example `index` (never `exclude`)."""
    candidates = [i for i in range(pool_size) if i != exclude]
    rng = random.Random(zlib.crc32(f"{key}:{index}".encode()))
    return rng.sample(candidates, min(num_shots, len(candidates)))


def join_exemplars(exemplars: Sequence[tuple[str, str]], query: str, *, max_chars: int) -> str:
    """The few-shot input: as many exemplars as fit in `max_chars`, then the query."""
    shots = [f"{inputs}\n{targets}" for inputs, targets in exemplars]
    while shots and len(EXEMPLAR_SEPARATOR.join([*shots, query])) > max_chars:
        shots.pop()
    return EXEMPLAR_SEPARATOR.join([*shots, query])
