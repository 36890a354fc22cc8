"""The evaluator: registered tasks' eval splits, read through seqio, scored template by template.

For every task, prompt variant (zero-/few-shot, with/without options) and answer template, the evaluator
reads the split as seqio renders and tokenizes it (the run's vocabulary), then
- classification tasks (answer options): rank classification, each option's log-likelihood given the
  input (optionally length-normalized), the highest wins;
- generation tasks: decoding with the predictor's options;
and applies the task's metrics against every reference. Each template is evaluated on the same examples, so
FLAN's mean-over-templates and best-template figures can be reported. Results are typed (`EvalResults`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import seqio
import tqdm

from it_jax.data import fewshot
from it_jax.data import tasks as tasks_lib
from it_jax.evaluation import baselines
from it_jax.evaluation import metrics as metrics_lib
from it_jax.evaluation import predictor as predictor_lib
from it_jax.evaluation.predictor import Predictor
from it_jax.evaluation.results import EvalResults, Prediction, TaskResult, TemplateResult


@dataclasses.dataclass(frozen=True)
class EvalJob:
    """One task evaluated in one prompt variant."""

    info: tasks_lib.TaskInfo
    variant: fewshot.Variant


def jobs_for(task_names: Sequence[str], variants: Sequence[str] | None = None) -> list[EvalJob]:
    """The (task, variant) pairs to evaluate: each named task in `variants`, or in the variant its name
    registers (e.g. `<task>_fs_opt`) when `variants` is None."""
    jobs = []
    for name in task_names:
        info = tasks_lib.task_info(name)
        chosen = [fewshot.variant_named(v) for v in variants] if variants else [tasks_lib.task_variant(name)]
        for variant in chosen:
            job = EvalJob(info, variant)
            if job not in jobs:
                jobs.append(job)
    return jobs


def _metrics(info: tasks_lib.TaskInfo) -> tuple[tasks_lib.MetricFn, ...]:
    if info.metrics:
        return info.metrics
    return (metrics_lib.accuracy,) if info.is_classification else (metrics_lib.exact_match,)


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


@dataclasses.dataclass
class Evaluator:
    """Evaluates registered tasks with one predictor.

    Attributes:
      vocabulary: the model's vocabulary (tasks are tokenized with it).
      task_feature_lengths: `{"inputs": N, "targets": M}`: inputs and targets are truncated as in training.
      length_normalize: rank options by mean instead of summed token log-likelihood.
      excluded: task name -> example indices (`idx`) to leave out (e.g. contaminated ones).
    """

    predictor: Predictor
    vocabulary: seqio.Vocabulary
    task_feature_lengths: Mapping[str, int]
    split: str = "validation"
    max_examples: int | None = None
    length_normalize: bool = False
    excluded: Mapping[str, set[int]] = dataclasses.field(default_factory=dict)
    _left_out: dict[str, int] = dataclasses.field(default_factory=dict, init=False)

    def examples(self, job: EvalJob, template: int) -> list[dict[str, Any]]:
        """The split's examples of one template as seqio renders and tokenizes them."""
        task = tasks_lib.eval_task(job.info, template, job.variant, self.vocabulary)
        dataset = task.get_dataset(
            dict(self.task_feature_lengths), split=self.split, shuffle=False, num_epochs=1, use_cached=False
        )
        skip = self.excluded.get(job.info.name, set())
        kept, left_out = [], 0
        for example in dataset.as_numpy_iterator():
            if int(example["idx"]) in skip:
                left_out += 1
            elif self.max_examples is None or len(kept) < self.max_examples:
                kept.append(example)
            else:
                break
        self._left_out[job.info.name] = left_out
        return kept

    def evaluate_template(self, job: EvalJob, template: int) -> tuple[TemplateResult, list[Prediction]]:
        """Metrics and per-example predictions of one template."""
        examples = self.examples(job, template)
        inputs = [ex["inputs"].tolist() for ex in examples]
        references = [[_text(r) for r in ex["references"]] for ex in examples]
        texts = [_text(ex["inputs_pretokenized"]) for ex in examples]
        if job.info.is_classification:
            predictions = self._rank(examples, inputs, texts, references)
        else:
            generated = predictor_lib.decode_texts(self.vocabulary, self.predictor.generate(inputs))
            predictions = [
                Prediction(int(ex["idx"]), text, refs, out)
                for ex, text, refs, out in zip(examples, texts, references, generated)
            ]
        scores: dict[str, float] = {}
        for metric in _metrics(job.info):
            scores.update(metric([p.targets for p in predictions], [p.prediction for p in predictions]))
        primary = _metrics(job.info)[0]
        majority = baselines.majority(predictions, primary, next(iter(scores))) if scores else None
        result = TemplateResult(template, len(predictions), scores, baselines.chance(predictions), majority)
        return result, predictions

    def _rank(
        self,
        examples: Sequence[Mapping[str, Any]],
        inputs: Sequence[list[int]],
        texts: Sequence[str],
        references: Sequence[list[str]],
    ) -> list[Prediction]:
        """Rank classification: each example's options scored given its input, the best one predicted."""
        options = [[_text(o) for o in ex["options"]] for ex in examples]
        length = self.task_feature_lengths["targets"]
        option_ids = [[predictor_lib.tokenize(self.vocabulary, o, length) for o in opts] for opts in options]
        scores = self.predictor.score_options(inputs, option_ids, normalize=self.length_normalize)
        chosen = predictor_lib.rank(scores)
        return [
            Prediction(int(ex["idx"]), text, refs, opts[c], opts, [float(s) for s in row])
            for ex, text, refs, opts, c, row in zip(examples, texts, references, options, chosen, scores)
        ]

    def evaluate(
        self,
        jobs: Sequence[EvalJob],
        *,
        on_template: Callable[[EvalJob, int, list[Prediction]], None] | None = None,
        checkpoint: str | None = None,
        step: int | None = None,
        trained_tasks: Collection[str] | None = None,
    ) -> EvalResults:
        """Evaluates every answer template of every job; `on_template(job, template, predictions)` is called
        after each (e.g. to write predictions). `trained_tasks` (the model's training tasks, if known) marks
        each result seen or held out."""
        work = [(job, k) for job in jobs for k in job.info.eval_templates]
        progress = tqdm.tqdm(work, desc="eval", unit="template", disable=None)
        by_job: dict[EvalJob, list[TemplateResult]] = {}
        for job, k in progress:
            progress.set_postfix(task=job.info.name, variant=job.variant.name, template=k)
            result, predictions = self.evaluate_template(job, k)
            by_job.setdefault(job, []).append(result)
            if on_template is not None:
                on_template(job, k, predictions)
        results = [
            TaskResult(
                job.info.name,
                job.info.cluster,
                job.variant.name,
                "rank" if job.info.is_classification else "generate",
                templates,
                None if trained_tasks is None else job.info.name in trained_tasks,
            )
            for job, templates in by_job.items()
        ]
        excluded = {name: n for name, n in self._left_out.items() if n and any(j.info.name == name for j in jobs)}
        return EvalResults(results, self.split, checkpoint, step, self.length_normalize, excluded)
