"""Registering templated instruction tasks as ordinary `seqio.Task`s.

`register_task("my_nli", ...)` registers, for a dataset with N templates:
  * `my_nli`: every example rendered with one template, spread round-robin (example j gets template j mod N),
  * `my_nli_template_<k>` for k in 0..N-1: every example rendered with template k.
and, for classification tasks, `my_nli_scoring` (rank classification: one example per answer option with
`idx` and `is_correct`). Any SeqIO user can consume them (`seqio.get_mixture_or_task("my_nli")`). The FLAN-specific
facts about a task (cluster, templates, options, metrics) are kept in a `TaskInfo`, which the seqio task's
source carries: `task_info(name)` reads it from seqio's registry, the only registry.

Each task yields the features `inputs`, `targets` (tokenized, EOS appended, with `*_pretokenized` copies),
`options` (the answer options, empty for generation tasks), `references` (every acceptable target: the
rendered target first, then the target rendered with each other answer a preprocessor lists in `answers`),
`template` (template index), `idx` (the example's index in its split) and `task`.

A record that cannot be read or rendered (a malformed line, a preprocessor's exception, a missing template
field), and a split with no examples, raise `DataError`s naming the task, the split, the example and where it
is read from (file and line).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import itertools
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import seqio
import tensorflow as tf

from it_jax import errors
from it_jax.data import fewshot
from it_jax.data import sources as sources_lib
from it_jax.data import vocab as vocab_lib

if TYPE_CHECKING:
    from it_jax.data.context import TaskContext
from it_jax.data.templates import (
    ANSWER_FIELD,
    OPTIONS_FIELD,
    REFERENCES_FIELD,
    Template,
    TemplateError,
    as_templates,
)

Preprocessor = Callable[[sources_lib.Example], sources_lib.Example]
MetricFn = Callable[[Sequence[str], Sequence[str]], Mapping[str, float]]
SourceLike = sources_lib.Source | Callable[[str], Any] | str

FEW_SHOT_POOL = 32  # few-shot exemplars are drawn from this many leading training examples


class RecordError(errors.DataError, TemplateError):
    """One example of a task's split cannot be made into template fields or rendered."""


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).splitlines())


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    """What it_jax knows about a registered instruction task beyond its `seqio.Task`."""

    name: str
    cluster: str
    source: sources_lib.Source
    templates: tuple[Template, ...]
    preprocessor: Preprocessor | None
    options: tuple[str, ...] | None
    metrics: tuple[MetricFn, ...]
    max_train_examples: int | None
    num_eval_templates: int

    @property
    def eval_templates(self) -> range:
        """Indices of the templates whose target is the task's answer (the rest invert the task)."""
        return range(self.num_eval_templates)

    @property
    def is_classification(self) -> bool:
        """Classification tasks are scored by rank classification over their options."""
        return self.options is not None

    def template_task_name(self, index: int) -> str:
        return f"{self.name}_template_{index}"

    @property
    def scoring_task_name(self) -> str:
        """The rank-classification task of a classification task (one example per option)."""
        return f"{self.name}_scoring"

    def record_error(self, split: str | None, index: int, detail: str) -> RecordError:
        """An error about example `index` of `split` naming the task, the example and where it is read from."""
        where = f" (split {split!r}, {sources_lib.locate(self.source, split, index)})" if split else ""
        return RecordError(f"task {self.name!r}, example {index}: {detail}{where}")

    def fields(self, example: sources_lib.Example, index: int, split: str | None = None) -> sources_lib.Example:
        """Template fields of example `index` (of `split`): preprocessed, with the static options added.

        Raises:
          RecordError: the preprocessor raised, or a classification example has no options.
        """
        if self.preprocessor is None:
            fields = dict(example)
        else:
            try:
                fields = self.preprocessor(example)
            except Exception as error:  # the preprocessor's own failure, on this record: say which
                detail = f"the preprocessor raised {type(error).__name__}: {_one_line(error)}"
                raise self.record_error(split, index, detail) from error
        if self.options is not None and OPTIONS_FIELD not in fields:
            fields[OPTIONS_FIELD] = list(self.options)
        if self.options is not None and not fields[OPTIONS_FIELD]:
            raise self.record_error(split, index, "classification example with no options")
        return fields

    def source_examples(self, split: str) -> Iterator[sources_lib.Example]:
        """The raw examples of `split` the task reads (the train split trimmed to `max_train_examples`)."""
        examples = self.source.examples(split)
        if split == "train" and self.max_train_examples:
            examples = itertools.islice(examples, self.max_train_examples)
        return examples

    def _records(self, split: str) -> Iterator[tuple[int, sources_lib.Example]]:
        """(index, raw example) of `split`; a source error names the task and split, an empty split is an error."""
        index = -1
        try:
            for index, example in enumerate(self.source_examples(split)):
                yield index, example
        except sources_lib.SourceError as error:
            raise errors.DataError(f"task {self.name!r}, split {split!r}: {_one_line(error)}") from error
        if index < 0:
            raise self.empty_split_error(split)

    def empty_split_error(self, split: str) -> errors.DataError:
        """The error for a split with no examples, naming where it is read from."""
        return errors.DataError(
            f"task {self.name!r} split {split!r} has no examples ({sources_lib.locate(self.source, split)})"
        )

    @functools.cached_property
    def _exemplar_pool(self) -> tuple[sources_lib.Example, ...]:
        """Template fields of the first training examples, the exemplars of few-shot prompts."""
        split = "train" if "train" in self.source.splits else self.source.splits[0]
        pool = itertools.islice(self._records(split), FEW_SHOT_POOL)
        return tuple(self.fields(example, i, split) for i, example in pool)

    def _few_shot_inputs(self, split: str, j: int, k: int, query: str, variant: fewshot.Variant) -> str:
        pool = self._exemplar_pool
        exclude = j if split == "train" else None
        chosen = fewshot.choose_exemplars(
            f"{self.name}:{split}", j, pool_size=len(pool), num_shots=variant.num_shots, exclude=exclude
        )
        template = self.templates[k]
        exemplars = [template.render(pool[i], with_options=variant.with_options) for i in chosen]
        return fewshot.join_exemplars(
            [(e["inputs"], e["targets"]) for e in exemplars], query, max_chars=variant.max_input_chars
        )

    def render(
        self, split: str, template_index: int | None = None, variant: fewshot.Variant = fewshot.ZERO_SHOT
    ) -> Iterator[dict[str, Any]]:
        """Yields the rendered examples of `split`: template `template_index`, or round-robin when None."""
        for j, example in self._records(split):
            k = j % len(self.templates) if template_index is None else template_index
            fields = self.fields(example, j, split)
            template = self.templates[k]
            with self._rendering(split, j):
                rendered = template.render(fields, with_options=variant.with_options)
                if variant.few_shot:
                    rendered["inputs"] = self._few_shot_inputs(split, j, k, rendered["inputs"], variant)
                acceptable = references(template, fields, rendered["targets"])
            yield {
                **rendered,
                "options": [str(o) for o in fields.get(OPTIONS_FIELD) or ()],
                "references": acceptable,
                "template": k,
                "idx": j,
                "task": self.name,
            }

    @contextlib.contextmanager
    def _rendering(self, split: str, index: int) -> Iterator[None]:
        """Template errors inside name the example, its split and where it is read from."""
        try:
            yield
        except RecordError:
            raise
        except TemplateError as error:
            raise self.record_error(split, index, _one_line(error)) from error

    def render_scoring(self, split: str) -> Iterator[dict[str, Any]]:
        """Rank-classification examples: one per (example, option) with the option as target, over the
        answer templates round-robin; `idx` groups an example's options, `is_correct` marks the answer."""
        for j, example in self._records(split):
            k = j % self.num_eval_templates
            fields = self.fields(example, j, split)
            with self._rendering(split, j):
                rendered = self.templates[k].render(fields)
            for option in fields[OPTIONS_FIELD]:
                yield {
                    "inputs": rendered["inputs"],
                    "targets": str(option),
                    "idx": j,
                    "is_correct": str(option) == rendered["targets"],
                    "template": k,
                    "task": self.name,
                }

    def num_examples(self, split: str) -> int:
        """The examples in `split` (the train split trimmed); an unreadable or empty split is a `DataError`."""
        try:
            n = self.source.num_examples(split)
        except sources_lib.SourceError as error:
            raise errors.DataError(f"task {self.name!r}, split {split!r}: {_one_line(error)}") from error
        if not n:
            raise self.empty_split_error(split)
        if split == "train" and self.max_train_examples:
            n = min(n, self.max_train_examples)
        return n


