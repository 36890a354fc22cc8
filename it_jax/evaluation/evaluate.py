"""One evaluation end to end: choose tasks, score them with a model, write the report (process 0 only)."""

from __future__ import annotations

import pathlib
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import jax
import seqio
from jax.sharding import Mesh

from it_jax import errors
from it_jax import sharding as sharding_lib
from it_jax.data import chat_tasks, mixing, pipeline
from it_jax.data import tasks as tasks_lib
from it_jax.data.layout import PromptLayout
from it_jax.evaluation import report
from it_jax.evaluation.evaluator import Evaluator, jobs_for
from it_jax.evaluation.predictor import Predictor
from it_jax.evaluation.results import EvalResults
from it_jax.models.spec import ModelSpec


def select_tasks(
    *, cluster: str | None = None, mixture: str | None = None, tasks: Sequence[str] = ()
) -> list[str]:
    """Task names from a held-out `cluster`, a seqio `mixture`'s tasks, or an explicit list (in that order
    of precedence: explicit tasks win); raises naming what is known when the choice is empty or unknown
    (a `ConfigError`)."""
    if tasks:
        for name in tasks:
            _check_evaluable(name)
        return list(tasks)
    if mixture:
        try:
            provider = seqio.get_mixture_or_task(mixture)
        except ValueError as error:
            raise errors.ConfigError(f"no mixture or task {mixture!r} is registered") from error
        names = [task.name for task in getattr(provider, "tasks", [provider])]
        for name in names:
            _check_evaluable(name)
        return names
    if cluster is None:
        raise errors.ConfigError("nothing to evaluate: give tasks, a mixture or a cluster")
    names = [info.name for info in tasks_lib.registered_tasks(cluster)]
    if not names:
        known = sorted({info.cluster for info in tasks_lib.registered_tasks()})
        raise errors.ConfigError(f"cluster {cluster!r} has no registered tasks; known clusters: {known}")
    return names


def _check_evaluable(name: str) -> None:
    """Raises a `ConfigError` unless `name` is a templated task the evaluator can score."""
    if chat_tasks.chat_task_info(name) is not None:
        raise errors.ConfigError(
            f"{name!r} is a chat task, which the evaluator does not score (it scores templated tasks): follow its "
            f"held-out assistant-token loss with train_run.eval_mixture (eval/{name}/loss), or generate replies "
            "with it-jax-chat --input_file"
        )
    try:
        tasks_lib.task_info(name)
    except KeyError as error:
        raise errors.ConfigError(error.args[0]) from None


def trained_task_names(mixture: str | Sequence[str]) -> set[str]:
    """The instruction tasks (by `TaskInfo` name, whatever the prompt variant) that a training mixture, or a
    list of mixtures and tasks, samples from."""
    names = [mixture] if isinstance(mixture, str) else list(mixture)
    known = set(tasks_lib.instruction_task_names())
    return {tasks_lib.task_info(task).name for name in names for task in mixing.task_names(name) if task in known}


def evaluate_model(
    *,
    spec: ModelSpec,
    params: Any,
    vocabulary: seqio.Vocabulary,
    layout: PromptLayout,
    task_names: Sequence[str],
    task_feature_lengths: Mapping[str, int],
    output_dir: str | pathlib.Path,
    title: str,
    variants: Sequence[str] | None = None,
    split: str = "validation",
    max_examples: int | None = None,
    batch_size: int = 64,
    decode: Mapping[str, Any] | None = None,
    length_normalize: bool = False,
    excluded: Mapping[str, set[int]] | None = None,
    mesh: Mesh | None = None,
    rules: sharding_lib.AxisRules = sharding_lib.DEFAULT_RULES,
    checkpoint: str | None = None,
    step: int | None = None,
    trained_tasks: Collection[str] | None = None,
) -> tuple[EvalResults, str]:
    """Evaluates `task_names` (every answer template, each variant); process 0 writes `results.json`,
    `results.md` and `predictions/` under `output_dir`. Returns the results and the markdown report.
    `trained_tasks` (the model's training tasks, e.g. `trained_task_names(mixture)`) marks each task seen or
    held out, for the report's verdict."""
    predictor = Predictor(
        spec=spec,
        params=params,
        layout=layout,
        eos_id=vocabulary.eos_id,
        batch_size=batch_size,
        max_decode_length=task_feature_lengths["targets"],
        decode=dict(decode or {}),
        mesh=mesh,
        rules=rules,
    )
    evaluator = Evaluator(
        predictor,
        vocabulary,
        task_feature_lengths,
        split=split,
        max_examples=max_examples,
        length_normalize=length_normalize,
        excluded=dict(excluded or {}),
    )
    writer = report.predictions_writer(output_dir) if jax.process_index() == 0 else None
    jobs = jobs_for(task_names, variants)
    with pipeline.data_errors():
        results = evaluator.evaluate(
            jobs, on_template=writer, checkpoint=checkpoint, step=step, trained_tasks=trained_tasks
        )
    markdown = report.markdown(results, title=title)
    if jax.process_index() == 0:
        report.write_report(results, output_dir, title=title)
    return results, markdown
