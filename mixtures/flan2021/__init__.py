"""The FLAN 2021 collection: 62 datasets in 12 clusters, registered as SeqIO tasks and held-out mixtures.

`register(context)` registers, for every `DatasetSpec`, `flan2021_<task>` (zero-shot with options), its
variants `_zs_noopt`, `_fs_opt`, `_fs_noopt` and its per-template tasks; the training mixtures
`flan2021_all` and `flan2021_heldout_<cluster>` (FLAN's overlap rules; examples-proportional with the run's
cap, 3,000 by default: `run_config.cap`); and `flan2021_eval_<cluster>` over the validation splits,
uncapped, with the rank-classification `_scoring` task of every classification task. Tasks read TFDS, or
its local JSONL mirrors when the run has a data directory (`run_config.data_dir`, `--data_dir`).
"""

from __future__ import annotations

from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from mixtures.registration import register_spec
from mixtures.flan2021 import (
    closed_book_qa,
    commonsense,
    coreference,
    misc,
    nli,
    paraphrase,
    read_comp_with_commonsense,
    reading_comprehension,
    sentiment,
    struct_to_text,
    summarization,
    translation,
)
from mixtures.flan2021.spec import CLUSTERS, OVERLAPS, TRAIN_EXAMPLES, DatasetSpec

PREFIX = "flan2021"

SPECS: tuple[DatasetSpec, ...] = (
    *nli.SPECS,
    *reading_comprehension.SPECS,
    *closed_book_qa.SPECS,
    *commonsense.SPECS,
    *coreference.SPECS,
    *struct_to_text.SPECS,
    *translation.SPECS,
    *sentiment.SPECS,
    *paraphrase.SPECS,
    *summarization.SPECS,
    *read_comp_with_commonsense.SPECS,
    *misc.SPECS,
)


HELDOUT_MIXTURES: dict[str, str] = {cluster: f"{PREFIX}_heldout_{cluster}" for cluster in CLUSTERS}
EVAL_MIXTURES: dict[str, str] = {cluster: f"{PREFIX}_eval_{cluster}" for cluster in CLUSTERS}


def register(context: TaskContext) -> tuple[tasks.TaskInfo, ...]:
    """Registers the collection's tasks and mixtures with the run's settings; returns the tasks."""
    infos = tuple(register_spec(spec, PREFIX, context, max_train_examples=TRAIN_EXAMPLES) for spec in SPECS)
    mixing.register_heldout_mixtures(PREFIX, infos, rate=context.rate(), overlaps=OVERLAPS)
    for cluster, name in EVAL_MIXTURES.items():
        members = [info for info in infos if info.cluster == cluster]
        scored = [info.scoring_task_name if info.is_classification else info.name for info in members]
        mixing.register_mixture(name, scored, rate=context.rate(cap=None, split="validation"))
    return infos