def references(template: Template, fields: Mapping[str, Any], target: str) -> list[str]:
    """Every acceptable target of an example: `target`, then the target rendered with each other answer
    in the `answers` field (e.g. NQ's or SQuAD's alternative answers), without duplicates."""
    result = [target]
    for answer in fields.get(REFERENCES_FIELD) or ():
        rendered = template.render({**fields, ANSWER_FIELD: answer})["targets"]
        if rendered not in result:
            result.append(rendered)
    return result


_OUTPUT_SIGNATURE = {
    "inputs": tf.TensorSpec([], tf.string),
    "targets": tf.TensorSpec([], tf.string),
    "options": tf.TensorSpec([None], tf.string),
    "references": tf.TensorSpec([None], tf.string),
    "template": tf.TensorSpec([], tf.int32),
    "idx": tf.TensorSpec([], tf.int32),
    "task": tf.TensorSpec([], tf.string),
}


_SCORING_SIGNATURE = {
    "inputs": tf.TensorSpec([], tf.string),
    "targets": tf.TensorSpec([], tf.string),
    "idx": tf.TensorSpec([], tf.int32),
    "is_correct": tf.TensorSpec([], tf.bool),
    "template": tf.TensorSpec([], tf.int32),
    "task": tf.TensorSpec([], tf.string),
}


