"""Training objectives: cross-entropy as the old formula, DPO against a hand computation from the model's
logits, microbatching, and cached against live reference log-probabilities."""

import json

import jax
import numpy as np
import pytest
import tiny

from it_jax import sharding
from it_jax.evaluation import periodic
from it_jax.train import losses, objectives
from it_jax.train import trainer as trainer_lib


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _target_logps(logits, features) -> np.ndarray:
    """Each row's summed log-probability of its weighted targets, in float64 numpy."""
    log_probs = _log_softmax(np.asarray(logits))
    targets = np.asarray(features["decoder_target_tokens"])
    token = np.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    return (token * (np.asarray(features["decoder_loss_weights"]) > 0)).sum(axis=-1)


def _pairs(seed: int, reference_logps=None) -> dict[str, np.ndarray]:
    """Preference pairs from two LM batches; the last row is padding (no weighted chosen token)."""
    chosen, rejected = tiny.lm_batch(seed), tiny.lm_batch(seed + 100)
    chosen["decoder_loss_weights"][-1] = 0
    batch = {f"chosen_{k}": v for k, v in chosen.items()} | {f"rejected_{k}": v for k, v in rejected.items()}
    if reference_logps is not None:
        batch["reference_chosen_logps"], batch["reference_rejected_logps"] = reference_logps
    return batch


def _model_logps(model, batch):
    return [
        _target_logps(model.logits_from_features(objectives.side(batch, name)), objectives.side(batch, name))
        for name in ("chosen", "rejected")
    ]


def test_cross_entropy_is_the_token_loss(stacked_spec, make_lm_batch):
    model = stacked_spec.bind(stacked_spec.init_params(0))
    batch = make_lm_batch(0)
    config = losses.LossConfig(z_loss=1e-3, label_smoothing=0.1)
    objective = objectives.CrossEntropy(config)
    loss, stats = objective(model, batch, rngs=None, normalizer=objective.denominator(batch))
    old = losses.cross_entropy(
        model.logits_from_features(batch), batch["decoder_target_tokens"], batch["decoder_loss_weights"], config=config
    )
    np.testing.assert_allclose(loss, old[0], rtol=1e-6)
    assert stats.keys() == old[1].keys()
    # The plain NLL statistic, by hand.
    nll = -_target_logps(model.logits_from_features(batch), batch).sum()
    np.testing.assert_allclose(stats["nll_sum"], nll, rtol=1e-5)
    metrics = objective.metrics({k: float(v) for k, v in stats.items()})
    assert metrics["loss"] == pytest.approx(nll / batch["decoder_loss_weights"].sum(), rel=1e-5)
    assert set(metrics) == {"loss", "accuracy", "z_loss"}
    assert "decoder_causal_attention" in objective.features("prefix_lm")


@pytest.mark.parametrize("loss_type, smoothing", [("sigmoid", 0.0), ("sigmoid", 0.2), ("ipo", 0.0)])
def test_dpo_matches_a_hand_computation(stacked_spec, loss_type, smoothing):
    model = stacked_spec.bind(stacked_spec.init_params(0))
    reference = (np.array([-30.0, -40, -35, -20, -33, -31, -25, -28]), np.array([-32.0, -38, -36, -21, -30, -35, -27, 0]))
    batch = _pairs(3, reference)
    beta = 0.5
    objective = objectives.DPO(beta=beta, loss_type=loss_type, label_smoothing=smoothing)
    loss, stats = objective(model, batch, rngs=None, normalizer=objective.denominator(batch))

    chosen, rejected = _model_logps(model, batch)
    margin = (chosen - reference[0]) - (rejected - reference[1])
    log_sigmoid = lambda x: -np.logaddexp(0.0, -x)  # noqa: E731
    if loss_type == "ipo":
        per_pair = (margin - 1 / (2 * beta)) ** 2
    else:
        per_pair = -(1 - smoothing) * log_sigmoid(beta * margin) - smoothing * log_sigmoid(-beta * margin)
    real = slice(0, 7)  # the last row is padding
    np.testing.assert_allclose(loss, per_pair[real].mean(), rtol=1e-5)
    np.testing.assert_allclose(stats["pairs"], 7)
    np.testing.assert_allclose(stats["reward_margin_sum"], beta * margin[real].sum(), rtol=1e-5)
    np.testing.assert_allclose(stats["reward_correct"], (margin[real] > 0).sum())
    np.testing.assert_allclose(stats["chosen_logps_sum"], chosen[real].sum(), rtol=1e-5)
    metrics = objective.metrics({k: float(v) for k, v in stats.items()})
    assert metrics["reward_accuracy"] == pytest.approx((margin[real] > 0).mean())
    assert metrics["rejected_logps"] == pytest.approx(rejected[real].mean(), rel=1e-5)


