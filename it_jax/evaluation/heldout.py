"""Zero-shot evaluation of registered instruction tasks, template by template.

Classification tasks (those with answer options) are scored by rank classification: each option's
target log-likelihood given the input, argmax. Generation tasks are decoded greedily. Each template of each
task is evaluated on the same examples, so results can be compared across templates (FLAN reports the mean
over templates and the best template).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import tqdm

from it_jax.data import tasks as tasks_lib
from it_jax.evaluation import metrics as metrics_lib
from it_jax.evaluation.predictor import Predictor


def _default_metrics(info: tasks_lib.TaskInfo):
    if info.metrics:
        return info.metrics
    return (metrics_lib.accuracy,) if info.is_classification else (metrics_lib.exact_match,)


def evaluate_template(
    predictor: Predictor, info: tasks_lib.TaskInfo, template: int, *, split: str, max_examples: int | None
) -> dict[str, Any]:
    """Metrics of one template of one task, with a few predictions for the report."""
    examples = list(itertools.islice(info.render(split, template), max_examples))
    inputs = [ex["inputs"] for ex in examples]
    targets = [ex["targets"] for ex in examples]
    if info.is_classification:
        options = [ex["options"] for ex in examples]
        predictions = [opts[i] for opts, i in zip(options, predictor.rank_classify(inputs, options))]
    else:
        predictions = predictor.generate(inputs)
    scores: dict[str, float] = {}
    for metric in _default_metrics(info):
        scores.update(metric(targets, predictions))
    return {
        "template": template,
        "num_examples": len(examples),
        "metrics": scores,
        "samples": [
            {"inputs": i, "target": t, "prediction": p} for i, t, p in list(zip(inputs, targets, predictions))[:3]
        ],
    }


def evaluate_tasks(
    predictor: Predictor,
    task_names: Sequence[str],
    *,
    split: str = "validation",
    max_examples: int | None = None,
) -> dict[str, Any]:
    """Evaluates every answer template of every task; returns `{task: {cluster, scoring, templates, mean, best}}`."""
    results = {}
    jobs = [(name, k) for name in task_names for k in tasks_lib.task_info(name).eval_templates]
    progress = tqdm.tqdm(jobs, desc="eval", unit="template", disable=None)
    for name, k in progress:
        progress.set_postfix(task=name, template=k)
        info = tasks_lib.task_info(name)
        entry = results.setdefault(
            name,
            {"cluster": info.cluster, "scoring": "rank" if info.is_classification else "generate", "templates": []},
        )
        entry["templates"].append(evaluate_template(predictor, info, k, split=split, max_examples=max_examples))
    for entry in results.values():
        metric_names = entry["templates"][0]["metrics"].keys()
        entry["mean"] = {
            m: sum(t["metrics"][m] for t in entry["templates"]) / len(entry["templates"]) for m in metric_names
        }
        entry["best"] = {m: max(t["metrics"][m] for t in entry["templates"]) for m in metric_names}
    return results
