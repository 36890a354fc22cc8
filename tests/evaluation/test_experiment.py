"""The held-out-cluster experiment: summary computation and files, and scripts/heldout_experiment.py end to end
(two synthetic clusters, tiny sizes: a run, then a rerun that skips the finished cluster and resumes the other)."""

import json
import os
import pathlib
import subprocess
import sys

import pytest
import tiny

from it_jax.evaluation import experiment, report
from it_jax.evaluation.results import EvalResults, TaskResult, TemplateResult

pytestmark = pytest.mark.usefixtures("synthetic_tasks")

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [
    *tiny.T5_GIN_BINDINGS,
    "train_run.save_every = 2",
    "train_run.log_every = 1",
    "train_run.tensorboard = False",
]
CLUSTERS = ["entailment", "comparison"]


def _task(name, cluster, metric, scores):
    templates = [TemplateResult(k, 10, {metric: s}) for k, s in enumerate(scores)]
    return TaskResult(name, cluster, "zs_opt", "rank" if metric == "accuracy" else "generate", templates)


def _results(*tasks, step=None):
    return EvalResults(list(tasks), "validation", step=step)


def test_cluster_scores_average_each_tasks_primary_metric():
    results = _results(
        _task("synthetic_syllogism", "entailment", "accuracy", [40.0, 60.0, 80.0]),  # mean 60, best 80
        _task("synthetic_item_inference", "entailment", "accuracy", [20.0, 30.0]),  # mean 25, best 30
    )
    assert experiment.cluster_scores(results) == experiment.Scores(mean=42.5, best=55.0)
    assert experiment.chance_level(results) == pytest.approx(100 / 3)  # three options each
    with_generation = _results(_task("synthetic_addition", "arithmetic", "exact_match", [5.0]))
    assert experiment.chance_level(with_generation) is None
    with pytest.raises(ValueError):
        experiment.cluster_scores(_results())


def test_summary_files_from_hand_made_results(tmp_path):
    tuned = _results(_task("synthetic_syllogism", "entailment", "accuracy", [50.0, 70.0]), step=300)
    untuned = _results(_task("synthetic_syllogism", "entailment", "accuracy", [30.0, 40.0]), step=0)
    cluster = experiment.summarize_cluster(
        "entailment", tuned, untuned, tuned_results="entailment/eval/results.json",
        untuned_results="entailment/eval_untuned/results.json",
    )
    assert (cluster.tuned, cluster.untuned, cluster.steps) == (
        experiment.Scores(60.0, 70.0), experiment.Scores(35.0, 40.0), 300
    )
    assert cluster.gain == 25.0 and cluster.tasks == ["synthetic_syllogism"]
    other = experiment.summarize_cluster(
        "arithmetic", _results(_task("synthetic_addition", "arithmetic", "exact_match", [10.0, 20.0]), step=300),
        _results(_task("synthetic_addition", "arithmetic", "exact_match", [0.0, 0.0])),
        tuned_results="arithmetic/eval/results.json", untuned_results="arithmetic/eval_untuned/results.json",
    )
    summary = experiment.ExperimentSummary("synthetic", [cluster, other])
    markdown = experiment.write_summary(summary, tmp_path)

    assert "| entailment | 1 | 300 | 35.0 | 40.0 | 60.0 | 70.0 | +25.0 | 33.3 |" in markdown
    assert "| arithmetic | 1 | 300 | 0.0 | 0.0 | 15.0 | 20.0 | +15.0 |  |" in markdown
    assert (tmp_path / "summary.md").read_text() == markdown
    loaded = json.loads((tmp_path / "summary.json").read_text())
    assert loaded["clusters"][0]["tuned"] == {"mean": 60.0, "best": 70.0}
    assert loaded["clusters"][0]["tuned_results"] == "entailment/eval/results.json"
    assert experiment.ExperimentSummary.from_json(loaded) == summary
    assert (tmp_path / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _experiment(output_dir, cache_dir, *flags) -> str:
    args = [sys.executable, str(REPO / "scripts" / "heldout_experiment.py"), f"--output_dir={output_dir}"]
    args += [f"--gin_bindings={b}" for b in TINY] + ["--train_steps=2", "--max_examples=2", *flags]
    env = {
        **os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO),
        # Three runs compile the same tiny model: let the later ones reuse the first one's executables.
        "JAX_COMPILATION_CACHE_DIR": str(cache_dir), "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    }
    result = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_two_clusters_run_skip_when_finished_and_resume(tmp_path):
    output_dir, cache = tmp_path / "heldout", tmp_path / "jax_cache"
    out = _experiment(output_dir, cache, f"--clusters={','.join(CLUSTERS)}")
    for cluster in CLUSTERS:
        assert f"[{cluster}] training on synthetic_heldout_{cluster}" in out
        assert f"[{cluster}] evaluating the untuned starting model (fresh initialization (seed 0))" in out
        assert f"| {cluster} | 2 | 2 |" in out  # the printed summary table
        for name in ("eval", "eval_untuned"):
            results = report.read_results(output_dir / cluster / name)
            assert {task.cluster for task in results.tasks} == {cluster}
            assert all(t.num_examples == 2 for task in results.tasks for t in task.templates)
    assert sorted(p.name for p in (output_dir / "entailment" / "checkpoints").iterdir()) == ["2"]
    summary = json.loads((output_dir / "summary.json").read_text())
    assert [c["cluster"] for c in summary["clusters"]] == CLUSTERS
    for cluster in summary["clusters"]:
        assert cluster["steps"] == 2 and 0.0 <= cluster["untuned"]["mean"] <= cluster["untuned"]["best"] <= 100.0
    assert (output_dir / "summary.png").stat().st_size > 0 and (output_dir / "summary.md").is_file()
    untuned_written = (output_dir / "comparison" / "eval_untuned" / "results.json").stat().st_mtime_ns
    entailment_written = (output_dir / "entailment" / "eval" / "results.json").stat().st_mtime_ns

    # Rerun after `comparison` was interrupted before its evaluation was written: `entailment` is skipped,
    # `comparison` resumes from its checkpoint and evaluates the tuned model only.
    (output_dir / "comparison" / "eval" / "results.json").unlink()
    out = _experiment(output_dir, cache, f"--clusters={','.join(CLUSTERS)}")
    assert "[entailment] finished (step 2); skipping" in out and "[entailment] training" not in out
    assert "[comparison] training on" in out and "Resuming from step 2" in out
    assert "[comparison] evaluating the tuned model (step 2)" in out and "evaluating the untuned" not in out
    assert (output_dir / "comparison" / "eval" / "results.json").is_file()
    assert (output_dir / "comparison" / "eval_untuned" / "results.json").stat().st_mtime_ns == untuned_written
    assert (output_dir / "entailment" / "eval" / "results.json").stat().st_mtime_ns == entailment_written