def test_dpo_names_its_features_and_refuses_bad_settings():
    features = objectives.DPO().features("encoder_decoder")
    assert {"chosen_encoder_input_tokens", "rejected_decoder_loss_weights", "reference_chosen_logps"} <= set(features)
    assert "reference_chosen_logps" not in objectives.DPO(reference="live").features("decoder_only")
    with pytest.raises(ValueError, match="reference 'frozen' is unknown"):
        objectives.DPO(reference="frozen")
    with pytest.raises(ValueError, match="loss_type 'hinge' is unknown"):
        objectives.DPO(loss_type="hinge")


def _trainer(spec, optimizer, schedule, objective, microbatches=1):
    mesh = sharding.create_mesh(data=2, devices=jax.devices()[:2])
    return trainer_lib.Trainer(
        spec=spec, optimizer=optimizer, schedule=schedule, mesh=mesh, objective=objective, microbatches=microbatches
    )


def test_microbatched_dpo_equals_the_whole_batch(stacked_spec, optimizer, schedule):
    batch = _pairs(5, (np.linspace(-40, -20, 8), np.linspace(-30, -35, 8)))
    results = []
    for microbatches in (1, 4):
        trainer = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(beta=0.3), microbatches)
        results.append(trainer.step(trainer.init(seed=0), trainer.to_global(batch)))
    (full, full_stats), (split, split_stats) = results
    for name in ("loss_sum", "pairs", "reward_margin_sum", "grad_norm"):
        np.testing.assert_allclose(full_stats[name], split_stats[name], rtol=1e-5, atol=1e-6)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(split.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_cached_and_live_reference_give_the_same_loss(stacked_spec, optimizer, schedule):
    live = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(beta=0.3, reference="live"))
    state = live.init(seed=0)
    initial = jax.tree.map(np.asarray, state.params)
    batch = _pairs(7)
    cached_batch = _pairs(7, _model_logps(stacked_spec.bind(state.params), batch))
    cached = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(beta=0.3))
    _, cached_stats = cached.step(cached.init(seed=0), cached.to_global(cached_batch))
    for _ in range(2):
        state, live_stats = live.step(state, live.to_global(batch))
        if int(state.step) == 1:
            for name in ("loss_sum", "reward_margin_sum", "grad_norm"):
                np.testing.assert_allclose(live_stats[name], cached_stats[name], rtol=1e-4, atol=1e-5)
    # The reference stays the initial parameters while the policy moves away from them.
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, state.reference), initial)
    assert float(live_stats["reward_margin_sum"]) != 0.0
    eval_stats = live.eval(state.params, live.to_global(batch), reference=state.reference)
    assert float(eval_stats["pairs"]) == 7
    # Periodic evaluation of a live-reference objective: the DPO metrics, the reference passed along.
    evaluation = periodic.PeriodicEval(
        evaluate=live.eval_host_batch, batches=lambda: iter([batch]), num_batches=1, summarize=live.objective.metrics
    )
    metrics = evaluation.run(state.params, reference=state.reference)
    expected = live.objective.metrics({k: float(v) for k, v in eval_stats.items()})
    assert metrics == pytest.approx({f"eval/{name}": value for name, value in expected.items()})
    with pytest.raises(ValueError, match="reference parameters too"):
        live.eval(state.params, live.to_global(batch))


