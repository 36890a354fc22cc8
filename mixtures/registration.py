"""Registering a collection's dataset specs (FLAN 2021's `DatasetSpec`, T0's `T0Spec`) as templated tasks."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from it_jax.data import fewshot, sources, tasks
from it_jax.data.context import TaskContext


class TemplatedDatasetSpec(Protocol):
    """What a collection's spec gives registration: its TFDS source, templates and task facts."""

    name: str
    tfds_name: str
    cluster: str
    preprocessor: Callable[[dict[str, Any]], dict[str, Any]]
    templates: Sequence[tuple[str, str]]
    inverted_templates: Sequence[tuple[str, str]]
    splits: Mapping[str, str]
    options: Sequence[str] | None
    metrics: Sequence[tasks.MetricFn]


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
