"""Registering a collection's dataset specs (FLAN 2021's `DatasetSpec`, T0's `T0Spec`) as templated tasks."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from it_jax.data import fewshot, sources, tasks
from it_jax.data.context import TaskContext


Fields = dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TemplatedDatasetSpec:
    """One dataset of a collection, registered as a templated task (see `register_spec`).

    Attributes:
      name: task name without the collection's prefix, e.g. "rte" (registered as `flan2021_rte`).
      cluster: one of the collection's `CLUSTERS`.
      preprocessor: a source example (plain Python: str, int, list, dict) -> template fields.
      templates: (inputs, targets) patterns, written for it_jax, whose target is the task's answer (evaluated).
      inverted_templates: patterns that invert the task (e.g. write the question); training only.
      splits: task split -> the dataset's split, e.g. {"validation": "validation_matched"}.
      options: static answer options; `()` when the preprocessor sets per-example `options`; None for
        generation tasks.
      metrics: seqio-style metric functions.

    Each collection's subclass gives `CLUSTERS` and `tfds_name`, the TFDS dataset the task reads (or its mirror).
    """

    CLUSTERS: ClassVar[tuple[str, ...]] = ()

    name: str
    cluster: str
    preprocessor: Callable[[Fields], Fields]
    templates: Sequence[tuple[str, str]]
    inverted_templates: Sequence[tuple[str, str]] = ()
    splits: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"train": "train", "validation": "validation"})
    options: Sequence[str] | None = None
    metrics: Sequence[tasks.MetricFn] = ()

    def __post_init__(self):
        if self.cluster not in self.CLUSTERS:
            raise ValueError(f"{self.name}: unknown cluster {self.cluster!r}; choose one of {self.CLUSTERS}")


def register_spec(
    spec: TemplatedDatasetSpec, prefix: str, context: TaskContext, *, max_train_examples: int | None = None
) -> tasks.TaskInfo:
    """Registers `<prefix>_<spec.name>` in FLAN 2022's four prompt variants, reading the spec's TFDS dataset
    (or its local mirror in the run's data directory) under the spec's split names."""
    tfds_splits = tuple(dict.fromkeys(spec.splits.values()))
    source = sources.RenamedSplits(context.tfds(spec.tfds_name, splits=tfds_splits), spec.splits)
    return tasks.register_task(
        f"{prefix}_{spec.name}",
        source=source,
        templates=spec.templates,
        inverted_templates=spec.inverted_templates,
        cluster=spec.cluster,
        preprocessor=spec.preprocessor,
        options=spec.options,
        metrics=spec.metrics,
        max_train_examples=max_train_examples,
        variants=fewshot.VARIANTS,
        context=context,
    )
