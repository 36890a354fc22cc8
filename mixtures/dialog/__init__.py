"""The FLAN 2022 dialog submix: (dialog context, next turn) tasks, their input inversions, and `dialog_all`.

`register(context)` registers, for wiki_dialog (TFDS `wiki_dialog:1.0.0`), qrecc (TFDS `q_re_cc:1.0.0`, turns
after the sixth) and Taskmaster (TM-4 2024, the mirror `<data_dir>/taskmaster__tm4_2024/train.jsonl`):
  * `dialog_<source>`: predict the next turn (10 templates), with its `_fs_opt` few-shot variant;
  * `dialog_<source>_inverted`: given the reply, write the dialog or the turn before it (10 templates), also
    with `_fs_opt`;
and the mixture `dialog_all`: examples-proportional up to 200,000 per task, inversion tasks at 0.3 of that.
Cutting and rendering are in `mixtures.dialog.dialogs`. Without a data directory the sources are read from
TFDS itself; Taskmaster is not a TFDS dataset, so its task needs the mirror.
"""

from __future__ import annotations

from it_jax.data import fewshot, mixing, tasks
from it_jax.data.context import RateFn, TaskContext
from it_jax.evaluation import metrics
from mixtures.dialog import dialogs
from mixtures.dialog.templates import INVERSION, NEXT_TURN

PREFIX = "dialog"
CLUSTER = "dialog"
CAP = 200_000  # FLAN 2022's per-task cap for the dialog submix.
INVERSION_RATE = mixing.INVERSION_WEIGHT  # the inversion tasks' rate relative to their next-turn task's
INVERTED_SUFFIX = "_inverted"
MIXTURE = f"{PREFIX}_all"
VARIANTS = (fewshot.ZERO_SHOT, fewshot.variant_named("fs_opt"))  # FLAN 2022: half zero-shot, half few-shot

# source -> (TFDS name, splits, turns of a record, cut rule, which records are used)
SOURCES = {
    "wiki_dialog": ("wiki_dialog:1.0.0", ("train", "validation"), dialogs.wiki_dialog_turns, dialogs.odd_cut, None),
    "qrecc": ("q_re_cc:1.0.0", ("train", "test"), dialogs.qrecc_turns, dialogs.odd_cut, dialogs.qrecc_late_turn),
    "taskmaster": ("taskmaster/tm4_2024", ("train",), dialogs.taskmaster_turns, dialogs.uniform_cut, None),
}


def dialog_source(name: str, context: TaskContext) -> dialogs.DialogSource:
    """The (context, next turn) examples of source `name`, read with the run's data directory."""
    tfds_name, splits, turns, cut, keep = SOURCES[name]
    return dialogs.DialogSource(f"{PREFIX}_{name}", context.tfds(tfds_name, splits=splits), turns, cut, keep)


def _register(name: str, templates, metric_fns, source: dialogs.DialogSource, context: TaskContext) -> tasks.TaskInfo:
    return tasks.register_task(
        name,
        source=source,
        templates=templates,
        cluster=CLUSTER,
        metrics=metric_fns,
        variants=VARIANTS,
        context=context,
    )


def rate(context: TaskContext) -> RateFn:
    """Examples-proportional up to `CAP`, scaled by `INVERSION_RATE` for the inversion tasks."""
    return mixing.inversions_weighted(context.rate(cap=CAP), marker=INVERTED_SUFFIX, weight=INVERSION_RATE)


def register(context: TaskContext) -> tuple[tasks.TaskInfo, ...]:
    """Registers the next-turn and inversion task of every source, and `dialog_all`; returns the tasks."""
    infos = []
    for name in SOURCES:
        source = dialog_source(name, context)
        infos.append(_register(f"{PREFIX}_{name}", NEXT_TURN, (metrics.bleu, metrics.rouge), source, context))
        infos.append(_register(f"{PREFIX}_{name}{INVERTED_SUFFIX}", INVERSION, (metrics.rouge,), source, context))
    mixing.register_mixture(MIXTURE, [info.name for info in infos], rate=rate(context))
    return tuple(infos)