class _TemplatedSource(seqio.FunctionDataSource):
    """A seqio data source over a task's rendered examples; counts examples only when asked.

    Attributes:
      info: the task's `TaskInfo`.
      template_index: the one template rendered, or None (spread over all templates).
      variant: the prompt variant, or None for the rank-classification scoring dataset.
    """

    def __init__(self, info: TaskInfo, template_index: int | None, variant: fewshot.Variant | None):
        super().__init__(_dataset_fn(info, template_index, variant), splits=info.source.splits)
        self.info = info
        self.template_index = template_index
        self.variant = variant

    def num_input_examples(self, split: str) -> int:
        return self.info.num_examples(split)


def _as_source(source: SourceLike, name: str, data_dir: str | None) -> sources_lib.Source:
    if isinstance(source, str):
        if source.endswith(".jsonl"):
            if "{split}" not in source:
                raise ValueError(f"task {name!r}: a JSONL source path needs a '{{split}}' placeholder: {source}")
            paths = {s: source.format(split=s) for s in ("train", "validation", "test")}
            paths = {s: p for s, p in paths.items() if os.path.isfile(p)}
            if not paths:
                raise sources_lib.SourceError(f"task {name!r}: no file matches {source} for train, validation or test")
            return sources_lib.JsonlSource(paths, description=f"task {name!r}")
        return sources_lib.TfdsSource(source, data_dir=data_dir)
    if callable(source) and not hasattr(source, "examples"):
        return sources_lib.GeneratorSource(source)
    return source


def _dataset_fn(info: TaskInfo, template_index: int | None, variant: fewshot.Variant | None):
    """`variant=None` makes the rank-classification scoring dataset."""

    def dataset_fn(split: str, shuffle_files: bool, seed: int | None = None) -> tf.data.Dataset:
        del shuffle_files, seed  # Sources are read in order; seqio shuffles after preprocessing.
        if variant is None:
            return tf.data.Dataset.from_generator(lambda: info.render_scoring(split), output_signature=_SCORING_SIGNATURE)
        return tf.data.Dataset.from_generator(
            lambda: info.render(split, template_index, variant), output_signature=_OUTPUT_SIGNATURE
        )

    return dataset_fn


def _task_kwargs(
    info: TaskInfo, template_index: int | None, vocabulary: seqio.Vocabulary, variant: fewshot.Variant | None
) -> dict[str, Any]:
    """What makes a seqio task of `info`: its templated source, tokenization and metrics."""
    return dict(
        source=_TemplatedSource(info, template_index, variant),
        preprocessors=[seqio.preprocessors.tokenize, seqio.preprocessors.append_eos_after_trim],
        output_features=vocab_lib.output_features(vocabulary),
        metric_fns=list(info.metrics),
    )


def _register_seqio_task(
    name: str,
    info: TaskInfo,
    template_index: int | None,
    vocabulary: seqio.Vocabulary,
    variant: fewshot.Variant | None = fewshot.ZERO_SHOT,
) -> seqio.Task:
    seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(name, **_task_kwargs(info, template_index, vocabulary, variant))


def eval_task(
    info: TaskInfo, template_index: int, variant: fewshot.Variant, vocabulary: seqio.Vocabulary
) -> seqio.Task:
    """An unregistered seqio task of one template in one prompt variant, tokenized with `vocabulary`: what
    the evaluator reads (the registered tasks spread examples over templates)."""
    name = f"{info.name}{variant.suffix}_eval_template_{template_index}"
    return seqio.Task(name, **_task_kwargs(info, template_index, vocabulary, variant))


