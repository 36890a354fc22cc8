"""The embedded synthetic collection: 12 code-generated tasks in 6 clusters, offline and deterministic.

`register(context)` registers every task (`synthetic_<task>` and its per-template tasks) and the
mixtures `synthetic_all` and `synthetic_heldout_<cluster>`, mixed examples-proportionally with each task
capped at the run's cap (`run_config.cap`, default 3,000) training examples. Train splits range from
1,000 to 10,000 examples (so some tasks exceed the cap); every validation split has 100.
"""

from __future__ import annotations

import dataclasses

from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from it_jax.evaluation import metrics
from mixtures.synthetic import generators
from mixtures.synthetic.templates import TEMPLATES

VALIDATION_SIZE = 100
PREFIX = "synthetic"


@dataclasses.dataclass(frozen=True)
class SyntheticTask:
    """One generated task: its cluster, example function, train size, and answer options if it classifies.

    `options` is None for generation tasks, the static options of a classification task, or `()` when each
    example carries its own `options` field.
    """

    key: str
    cluster: str
    example_fn: generators.ExampleFn
    train_size: int
    options: tuple[str, ...] | None = None

    @property
    def name(self) -> str:
        return f"{PREFIX}_{self.key}"


SPECS = (
    SyntheticTask("addition", "arithmetic", generators.addition, 10_000),
    SyntheticTask("larger_number", "arithmetic", generators.larger_number, 2_000, options=()),
    SyntheticTask("reverse_word", "string_ops", generators.reverse_word, 5_000),
    SyntheticTask("count_letter", "string_ops", generators.count_letter, 1_500),
    SyntheticTask("sort_list", "list_ops", generators.sort_list, 4_000),
    SyntheticTask("list_extremes", "list_ops", generators.list_extremes, 1_000),
    SyntheticTask("longer_word", "comparison", generators.longer_word, 2_500, options=()),
    SyntheticTask("alphabetical_order", "comparison", generators.alphabetical_order, 6_000, options=("yes", "no")),
    SyntheticTask(
        "item_inference", "entailment", generators.item_inference, 8_000,
        options=("yes", "it is not possible to tell", "no"),
    ),
    SyntheticTask("syllogism", "entailment", generators.syllogism, 3_000, options=("yes", "no", "maybe")),
    SyntheticTask("caesar_cipher", "translation", generators.caesar_cipher, 7_000),
    SyntheticTask("pig_latin", "translation", generators.pig_latin_translation, 1_200),
)


CLUSTERS: tuple[str, ...] = tuple(sorted({spec.cluster for spec in SPECS}))
ALL_MIXTURE = f"{PREFIX}_all"
HELDOUT_MIXTURES: dict[str, str] = {cluster: f"{PREFIX}_heldout_{cluster}" for cluster in CLUSTERS}


def _register(spec: SyntheticTask, context: TaskContext) -> tasks.TaskInfo:
    sizes = {"train": spec.train_size, "validation": VALIDATION_SIZE}
    return tasks.register_task(
        spec.name,
        source=generators.split_generator(spec.name, spec.example_fn, sizes),
        templates=TEMPLATES[spec.key],
        cluster=spec.cluster,
        options=spec.options,
        metrics=[metrics.exact_match if spec.options is None else metrics.accuracy],
        context=context,
    )


def register(context: TaskContext) -> tuple[tasks.TaskInfo, ...]:
    """Registers the collection's tasks and mixtures with the run's settings; returns the tasks."""
    infos = tuple(_register(spec, context) for spec in SPECS)
    mixing.register_heldout_mixtures(PREFIX, infos, rate=context.rate())
    return infos
