import json

from it_jax.evaluation import report


def _results():
    def template(k, value):
        return {"template": k, "num_examples": 10, "metrics": {"accuracy": value}, "samples": []}

    return {
        "task_a": {"cluster": "c", "scoring": "rank", "templates": [template(0, 40.0), template(1, 60.0)],
                   "mean": {"accuracy": 50.0}, "best": {"accuracy": 60.0}},
        "task_b": {"cluster": "c", "scoring": "rank", "templates": [template(0, 70.0)],
                   "mean": {"accuracy": 70.0}, "best": {"accuracy": 70.0}},
    }


def test_markdown_table_has_a_row_per_task_and_the_overall_mean():
    table = report.markdown_table(_results())
    lines = table.splitlines()
    assert lines[0] == "| task | cluster | metric | t0 | t1 | mean | best |"
    assert lines[2] == "| task_a | c | accuracy | 40.0 | 60.0 | 50.0 | 60.0 |"
    assert lines[3] == "| task_b | c | accuracy | 70.0 |  | 70.0 | 70.0 |"
    assert "**60.0**" in lines[4]


def test_write_report_writes_json_and_markdown(tmp_path):
    markdown = report.write_report(_results(), tmp_path / "eval", title="Held-out c")
    assert json.loads((tmp_path / "eval" / "results.json").read_text())["task_a"]["mean"]["accuracy"] == 50.0
    assert (tmp_path / "eval" / "results.md").read_text() == markdown
    assert markdown.startswith("# Held-out c\n")
