"""Typed evaluation results: per example, per template, per task and variant, and a whole evaluation.

Plain dataclasses with JSON round trips (no TensorFlow), read by reports, the experiment summary and tests.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Prediction:
    """One evaluated example: what the model saw, every reference, and its answer."""

    idx: int
    inputs: str
    targets: list[str]
    prediction: str
    options: list[str] = dataclasses.field(default_factory=list)
    option_scores: list[float] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class TemplateResult:
    """Metrics of one template (percent) on `num_examples` examples, with the primary metric's baselines on
    the same examples (percent; see `it_jax.evaluation.baselines`): `chance` (a random option; None for
    generation) and `majority` (the best constant answer; None where not computed)."""

    template: int
    num_examples: int
    metrics: dict[str, float]
    chance: float | None = None
    majority: float | None = None


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """One task in one prompt variant: its per-template results, their mean and the best template."""

    task: str
    cluster: str
    variant: str
    scoring: str  # "rank" or "generate"
    templates: list[TemplateResult]
    seen: bool | None = None  # whether the evaluated model trained on this task; None: not known


    @property
    def metric_names(self) -> list[str]:
        return list(self.templates[0].metrics) if self.templates else []

    @property
    def primary_metric(self) -> str:
        """The first metric the task reports (the one tables show)."""
        return self.metric_names[0]

    @property
    def mean(self) -> dict[str, float]:
        return {m: sum(t.metrics[m] for t in self.templates) / len(self.templates) for m in self.metric_names}

    @property
    def best(self) -> dict[str, float]:
        return {m: max(t.metrics[m] for t in self.templates) for m in self.metric_names}

    @property
    def chance(self) -> float | None:
        """The templates' mean chance baseline of the primary metric (None for generation, or if unknown)."""
        return _mean_or_none([t.chance for t in self.templates])

    @property
    def majority(self) -> float | None:
        """The templates' mean majority-class baseline of the primary metric (None if unknown)."""
        return _mean_or_none([t.majority for t in self.templates])

    def to_json(self) -> dict[str, Any]:
        extra = {"mean": self.mean, "best": self.best, "chance": self.chance, "majority": self.majority}
        return {**dataclasses.asdict(self), **extra}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskResult:
        templates = [TemplateResult(**t) for t in data["templates"]]
        return cls(data["task"], data["cluster"], data["variant"], data["scoring"], templates, data.get("seen"))


def _mean_or_none(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


@dataclasses.dataclass(frozen=True)
class EvalResults:
    """Everything one evaluation measured, with what was evaluated."""

    tasks: list[TaskResult]
    split: str
    checkpoint: str | None = None
    step: int | None = None
    length_normalized: bool = False
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)  # task -> examples left out

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["tasks"] = [t.to_json() for t in self.tasks]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> EvalResults:
        fields = {k: v for k, v in data.items() if k != "tasks"}
        return cls(tasks=[TaskResult.from_json(t) for t in data["tasks"]], **fields)
