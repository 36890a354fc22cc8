import json

import jax
import numpy as np
import pytest

from it_jax import sharding
from it_jax.evaluation.periodic import PeriodicEval
from it_jax.train import hooks, objectives
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer


def test_eval_metrics_over_a_fixed_set_read_once(stacked_spec, optimizer, schedule, make_lm_batch):
    mesh = sharding.create_mesh(data=2, devices=jax.devices()[:2])
    trainer = trainer_lib.Trainer(spec=stacked_spec, optimizer=optimizer, schedule=schedule, mesh=mesh)
    opened = []

    def batches():
        opened.append(1)
        for i in range(100):
            yield make_lm_batch(i)

    evaluation = PeriodicEval(evaluate=trainer.eval_host_batch, batches=batches, num_batches=2)
    state = trainer.init(seed=0)
    first = evaluation.run(state.params)
    # The loss of the same parameters on both batches at once, computed eagerly.
    both = {k: np.concatenate([make_lm_batch(0)[k], make_lm_batch(1)[k]]) for k in make_lm_batch(0)}
    totals = trainer_lib.eval_step(state.params, both, spec=stacked_spec, objective=objectives.CrossEntropy())
    tokens = float(totals["tokens"])
    assert first["eval/loss"] == pytest.approx(float(totals["nll_sum"]) / tokens, rel=1e-5)
    assert first["eval/tokens"] == tokens and 0.0 <= first["eval/accuracy"] <= 1.0
    assert evaluation.run(state.params) == first
    assert opened == [1]


def test_eval_during_training_is_logged_and_ranks_checkpoints(
    tmp_path, stacked_spec, optimizer, schedule, make_lm_batch
):
    trainer = trainer_lib.Trainer(
        spec=stacked_spec, optimizer=optimizer, schedule=schedule, mesh=sharding.create_mesh(devices=jax.devices()[:1])
    )

    def batches(position):
        while True:
            yield make_lm_batch(position % 2)
            position += 1

    evaluation = PeriodicEval(evaluate=trainer.eval_host_batch, batches=lambda: batches(0), num_batches=1)
    trainer_lib.train(
        trainer=trainer, batches=batches, model_dir=tmp_path, num_steps=4, save_every=2, keep_checkpoints=1,
        keep_best=1, hooks=[hooks.Evaluate(evaluation.run, every=2)], log_every=2, tensorboard=False,
    )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r["eval/loss"] for r in records if "eval/loss" in r}
    assert sorted(evals) == [2, 4] and all(loss > 0 for loss in evals.values())
    # The latest checkpoint, and the one with the lower eval loss.
    best = min(evals, key=evals.get)
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    assert checkpointer.all_steps() == sorted({best, 4})
    checkpointer.close()


def test_metrics_mode_logs_flattened_evaluator_results(spec, optimizer, schedule):
    from it_jax.evaluation import periodic
    from it_jax.evaluation.results import EvalResults, TaskResult, TemplateResult

    trainer = trainer_lib.Trainer(
        spec=spec, optimizer=optimizer, schedule=schedule, mesh=sharding.create_mesh(devices=jax.devices()[:1])
    )
    seen = []

    def task_metrics(params):
        seen.append(params)
        results = EvalResults(
            tasks=[
                TaskResult("a", "c", "zs_opt", "rank", [TemplateResult(0, 4, {"accuracy": 50.0}),
                                                          TemplateResult(1, 4, {"accuracy": 100.0})]),
                TaskResult("b", "c", "fs_opt", "generate", [TemplateResult(0, 4, {"bleu": 10.0, "rouge1": 20.0})]),
            ],
            split="validation",
        )
        return periodic.flatten_results(results)

    hook = periodic.PeriodicEval(
        evaluate=trainer.eval_host_batch, batches=None, num_batches=1, task_metrics=task_metrics
    )
    metrics = hook.run("params")
    assert seen == ["params"]
    assert metrics == {"eval/a/zs_opt/accuracy": 75.0, "eval/b/fs_opt/bleu": 10.0, "eval/b/fs_opt/rouge1": 20.0,
                       "eval/mean_template": 42.5}
    with pytest.raises(ValueError, match="needs eval batches"):
        periodic.PeriodicEval(evaluate=trainer.eval_host_batch, batches=None, num_batches=1)