def register_task(
    name: str,
    *,
    source: SourceLike,
    templates: Sequence[Template | tuple[str, str]],
    cluster: str,
    inverted_templates: Sequence[Template | tuple[str, str]] = (),
    preprocessor: Preprocessor | None = None,
    options: Sequence[str] | None = None,
    metrics: Sequence[MetricFn] = (),
    max_train_examples: int | None = None,
    variants: Sequence[fewshot.Variant] = (),
    context: TaskContext | None = None,
) -> TaskInfo:
    """Registers a templated task: one `seqio.Task` per template plus one spreading examples over all.

    Args:
      name: task name; the per-template tasks are `<name>_template_<k>`.
      source: a `Source`; a function `split -> iterable of dicts`; a JSONL path with a `{split}`
        placeholder; or a TFDS name (read from its local mirror when the context has a data directory).
      templates: `Template`s or `(inputs, targets)` pattern pairs whose target is the task's answer.
      cluster: the task cluster, used to build held-out-cluster mixtures.
      inverted_templates: templates that invert the task (e.g. "write a question whose answer is ...");
        they follow `templates` in the round-robin and are trained on but not evaluated.
      preprocessor: maps a raw source example to the template fields.
      options: answer options of a classification task (rendered by `{options_}`, scored by rank
        classification). Tasks whose options vary per example put them in the `options` field from the
        preprocessor and pass `options=()`.
      metrics: seqio-style metric functions `(targets, predictions) -> {name: value}`.
      max_train_examples: trim the train split to this many examples (FLAN: 30,000).
      variants: extra prompt variants (`it_jax.data.fewshot.VARIANTS`: zero-/few-shot, with/without
        options), each registered as `<name><variant.suffix>` spreading examples over the templates.
      context: the run's settings (`it_jax.data.context.TaskContext`): the vocabulary the task tokenizes
        with and the data directory of TFDS mirrors. None: a byte vocabulary and TFDS itself (a run with
        another vocabulary refuses such a task rather than tokenizing it wrongly).
    """
    if os.sep in name or " " in name:
        raise ValueError(f"task name {name!r} must not contain spaces or path separators")
    vocabulary = context.vocabulary if context is not None else seqio.ByteVocabulary()
    info = TaskInfo(
        name=name,
        cluster=cluster,
        source=_as_source(source, name, context.data_dir if context is not None else None),
        templates=as_templates([*templates, *inverted_templates], name),
        preprocessor=preprocessor,
        options=None if options is None else tuple(options),
        metrics=tuple(metrics),
        max_train_examples=max_train_examples,
        num_eval_templates=len(templates),
    )
    _register_seqio_task(name, info, None, vocabulary)
    for k in range(len(info.templates)):
        _register_seqio_task(info.template_task_name(k), info, k, vocabulary)
    for variant in variants:
        if variant.suffix:
            _register_seqio_task(f"{name}{variant.suffix}", info, None, vocabulary, variant)
    if info.is_classification:
        _register_seqio_task(info.scoring_task_name, info, None, vocabulary, variant=None)
    return info


def _templated_source(name: str) -> _TemplatedSource | None:
    """The templated source of the seqio task `name`, if it is one `register_task` registered."""
    if name not in seqio.TaskRegistry.names():
        return None
    source = seqio.TaskRegistry.get(name).source
    return source if isinstance(source, _TemplatedSource) else None


def task_info(name: str) -> TaskInfo:
    """The `TaskInfo` behind a seqio task registered by `register_task` (any of its variants)."""
    source = _templated_source(name)
    if source is None:
        known = sorted(info.name for info in registered_tasks())
        listing = f"known: {known[:20]}{'...' if len(known) > 20 else ''}" if known else (
            "the loaded task modules register none (add one with --task_module)")
        raise KeyError(f"no instruction task {name!r} is registered; {listing}")
    return source.info


def instruction_task_names() -> tuple[str, ...]:
    """Every seqio task name `task_info` knows: each task's spread, variant, per-template and scoring tasks."""
    return tuple(sorted(name for name in seqio.TaskRegistry.names() if _templated_source(name) is not None))


def task_variant(name: str) -> fewshot.Variant:
    """The prompt variant a registered seqio task renders (zero-shot with options for the scoring task)."""
    task_info(name)
    return _templated_source(name).variant or fewshot.ZERO_SHOT


def template_index(name: str) -> int | None:
    """The one template a registered seqio task renders, or None when it spreads examples over all."""
    task_info(name)
    return _templated_source(name).template_index


def registered_tasks(cluster: str | None = None) -> tuple[TaskInfo, ...]:
    """All tasks registered with `register_task`, optionally only those of one cluster, by name."""
    infos = []
    for name in sorted(seqio.TaskRegistry.names()):
        source = _templated_source(name)
        if source is None or name != source.info.name:
            continue  # not a task's spread task (a template, variant or scoring task, or another seqio task)
        if cluster is None or source.info.cluster == cluster:
            infos.append(source.info)
    return tuple(infos)
