"""How a T0 (P3) dataset configuration is described: its Hugging Face source, cluster, preprocessor, templates.

A `T0Spec` is one registered task: one of the 27 dataset configurations FLAN 2022's t0 submix takes from P3.
The data are read through TFDS's `huggingface:` builders (`huggingface:<dataset>/<config>`), whose records
carry the Hugging Face `datasets` features; with a data directory, from the local mirror `hf__<dataset>__<config>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from it_jax.data.tasks import MetricFn
from mixtures.flan2021.spec import choose_option, with_answers

__all__ = ["CLUSTERS", "Fields", "T0Spec", "choose_by_text", "choose_option", "with_answers"]

Fields = dict[str, Any]

# T0's task types (Sanh et al., 2022) for the configurations of FLAN 2022's t0 submix.
CLUSTERS = (
    "extractive_qa",
    "multiple_choice_qa",
    "closed_book_qa",
    "sentiment",
    "topic_classification",
    "structure_to_text",
)


@dataclasses.dataclass(frozen=True)
class T0Spec:
    """One T0 dataset configuration.

    Attributes:
      name: task name without prefix, e.g. "dream" (registered as `t0_dream`).
      hf_name: Hugging Face dataset and config, e.g. "adversarial_qa/dbidaf" (TFDS `huggingface:<hf_name>`).
      cluster: one of `CLUSTERS`.
      preprocessor: Hugging Face example (str, int, list, dict) -> template fields.
      templates: (inputs, targets) patterns whose target is the task's answer (evaluated).
      inverted_templates: patterns whose target is not the answer (generate the question, explain): training only.
      splits: task split -> Hugging Face split, e.g. {"validation": "test"} where there is no validation split.
      options: static answer options; `()` when the preprocessor sets per-example `options`; None for generation.
      metrics: seqio-style metric functions.
    """

    name: str
    hf_name: str
    cluster: str
    preprocessor: Callable[[Fields], Fields]
    templates: Sequence[tuple[str, str]]
    inverted_templates: Sequence[tuple[str, str]] = ()
    splits: Mapping[str, str] = dataclasses.field(default_factory=lambda: {"train": "train", "validation": "validation"})
    options: Sequence[str] | None = None
    metrics: Sequence[MetricFn] = ()

    def __post_init__(self):
        if self.cluster not in CLUSTERS:
            raise ValueError(f"{self.name}: unknown cluster {self.cluster!r}; choose one of {CLUSTERS}")

    @property
    def tfds_name(self) -> str:
        """The TFDS name of the Hugging Face dataset, e.g. `huggingface:cos_e/v1.11`."""
        return f"huggingface:{self.hf_name}"


def choose_by_text(candidates: Sequence[str], answer: str) -> Fields:
    """Per-example `options` and the `answer`, given the answer's text (it must be one of the candidates)."""
    answer = " ".join(answer.split())
    options = [" ".join(candidate.split()) for candidate in candidates]
    if answer not in options:
        raise ValueError(f"answer {answer!r} is not among the options {options}")
    return choose_option(options, options.index(answer))
