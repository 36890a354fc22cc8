"""How a FLAN 2021 dataset is described: its TFDS source, cluster, preprocessor, templates and metrics.

A `DatasetSpec` is one registered task. Several tasks can belong to one of the paper's 62 datasets
(`dataset`): ANLI's three rounds, ARC Easy and Challenge, both directions of a translation pair.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from mixtures.registration import TemplatedDatasetSpec

Fields = dict[str, Any]

# The twelve FLAN 2021 task clusters.
CLUSTERS = (
    "nli",
    "reading_comprehension",
    "closed_book_qa",
    "commonsense",
    "coreference",
    "struct_to_text",
    "translation",
    "sentiment",
    "paraphrase",
    "summarization",
    "read_comp_with_commonsense",
    "misc",
)

# FLAN's overlap rules: holding out a cluster also removes these (and the relation holds both ways).
OVERLAPS: Mapping[str, Sequence[str]] = {
    "nli": ("paraphrase",),
    "reading_comprehension": ("read_comp_with_commonsense",),
    "commonsense": ("read_comp_with_commonsense",),
}

TRAIN_EXAMPLES = 30_000  # FLAN trims every training split to this many examples.


@dataclasses.dataclass(frozen=True, kw_only=True)
class DatasetSpec(TemplatedDatasetSpec):
    """One FLAN 2021 task (the shared fields: `TemplatedDatasetSpec`).

    Attributes:
      dataset: the paper's dataset this task belongs to, e.g. "anli" for "anli_r1".
      tfds_name: TFDS name with version, e.g. "glue/rte:2.0.0".
    """

    CLUSTERS: ClassVar[tuple[str, ...]] = CLUSTERS

    dataset: str
    tfds_name: str


def choose_option(candidates: Sequence[str], index: int) -> Fields:
    """Per-example `options` (whitespace collapsed, as tokenization does) and the `answer` at `index`."""
    options = [" ".join(candidate.split()) for candidate in candidates]
    if not 0 <= index < len(options):
        raise ValueError(f"answer index {index} is out of range for {len(options)} options: {options}")
    return {"options": options, "answer": options[index]}


def with_answers(candidates: Sequence[str]) -> Fields:
    """The `answer` (the first candidate) and `answers`: it, then every other distinct non-empty candidate.

    `answers` lists every acceptable answer of a multi-reference dataset (NQ's answers, TriviaQA's aliases,
    GEM's references); evaluation renders a reference target from each (`it_jax.data.tasks.references`).
    """
    if not candidates:
        raise ValueError("an example has no answer (empty list of answer candidates)")
    answer = candidates[0]
    return {"answer": answer, "answers": list(dict.fromkeys([answer, *(c for c in candidates[1:] if c)]))}
