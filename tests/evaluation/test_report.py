import json

import pytest

from it_jax.evaluation import report
from it_jax.evaluation.results import EvalResults, TaskResult, TemplateResult


def _results():
    def template(k, value):
        return TemplateResult(k, 10, {"accuracy": value}, chance=50.0, majority=60.0 + k * 10)

    return EvalResults(
        tasks=[
            TaskResult("task_a", "c", "zs_opt", "rank", [template(0, 40.0), template(1, 60.0)]),
            TaskResult("task_b", "c", "zs_opt", "rank", [template(0, 70.0)]),
            TaskResult("task_a", "c", "fs_opt", "rank", [template(0, 20.0), template(1, 30.0)]),
        ],
        split="validation",
        checkpoint="runs/x",
        step=6,
    )


def _task(name, scores, *, seen, chance=100.0 / 3, majority=40.0, examples=100):
    templates = [TemplateResult(k, examples, {"accuracy": s}, chance, majority) for k, s in enumerate(scores)]
    return TaskResult(name, "c", "zs_opt", "rank", templates, seen)


def _generated(name, score, *, seen, majority=2.0):
    template = TemplateResult(0, 100, {"exact_match": score}, None, majority)
    return TaskResult(name, "g", "zs_opt", "generate", [template], seen)


def test_template_table_has_a_row_per_task_and_variant_and_the_overall_mean():
    lines = report.template_table(_results()).splitlines()
    assert lines[0] == "| task | variant | cluster | trained | metric | t0 | t1 | mean | best | chance | majority |"
    assert lines[2] == "| task_a | zs_opt | c |  | accuracy | 40.0 | 60.0 | 50.0 | 60.0 | 50.0 | 65.0 |"
    assert lines[3] == "| task_b | zs_opt | c |  | accuracy | 70.0 |  | 70.0 | 70.0 | 50.0 | 60.0 |"
    assert lines[4] == "| task_a | fs_opt | c |  | accuracy | 20.0 | 30.0 | 25.0 | 30.0 | 50.0 | 65.0 |"
    assert lines[5] == "| **mean** |  |  |  |  |  |  | **48.3** |  | 50.0 | 63.3 |"


def test_template_table_marks_trained_tasks_and_generation_has_no_chance():
    results = EvalResults([_task("held", [30.0], seen=False), _generated("gen", 12.0, seen=True)], "validation")
    lines = report.template_table(results).splitlines()
    assert lines[2] == "| held | zs_opt | c | no | accuracy | 30.0 | 30.0 | 30.0 | 33.3 | 40.0 |"
    assert lines[3] == "| gen | zs_opt | g | yes | exact_match | 12.0 | 12.0 | 12.0 | n/a | 2.0 |"
    # A mean chance over tasks some of which have none would mislead: n/a.
    assert lines[4].endswith("| **21.0** |  | n/a | 21.0 |")


def test_verdict_no_transfer_on_held_out_tasks_but_seen_tasks_learned():
    results = EvalResults(
        [
            _task("held_1", [35.0, 36.2], seen=False),
            _task("held_2", [34.0, 36.0], seen=False, majority=38.0),
            _task("seen_1", [92.0, 94.0], seen=True, chance=50.0, majority=52.0),
        ],
        "validation",
    )
    line = report.verdict(results)
    assert line.startswith("**Verdict:** held-out tasks 35.3 vs chance 33.3 / majority 39.0: at the baselines")
    assert "no zero-shot transfer" in line and "68B" in line
    assert "seen tasks 93.0 vs chance 50.0 / majority 52.0: above the baselines, learned in training" in line
    assert report.verdict(results) in report.markdown(results, title="t")


def test_verdict_outcomes_follow_the_margin_of_two_standard_errors():
    # 100 examples at a 40% baseline: two standard errors are 9.8 points.
    group = report.GroupScore.of([_task("a", [49.0], seen=False)])
    assert group.baseline == pytest.approx(40.0) and group.margin == pytest.approx(9.8, abs=0.01)
    assert group.outcome == "at"
    assert report.GroupScore.of([_task("a", [50.0], seen=False)]).outcome == "above"
    assert report.GroupScore.of([_task("a", [30.0], seen=False)]).outcome == "below"
    transfer = report.verdict(EvalResults([_task("a", [70.0], seen=False)], "validation"))
    assert "above the baselines, zero-shot transfer" in transfer and "68B" not in transfer
    unlearned = report.verdict(EvalResults([_task("s", [41.0], seen=True)], "validation"))
    assert "seen tasks 41.0" in unlearned and "not learned" in unlearned and "held-out" not in unlearned
    worse = report.verdict(EvalResults([_task("s", [20.0], seen=True)], "validation"))
    assert "below the baselines, not learned" in worse


def test_verdict_without_knowing_what_was_trained_compares_all_tasks():
    line = report.verdict(_results())
    assert line.startswith("**Verdict:** mean 48.3 vs chance 50.0 / majority 63.3: ")
    assert "held-out" not in line and "seen" not in line
    assert report.verdict(EvalResults([], "validation")) == ""


def test_summaries_by_cluster_and_variant():
    by_variant = report.summary_table(_results(), lambda t: t.variant, "variant").splitlines()
    assert by_variant[2] == "| zs_opt | 2 | 60.0 | 65.0 |"
    assert by_variant[3] == "| fs_opt | 1 | 25.0 | 30.0 |"
    by_cluster = report.summary_table(_results(), lambda t: t.cluster, "cluster").splitlines()
    assert by_cluster[2] == "| c | 3 | 48.3 | 53.3 |"


def test_write_report_writes_json_and_markdown_and_reads_back(tmp_path):
    markdown = report.write_report(_results(), tmp_path / "eval", title="Held-out c")
    data = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert data["tasks"][0]["mean"]["accuracy"] == 50.0 and data["step"] == 6
    assert (tmp_path / "eval" / "results.md").read_text() == markdown
    assert "[results.json](results.json)" in markdown and "## By cluster" in markdown
    assert report.read_results(tmp_path / "eval") == _results()
    assert data["tasks"][0]["chance"] == 50.0 and data["tasks"][0]["majority"] == 65.0
    assert data["tasks"][0]["templates"][1]["majority"] == 70.0 and data["tasks"][0]["seen"] is None


def test_baselines_and_seen_round_trip_through_json(tmp_path):
    results = EvalResults([_task("held", [30.0, 40.0], seen=False), _generated("gen", 12.0, seen=True)], "validation")
    report.write_report(results, tmp_path, title="t")
    back = report.read_results(tmp_path)
    assert back == results
    assert [t.seen for t in back.tasks] == [False, True]
    assert back.tasks[0].chance == pytest.approx(100.0 / 3) and back.tasks[1].chance is None


def test_results_written_before_baselines_still_read():
    old = {"tasks": [{"task": "a", "cluster": "c", "variant": "zs_opt", "scoring": "rank",
                      "templates": [{"template": 0, "num_examples": 4, "metrics": {"accuracy": 50.0}}]}],
           "split": "validation"}
    (task,) = EvalResults.from_json(old).tasks
    assert task.seen is None and task.chance is None and task.majority is None
    assert "n/a" in report.template_table(EvalResults([task], "validation"))
