"""The held-out-cluster experiment: per cluster, train on the other clusters, evaluate the cluster zero-shot,
and evaluate the untuned starting model on the same tasks, so the gain from instruction tuning is visible.

Under `output_dir`: `<cluster>/` is the run directory of the model trained on `<collection>_heldout_<cluster>`
(`eval/` its evaluation), `<cluster>/eval_untuned/` the starting model's (fresh initialization with the run's
seed, or `train_run.init_from`); `summary.{md,json,png}` compare them. The settings come from gin, as in
`scripts/train.py`, with `run_config.model_dir` and `train_run.mixture` set per cluster. Rerunning skips the
clusters evaluated after reaching `train_run.num_steps` and resumes the others.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import pathlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import gin
import jax

from it_jax import launch
from it_jax.data import tasks as tasks_lib
from it_jax.evaluation import report
from it_jax.evaluation.results import EvalResults
from it_jax.run_context import RunContext
from it_jax.run_dir import RunDirectory
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import warm_start
from it_jax.train.trainer import Trainer

TUNED_DIR, UNTUNED_DIR = "eval", "eval_untuned"
_EVAL_DIRS = {"tuned": TUNED_DIR, "untuned": UNTUNED_DIR}
SUMMARY_MD, SUMMARY_JSON, SUMMARY_PNG = "summary.md", "summary.json", "summary.png"


@dataclasses.dataclass(frozen=True)
class Scores:
    """A cluster's score in percent: each task's primary metric, averaged over the cluster's tasks, for the
    mean over templates and for the best template."""

    mean: float
    best: float


@dataclasses.dataclass(frozen=True)
class ClusterSummary:
    """One held-out cluster: the tuned and the untuned model's scores. Paths are relative to the summary."""

    cluster: str
    tasks: list[str]
    steps: int | None
    tuned: Scores
    untuned: Scores
    tuned_results: str
    untuned_results: str
    chance: float | None = None  # the expected accuracy of a random choice, where every task has fixed options

    @property
    def gain(self) -> float:
        return self.tuned.mean - self.untuned.mean


@dataclasses.dataclass(frozen=True)
class ExperimentSummary:
    """Every held-out cluster of one experiment."""

    collection: str
    clusters: list[ClusterSummary]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentSummary:
        def cluster(c: Mapping[str, Any]) -> ClusterSummary:
            return ClusterSummary(**{**c, "tuned": Scores(**c["tuned"]), "untuned": Scores(**c["untuned"])})

        return cls(data["collection"], [cluster(c) for c in data["clusters"]])


def collection_tasks(collection: str, cluster: str | None = None) -> list[str]:
    """The registered tasks named `<collection>_...` (optionally of one cluster); import the collection first."""
    return [info.name for info in tasks_lib.registered_tasks(cluster) if info.name.startswith(f"{collection}_")]


def collection_clusters(collection: str) -> list[str]:
    """The clusters of a collection's registered tasks, sorted."""
    clusters = sorted({tasks_lib.task_info(name).cluster for name in collection_tasks(collection)})
    if not clusters:
        raise ValueError(f"no task of collection {collection!r} is registered: check run_config.task_modules")
    return clusters


def cluster_scores(results: EvalResults) -> Scores:
    """Mean-template and best-template score of the primary metric, averaged over the evaluated tasks."""
    if not results.tasks:
        raise ValueError("the results hold no task")
    means = [task.mean[task.primary_metric] for task in results.tasks]
    bests = [task.best[task.primary_metric] for task in results.tasks]
    return Scores(sum(means) / len(means), sum(bests) / len(bests))


def chance_level(results: EvalResults) -> float | None:
    """Average accuracy of a uniform random choice, if every task is scored by accuracy over fixed options."""
    levels = []
    for task in results.tasks:
        options = tasks_lib.task_info(task.task).options
        if task.primary_metric != "accuracy" or not options:
            return None
        levels.append(100.0 / len(options))
    return sum(levels) / len(levels) if levels else None


def summarize_cluster(
    cluster: str, tuned: EvalResults, untuned: EvalResults, *, tuned_results: str, untuned_results: str
) -> ClusterSummary:
    """One cluster's summary from its two evaluations (`*_results`: where their results.json are)."""
    tasks = list(dict.fromkeys(task.task for task in tuned.tasks))
    scores = (cluster_scores(tuned), cluster_scores(untuned))
    return ClusterSummary(cluster, tasks, tuned.step, *scores, tuned_results, untuned_results, chance_level(tuned))


