"""The periodic evaluation's loss mode per task, with a stand-in eval function (no model): what is logged, and
that each task's batches are read once."""

import numpy as np
import pytest

from it_jax.evaluation import periodic


def summing_eval(params, batch):
    """Sums a batch's made-up statistics: every row is `[nll, correct, tokens]`."""
    nll, correct, tokens = (batch["stats"] * params).sum(axis=0)
    return {"nll_sum": nll, "correct": correct, "tokens": tokens}


def _batches(rows, opened):
    def fresh():
        opened.append(1)
        for row in rows:
            yield {"stats": np.asarray([row], dtype=np.float64)}

    return fresh


def test_loss_per_task_and_pooled_over_tasks():
    opened = []
    batches = {
        "task_a": _batches([[6.0, 1.0, 2.0], [2.0, 1.0, 2.0], [100.0, 0.0, 1.0]], opened),  # third batch unused
        "task_b": _batches([[3.0, 3.0, 4.0]], opened),
    }
    hook = periodic.PeriodicEval(evaluate=summing_eval, batches=batches, num_batches=2)
    metrics = hook.run(1.0)
    assert metrics == {
        "eval/loss": pytest.approx(11.0 / 8),
        "eval/accuracy": pytest.approx(5.0 / 8),
        "eval/tokens": 8.0,
        "eval/task_a/loss": pytest.approx(8.0 / 4),
        "eval/task_a/accuracy": pytest.approx(2.0 / 4),
        "eval/task_b/loss": pytest.approx(3.0 / 4),
        "eval/task_b/accuracy": pytest.approx(3.0 / 4),
    }
    # The same batches again (read once), scored with other parameters.
    assert hook.run(2.0)["eval/task_a/loss"] == pytest.approx(16.0 / 8) and len(opened) == 2
    assert sorted(metrics) == sorted(periodic.metric_names(loss=True, jobs=[], loss_tasks=["task_a", "task_b"]))


def test_one_eval_set_logs_no_task_metrics():
    hook = periodic.PeriodicEval(evaluate=summing_eval, batches=_batches([[4.0, 1.0, 2.0]], []), num_batches=5)
    assert hook.run(1.0) == {"eval/loss": 2.0, "eval/accuracy": 0.5, "eval/tokens": 2.0}


def test_a_task_without_eval_batches_is_named():
    batches = {"task_a": _batches([[1.0, 1.0, 1.0]], []), "task_empty": _batches([], [])}
    hook = periodic.PeriodicEval(evaluate=summing_eval, batches=batches, num_batches=1)
    with pytest.raises(ValueError, match="no batches for task 'task_empty'"):
        hook.run(1.0)
    with pytest.raises(ValueError, match="needs eval batches"):
        periodic.PeriodicEval(evaluate=summing_eval, batches={}, num_batches=1)
