"""The FLAN 2022 t0 submix: the 27 P3 dataset configurations not already in FLAN 2021, plus `t0_all`.

`register(context)` registers, for every `T0Spec`, `t0_<name>` (zero-shot with options), its variants
`_zs_noopt`, `_fs_opt`, `_fs_noopt` (FLAN 2022 uses all four for t0) and its per-template tasks, and the
mixture `t0_all`, examples-proportional with FLAN 2022's t0 cap (20,000) as each task's rate ceiling.
Templates are written for it_jax in the spirit of P3 (answer, pick the option, generate the question,
explain, ...). Tasks read the Hugging Face datasets through TFDS (`huggingface:<dataset>/<config>`), or
their local JSONL mirrors `<data_dir>/hf__<dataset>[__<config>]/<split>.jsonl` when the run has a data
directory (`run_config.data_dir`, `--data_dir`).
"""

from __future__ import annotations

from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from mixtures.registration import register_spec
from mixtures.t0 import classification, closed_book_qa, extractive_qa, generation, multiple_choice_qa, science_qa
from mixtures.t0.spec import CLUSTERS, T0Spec

PREFIX = "t0"
CAP = 20_000  # FLAN 2022's per-task rate ceiling for the t0 submix.
MIXTURE = f"{PREFIX}_all"

SPECS: tuple[T0Spec, ...] = (
    *extractive_qa.SPECS,
    *multiple_choice_qa.SPECS,
    *science_qa.SPECS,
    *closed_book_qa.SPECS,
    *classification.SPECS,
    *generation.SPECS,
)

__all__ = ["CAP", "CLUSTERS", "MIXTURE", "PREFIX", "SPECS", "register"]


def register(context: TaskContext) -> tuple[tasks.TaskInfo, ...]:
    """Registers the submix's tasks and `t0_all` (rates capped at `CAP`) with the run's settings; returns the tasks."""
    infos = tuple(register_spec(spec, PREFIX, context) for spec in SPECS)
    mixing.register_mixture(MIXTURE, [info.name for info in infos], rate=context.rate(cap=CAP))
    return infos