def setting(parameter: str) -> Any:
    """What gin binds to `train_run.<parameter>` (macros resolved), else its default."""
    try:
        value = gin.query_parameter(f"train_run.{parameter}")
    except ValueError:
        return inspect.signature(launch.train_run).parameters[parameter].default
    if isinstance(value, gin.config.ConfigurableReference):  # a macro, e.g. %TRAIN_STEPS
        value = gin.get_bindings("train_run")[parameter]
    return value


def trained_steps(run_dir: pathlib.Path) -> int | None:
    """The latest checkpointed step of a run directory, or None."""
    if not RunDirectory(run_dir).checkpoints.is_dir():
        return None
    checkpointer = checkpoints_lib.Checkpointer(RunDirectory(run_dir).checkpoints)
    try:
        return checkpointer.latest_step()
    finally:
        checkpointer.close()


def _evaluated(directory: pathlib.Path, step: int = 0) -> bool:
    """Whether `directory` holds results, of a model trained at least `step` steps."""
    return (directory / report.RESULTS_JSON).is_file() and (report.read_results(directory).step or 0) >= step


def is_finished(run_dir: pathlib.Path, steps: int) -> bool:
    """Trained to `steps`, and both the tuned model (at that step) and the untuned one evaluated."""
    evaluated = _evaluated(run_dir / TUNED_DIR, steps) and _evaluated(run_dir / UNTUNED_DIR)
    return evaluated and (trained_steps(run_dir) or 0) >= steps


def _run_context(model_dir: pathlib.Path) -> RunContext:
    """The gin-configured run context for `model_dir` (its task modules registered)."""
    with gin.unlock_config():
        gin.bind_parameter("run_config.model_dir", str(model_dir))
    return launch.make_run_config()


def _evaluate(run: RunContext, trainer: Trainer, params: Any, *, tasks: Sequence[str],
              output_dir: pathlib.Path, title: str, checkpoint: str, step: int, trained_on: str | None) -> None:
    """`launch.eval_run` (its gin settings, the same for the tuned and the untuned model) on the cluster's
    `tasks` alone (no reference tasks: the summary averages every evaluated task)."""
    launch.eval_run(
        run, params=params, spec=trainer.spec, tasks_to_eval=tasks, mesh=trainer.mesh, step=step,
        output_dir=str(output_dir), title=title, checkpoint=checkpoint, reference_tasks=(), trained_on=trained_on,
    )


def starting_params(trainer: Trainer) -> tuple[Any, str]:
    """The parameters training started from (the run's seed, then `train_run.init_from`) and a description."""
    seed = int(setting("seed"))
    params = trainer.init(seed).params
    init_from = setting("init_from")
    if not init_from:
        return params, f"fresh initialization (seed {seed})"
    params, _ = warm_start.load_matching_params(init_from, params=params)
    return params, str(init_from)


def run_cluster(collection: str, cluster: str, run_dir: pathlib.Path, *, log: Callable[[str], None] = print) -> None:
    """Trains (or resumes) on the held-out mixture into `run_dir`, then evaluates what is not yet evaluated."""
    run = _run_context(run_dir)
    # The collection's mixture without `cluster` (and the clusters its overlap rules tie to it).
    mixture, tasks = f"{collection}_heldout_{cluster}", collection_tasks(collection, cluster)
    log(f"[{cluster}] training on {mixture} in {run_dir}")
    state, trainer = launch.train_run(run, mixture=mixture)
    step = int(state.step)
    if not _evaluated(run_dir / TUNED_DIR, step):
        log(f"[{cluster}] evaluating the tuned model (step {step}) on {', '.join(tasks)}")
        title = f"Held-out cluster `{cluster}`: tuned on `{mixture}`"
        _evaluate(run, trainer, state.params, tasks=tasks, output_dir=run_dir / TUNED_DIR, title=title,
                  checkpoint=str(run_dir), step=step, trained_on=mixture)
    del state
    if not _evaluated(run_dir / UNTUNED_DIR):
        params, source = starting_params(trainer)
        log(f"[{cluster}] evaluating the untuned starting model ({source})")
        _evaluate(run, trainer, params, tasks=tasks, output_dir=run_dir / UNTUNED_DIR,
                  title=f"Held-out cluster `{cluster}`: untuned starting model", checkpoint=source, step=0,
                  trained_on=None)


