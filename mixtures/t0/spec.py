"""How a T0 (P3) dataset configuration is described: its Hugging Face source, cluster, preprocessor, templates.

A `T0Spec` is one registered task: one of the 27 dataset configurations FLAN 2022's t0 submix takes from P3.
The data are read through TFDS's `huggingface:` builders (`huggingface:<dataset>/<config>`), whose records
carry the Hugging Face `datasets` features; with a data directory, from the local mirror `hf__<dataset>__<config>`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

from mixtures.flan2021.spec import choose_option, with_answers
from mixtures.registration import TemplatedDatasetSpec

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class T0Spec(TemplatedDatasetSpec):
    """One T0 dataset configuration (the shared fields: `TemplatedDatasetSpec`; `splits` maps to the Hugging Face
    split names, e.g. {"validation": "test"} where there is no validation split).

    Attributes:
      hf_name: Hugging Face dataset and config, e.g. "adversarial_qa/dbidaf" (TFDS `huggingface:<hf_name>`).
    """

    CLUSTERS: ClassVar[tuple[str, ...]] = CLUSTERS

    hf_name: str

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