def test_a_live_reference_dpo_run_resumes_bitwise_and_logs_dpo_metrics(tmp_path, stacked_spec, optimizer, schedule):
    trainer = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(beta=0.3, reference="live"))

    def batches(position):
        while True:
            yield _pairs(position)
            position += 1

    common = {"trainer": trainer, "batches": batches, "tensorboard": False, "log_every": 1}
    trainer_lib.train(model_dir=tmp_path, num_steps=2, save_every=1, **common)
    resumed = trainer_lib.train(model_dir=tmp_path, num_steps=3, save_every=1, **common)
    straight = trainer_lib.train(model_dir=tmp_path / "straight", num_steps=3, save_every=10, **common)
    for tree in ("params", "reference"):
        tiny.assert_bitwise_equal(
            jax.tree.map(np.asarray, getattr(resumed, tree)), jax.tree.map(np.asarray, getattr(straight, tree))
        )
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3]
    assert {"loss", "reward_margin", "reward_accuracy", "chosen_logps", "rejected_logps"} <= set(records[-1])
    assert "accuracy" not in records[-1]


def test_a_cached_reference_run_compiles_ahead_for_float_features(tmp_path, stacked_spec, optimizer, schedule):
    trainer = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(beta=0.3))
    lowered_for = []
    lower = trainer.lower
    trainer.lower = lambda state, specs: lowered_for.append(specs) or lower(state, specs)
    batch = _pairs(1, (np.full(8, -30.0, np.float32), np.full(8, -31.0, np.float32)))
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) if v.dtype != np.int32 else v.shape for k, v in batch.items()}
    state = trainer_lib.train(
        trainer=trainer, batches=lambda position: iter([batch] * 2), model_dir=tmp_path, num_steps=2,
        batch_shapes=shapes, tensorboard=False, log_every=1,
    )
    assert int(state.step) == 2 and state.reference is None
    (specs,) = lowered_for
    assert {name: spec.dtype for name, spec in specs.items()} == {name: value.dtype for name, value in batch.items()}


def test_a_warm_started_live_reference_is_the_loaded_parameters(tmp_path, stacked_spec, optimizer, schedule):
    source = _trainer(stacked_spec, optimizer, schedule, objectives.CrossEntropy())
    pretrained = trainer_lib.train(
        trainer=source, batches=lambda position: iter([tiny.lm_batch(0)]), model_dir=tmp_path / "sft", num_steps=1,
        tensorboard=False,
    ).params
    dpo = _trainer(stacked_spec, optimizer, schedule, objectives.DPO(reference="live"))
    state = trainer_lib.train(
        trainer=dpo, batches=lambda position: iter(()), model_dir=tmp_path / "dpo", num_steps=0,
        init_from=str(tmp_path / "sft"), tensorboard=False,
    )
    expected = jax.tree.map(np.asarray, pretrained)
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, state.reference), expected)
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, state.params), expected)


def test_dpo_step_flops_count_both_sides_and_a_live_reference(tiny_config):
    from it_jax import launch
    from it_jax.train import flops

    shapes = {"encoder_input_tokens": (8, 12), "decoder_target_tokens": (8, 6)}
    one_side = flops.train_flops_per_step(tiny_config, shapes)
    pairs = {f"{side}_{name}": shape for side in ("chosen", "rejected") for name, shape in shapes.items()}
    pairs["reference_chosen_logps"] = (8,)
    assert launch.train_flops(tiny_config, objectives.CrossEntropy(), shapes) == one_side
    assert launch.train_flops(tiny_config, objectives.DPO(), pairs) == 2 * one_side
    assert launch.train_flops(tiny_config, objectives.DPO(reference="live"), pairs) == pytest.approx(
        2 * one_side * (1 + 1 / flops.TRAIN_FACTOR)
    )


def test_the_step_compiles_ahead_only_for_features_the_objective_reads(tiny_config):
    import types

    from it_jax import launch
    from it_jax.data import layout

    run = types.SimpleNamespace(
        layout=layout.ENCODER_DECODER, model_config=tiny_config, task_feature_lengths={"inputs": 12, "targets": 6}
    )
    shapes = launch._known_batch_shapes(run, objectives.CrossEntropy(), batch_size=4, pack=True)
    assert shapes["encoder_input_tokens"] == (4, 12) and shapes["decoder_target_tokens"] == (4, 6)
    assert launch._known_batch_shapes(run, objectives.DPO(), batch_size=4, pack=True) is None
