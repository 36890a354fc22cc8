"""Evaluation reports: `results.json` (everything), `results.md` (tables) and per-template predictions.

`results.md` holds the task x template table of each task's primary metric with its mean and best
template, then summaries per cluster and per prompt variant (the mean of the tasks' means and bests), and
links `results.json`. `predictions/<task>__<variant>__t<template>.jsonl` has one line per example.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from it_jax.evaluation.results import EvalResults, Prediction, TaskResult

if TYPE_CHECKING:
    from it_jax.evaluation.evaluator import EvalJob

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PREDICTIONS_DIR = "predictions"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def template_table(results: EvalResults) -> str:
    """One row per (task, variant): its primary metric per template, the mean over templates, the best."""
    width = max((len(t.templates) for t in results.tasks), default=0)
    header = ["task", "variant", "cluster", "metric", *[f"t{k}" for k in range(width)], "mean", "best"]
    lines = [_row(header), "|" + "---|" * len(header)]
    for task in results.tasks:
        metric = task.primary_metric
        cells = [f"{t.metrics[metric]:.1f}" for t in task.templates] + [""] * (width - len(task.templates))
        mean, best = task.mean[metric], task.best[metric]
        lines.append(_row([task.task, task.variant, task.cluster, metric, *cells, f"{mean:.1f}", f"{best:.1f}"]))
    if results.tasks:
        overall = sum(t.mean[t.primary_metric] for t in results.tasks) / len(results.tasks)
        lines.append(_row(["**mean**", "", "", "", *[""] * width, f"**{overall:.1f}**", ""]))
    return "\n".join(lines)


def summary_table(results: EvalResults, key: Callable[[TaskResult], str], title: str) -> str:
    """Per group (cluster or variant): number of tasks, mean of their mean-template and best-template scores."""
    groups: dict[str, list[TaskResult]] = {}
    for task in results.tasks:
        groups.setdefault(key(task), []).append(task)
    lines = [_row([title, "tasks", "mean template", "best template"]), "|---|---|---|---|"]
    for name, members in groups.items():
        mean = sum(t.mean[t.primary_metric] for t in members) / len(members)
        best = sum(t.best[t.primary_metric] for t in members) / len(members)
        lines.append(_row([name, str(len(members)), f"{mean:.1f}", f"{best:.1f}"]))
    return "\n".join(lines)


def markdown(results: EvalResults, *, title: str) -> str:
    """The whole report as markdown."""
    where = [f"split `{results.split}`"]
    if results.checkpoint:
        where.append(f"model `{results.checkpoint}`" + (f" at step {results.step}" if results.step is not None else ""))
    if results.length_normalized:
        where.append("options ranked by mean token log-likelihood")
    if results.excluded:
        where.append("left out: " + ", ".join(f"{n} {k}" for k, n in results.excluded.items()))
    return "\n\n".join(
        [
            f"# {title}",
            "; ".join(where) + f". All figures: [{RESULTS_JSON}]({RESULTS_JSON}).",
            template_table(results),
            "## By cluster\n\n" + summary_table(results, lambda t: t.cluster, "cluster"),
            "## By prompt variant\n\n" + summary_table(results, lambda t: t.variant, "variant"),
        ]
    ) + "\n"


def write_report(results: EvalResults, directory: str | pathlib.Path, *, title: str) -> str:
    """Writes `results.json` and `results.md` under `directory`; returns the markdown."""
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results.to_json(), indent=2, ensure_ascii=False)
    (directory / RESULTS_JSON).write_text(text, encoding="utf-8")
    report = markdown(results, title=title)
    (directory / RESULTS_MD).write_text(report, encoding="utf-8")
    return report


def read_results(directory: str | pathlib.Path) -> EvalResults:
    """The `EvalResults` a report directory holds."""
    path = pathlib.Path(directory) / RESULTS_JSON
    return EvalResults.from_json(json.loads(path.read_text(encoding="utf-8")))


def predictions_writer(directory: str | pathlib.Path) -> Callable[[EvalJob, int, list[Prediction]], None]:
    """An `Evaluator.evaluate` callback writing `predictions/<task>__<variant>__t<template>.jsonl`."""
    folder = pathlib.Path(directory) / PREDICTIONS_DIR
    folder.mkdir(parents=True, exist_ok=True)

    def write(job: EvalJob, template: int, predictions: list[Prediction]) -> None:
        path = folder / f"{job.info.name}__{job.variant.name}__t{template}.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for prediction in predictions:
                record = {k: v for k, v in dataclasses.asdict(prediction).items() if v != [] or k == "targets"}
                f.write(json.dumps(record, ensure_ascii=False) + "\n")

    return write
