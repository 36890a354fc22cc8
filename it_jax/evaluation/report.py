"""Evaluation reports: `results.json` (everything), `results.md` (tables) and per-template predictions.

`results.md` holds the task x template table of each task's primary metric with its mean and best
template and its chance and majority-class baselines, a verdict line (scores against baselines, held-out and
seen tasks apart), then summaries per cluster and per prompt variant (the mean of the tasks' means and bests), and
links `results.json`. `predictions/<task>__<variant>__t<template>.jsonl` has one line per example.
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from it_jax.evaluation import baselines
from it_jax.evaluation.results import EvalResults, Prediction, TaskResult

if TYPE_CHECKING:
    from it_jax.evaluation.evaluator import EvalJob

RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
PREDICTIONS_DIR = "predictions"


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _trained(task: TaskResult) -> str:
    return {True: "yes", False: "no", None: ""}[task.seen]


def _mean(values: Sequence[float | None]) -> float | None:
    """The mean, or None when there are no values or one is unknown."""
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)


def template_table(results: EvalResults) -> str:
    """One row per (task, variant): whether the model trained on the task, its primary metric per template,
    the mean over templates, the best, and the chance and majority-class baselines (means over templates)."""
    width = max((len(t.templates) for t in results.tasks), default=0)
    templates = [f"t{k}" for k in range(width)]
    header = ["task", "variant", "cluster", "trained", "metric", *templates, "mean", "best", "chance", "majority"]
    lines = [_row(header), "|" + "---|" * len(header)]
    for task in results.tasks:
        metric = task.primary_metric
        cells = [f"{t.metrics[metric]:.1f}" for t in task.templates] + [""] * (width - len(task.templates))
        scores = [_score(v) for v in (task.mean[metric], task.best[metric], task.chance, task.majority)]
        lines.append(_row([task.task, task.variant, task.cluster, _trained(task), metric, *cells, *scores]))
    if results.tasks:
        overall = sum(t.mean[t.primary_metric] for t in results.tasks) / len(results.tasks)
        chance = _score(_mean([t.chance for t in results.tasks]))
        majority = _score(_mean([t.majority for t in results.tasks]))
        lines.append(_row(["**mean**", "", "", "", "", *[""] * width, f"**{overall:.1f}**", "", chance, majority]))
    return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class GroupScore:
    """A group of tasks' mean primary metric against the means of their baselines (percent).

    `baseline` is the mean of each task's stronger baseline; `margin` two binomial standard errors at that rate
    over the group's examples per template (a rough yardstick for metrics other than accuracy).
    """

    score: float
    chance: float | None
    majority: float | None
    baseline: float | None
    margin: float

    @classmethod
    def of(cls, tasks: Sequence[TaskResult]) -> GroupScore:
        score = sum(t.mean[t.primary_metric] for t in tasks) / len(tasks)
        baseline = _mean([baselines.stronger(t.chance, t.majority) for t in tasks])
        examples = sum(t.templates[0].num_examples for t in tasks if t.templates)
        rate = min(max((baseline or 0.0) / 100.0, 0.0), 1.0)
        margin = 200.0 * math.sqrt(rate * (1.0 - rate) / max(examples, 1))
        return cls(score, _mean([t.chance for t in tasks]), _mean([t.majority for t in tasks]), baseline, margin)

    @property
    def outcome(self) -> str:
        """Against the stronger baseline, beyond `margin`: "above", "at" or "below" ("unknown" without one)."""
        if self.baseline is None:
            return "unknown"
        gap = self.score - self.baseline
        return "above" if gap > self.margin else "below" if gap < -self.margin else "at"

    def describe(self, label: str) -> str:
        """`label`, the score and both baselines, e.g. "seen tasks 77.2 vs chance 50.0 / majority 50.0"."""
        return f"{label} {self.score:.1f} vs chance {_score(self.chance)} / majority {_score(self.majority)}"


_OUTCOMES = {
    "above": "above the baselines",
    "at": "at the baselines (within {margin:.1f} points, two standard errors)",
    "below": "below the baselines",
    "unknown": "no baseline to compare with",
}
FLAN_SCALE = (
    "in FLAN (Wei et al., 2021) instruction tuning improved held-out tasks only at 68B and 137B parameters, "
    "and hurt them at 8B and below"
)


def _verdict_part(label: str, tasks: Sequence[TaskResult], meaning: Mapping[str, str]) -> str:
    group = GroupScore.of(tasks)
    text = f"{group.describe(label)}: {_OUTCOMES[group.outcome].format(margin=group.margin)}"
    return text + (f", {meaning[group.outcome]}" if group.outcome in meaning else "")


def verdict(results: EvalResults) -> str:
    """One line judging the scores against their baselines: held-out and seen tasks apart when the results
    say which the model trained on (`TaskResult.seen`), all tasks together otherwise."""
    held_out = [t for t in results.tasks if t.seen is False]
    seen = [t for t in results.tasks if t.seen]
    if not held_out and not seen:
        return f"**Verdict:** {_verdict_part('mean', results.tasks, {})}." if results.tasks else ""
    parts = []
    if held_out:
        no_transfer = f"no zero-shot transfer ({FLAN_SCALE})"
        transfer = {"above": "zero-shot transfer", "at": no_transfer, "below": no_transfer}
        parts.append(_verdict_part("held-out tasks", held_out, transfer))
    if seen:
        unlearned = "not learned: train longer or larger"
        learned = {"above": "learned in training", "at": unlearned, "below": unlearned}
        parts.append(_verdict_part("seen tasks", seen, learned))
    return "**Verdict:** " + "; ".join(parts) + "."


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
    sections = [
        f"# {title}",
        "; ".join(where) + f". All figures: [{RESULTS_JSON}]({RESULTS_JSON}).",
        template_table(results),
        verdict(results),
        "## By cluster\n\n" + summary_table(results, lambda t: t.cluster, "cluster"),
        "## By prompt variant\n\n" + summary_table(results, lambda t: t.variant, "variant"),
    ]
    return "\n\n".join(section for section in sections if section) + "\n"


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