def run_experiment(
    *, collection: str, output_dir: str | pathlib.Path, clusters: Sequence[str] | None = None,
    log: Callable[[str], None] = print,
) -> ExperimentSummary:
    """Runs (or resumes) every cluster (default: all of the collection's); process 0 writes the summary."""
    output_dir = pathlib.Path(output_dir)
    _run_context(output_dir)  # registers the task modules' tasks
    known = collection_clusters(collection)
    unknown = sorted(set(clusters or ()) - set(known))
    if unknown:
        raise ValueError(f"{collection} has no cluster {', '.join(unknown)}; its clusters: {', '.join(known)}")
    steps, summaries = int(setting("num_steps")), []
    for cluster in clusters or known:
        run_dir = output_dir / cluster
        if is_finished(run_dir, steps):
            log(f"[{cluster}] finished (step {steps}); skipping")
        else:
            run_cluster(collection, cluster, run_dir, log=log)
        tuned, untuned = (report.read_results(run_dir / name) for name in (TUNED_DIR, UNTUNED_DIR))
        paths = {f"{name}_results": f"{cluster}/{d}/{report.RESULTS_JSON}" for name, d in _EVAL_DIRS.items()}
        summaries.append(summarize_cluster(cluster, tuned, untuned, **paths))
    summary = ExperimentSummary(collection, summaries)
    if jax.process_index() == 0:
        write_summary(summary, output_dir)
    return summary


def summary_table(summary: ExperimentSummary) -> str:
    """Markdown table: per cluster the untuned and tuned mean/best-template scores and the gain."""
    header = "| cluster | tasks | steps | untuned mean | untuned best | tuned mean | tuned best | gain | chance |"
    lines = [header, "|---|---|---|---|---|---|---|---|---|"]
    for c in summary.clusters:
        scores = [c.untuned.mean, c.untuned.best, c.tuned.mean, c.tuned.best]
        cells = [c.cluster, str(len(c.tasks)), str(c.steps), *(f"{x:.1f}" for x in scores), f"{c.gain:+.1f}",
                 "" if c.chance is None else f"{c.chance:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(summary: ExperimentSummary) -> str:
    """The whole `summary.md`."""
    md = lambda path: str(pathlib.PurePosixPath(path).with_suffix(".md"))  # noqa: E731
    links = ", ".join(f"{c.cluster} [tuned]({md(c.tuned_results)}), [untuned]({md(c.untuned_results)})"
                      for c in summary.clusters)
    return "\n\n".join([
        f"# Held-out clusters: {summary.collection}",
        "Zero-shot score on each held-out cluster of the model instruction-tuned on the other clusters, beside "
        "the untuned starting model: each task's primary metric (percent) averaged over the cluster's tasks, "
        "for the mean over templates and the best template; gain = tuned mean - untuned mean.",
        summary_table(summary),
        f"![summary]({SUMMARY_PNG})",
        f"Per-cluster reports: {links}.",
    ]) + "\n"


def plot_summary(summary: ExperimentSummary, path: str | pathlib.Path) -> None:
    """Grouped bars per cluster (untuned and tuned mean template), best-template markers, chance lines."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    clusters, width = summary.clusters, 0.38
    figure = Figure(figsize=(max(6.4, 1.4 * len(clusters) + 2.0), 4.8))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for offset, name, color in ((-width / 2, "untuned", "tab:gray"), (width / 2, "tuned", "tab:blue")):
        scores, xs = [getattr(c, name) for c in clusters], [i + offset for i in range(len(clusters))]
        axes.bar(xs, [s.mean for s in scores], width, color=color, label=f"{name}: mean template")
        axes.scatter(xs, [s.best for s in scores], marker="D", s=22, color="black", zorder=3,
                     label="best template" if name == "tuned" else None)
    chance = [(i, c.chance) for i, c in enumerate(clusters) if c.chance is not None]
    for k, (i, level) in enumerate(chance):  # labelled once
        axes.hlines(level, i - width, i + width, colors="tab:red", linestyles="dashed", label=None if k else "chance")
    axes.set_xticks(range(len(clusters)), [c.cluster for c in clusters])
    axes.set(xlabel="held-out cluster", ylabel="score (%): primary metric, mean over tasks", ylim=(0, 100),
             title=f"Held-out clusters of {summary.collection}: zero-shot, untuned vs. tuned")
    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=4, frameon=False)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_summary(summary: ExperimentSummary, output_dir: str | pathlib.Path) -> str:
    """Writes summary.md, summary.json and summary.png under `output_dir`; returns the markdown."""
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    markdown = summary_markdown(summary)
    (output_dir / SUMMARY_MD).write_text(markdown, encoding="utf-8")
    (output_dir / SUMMARY_JSON).write_text(json.dumps(dataclasses.asdict(summary), indent=2), encoding="utf-8")
    plot_summary(summary, output_dir / SUMMARY_PNG)
    return markdown
