import json

from it_jax.evaluation import report
from it_jax.evaluation.results import EvalResults, TaskResult, TemplateResult


def _results():
    def template(k, value):
        return TemplateResult(k, 10, {"accuracy": value})

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


def test_template_table_has_a_row_per_task_and_variant_and_the_overall_mean():
    lines = report.template_table(_results()).splitlines()
    assert lines[0] == "| task | variant | cluster | metric | t0 | t1 | mean | best |"
    assert lines[2] == "| task_a | zs_opt | c | accuracy | 40.0 | 60.0 | 50.0 | 60.0 |"
    assert lines[3] == "| task_b | zs_opt | c | accuracy | 70.0 |  | 70.0 | 70.0 |"
    assert lines[4] == "| task_a | fs_opt | c | accuracy | 20.0 | 30.0 | 25.0 | 30.0 |"
    assert "**48.3**" in lines[5]


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
