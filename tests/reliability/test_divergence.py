"""The divergence policy: a non-finite step stops the run (naming it) or is skipped; nothing non-finite is saved."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from it_jax import sharding
from it_jax.models.spec import ModelSpec
from it_jax.train import divergence, optimizers
from it_jax.train import trainer as trainer_lib
from it_jax.train.checkpoints import Checkpointer


class PoisonableLM(tiny.StackedMlpLM):
    """The toy LM whose logits turn NaN on the rows a batch marks with `poison`."""

    def logits_from_features(self, features, *, rngs=None):
        logits = super().logits_from_features(features, rngs=rngs)
        return logits + jnp.where(features["poison"][:, :, None] > 0, jnp.nan, 0.0)


def _trainer(policy: divergence.DivergencePolicy, learning_rate: float = 1e-2) -> trainer_lib.Trainer:
    schedule = optimizers.make_schedule(base_learning_rate=learning_rate, warmup_steps=1, decay="constant")
    return trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: PoisonableLM(rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(devices=jax.devices()[:1]),
        divergence=policy,
    )


def _poisoned_at(steps: set[int]):
    """Batches whose step (1-based: the batch at position p feeds step p + 1) is in `steps` produce NaN."""

    def batches(position):
        while True:
            batch = tiny.lm_batch(position)
            batch["poison"] = np.full([len(batch["decoder_target_tokens"]), 1], position + 1 in steps, np.int32)
            yield batch
            position += 1

    return batches


def _train(tmp_path, policy, poisoned, *, num_steps=8, **kwargs):
    return trainer_lib.train(
        trainer=_trainer(policy, kwargs.pop("learning_rate", 1e-2)),
        batches=_poisoned_at(poisoned),
        model_dir=tmp_path,
        num_steps=num_steps,
        save_every=2,
        log_every=1,
        tensorboard=False,
        **kwargs,
    )


def _restore(tmp_path, step):
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    try:
        return checkpointer.restore(_trainer(divergence.DivergencePolicy()).abstract_state(), step)
    finally:
        checkpointer.close()


def _steps(tmp_path):
    checkpointer = Checkpointer(tmp_path / "checkpoints")
    try:
        return checkpointer.all_steps()
    finally:
        checkpointer.close()


def _all_finite(tree) -> bool:
    return all(bool(np.isfinite(np.asarray(x)).all()) for x in jax.tree.leaves(tree))


def test_stop_names_the_step_and_keeps_the_finite_checkpoints(tmp_path):
    with pytest.raises(divergence.Diverged) as raised:
        _train(tmp_path, divergence.DivergencePolicy(), poisoned={3}, keep_checkpoints=1)
    assert raised.value.step == 3
    message = str(raised.value)
    assert "at step 3" in message and "step 2" in message and "on_nonfinite" in message
    # keep-1 retention did not replace step 2 with anything non-finite.
    assert _steps(tmp_path) == [2]
    assert _all_finite(_restore(tmp_path, 2))


def test_a_huge_learning_rate_stops_before_any_non_finite_save(tmp_path):
    with pytest.raises(divergence.Diverged) as raised:
        _train(tmp_path, divergence.DivergencePolicy(), poisoned=set(), num_steps=40, learning_rate=1e30)
    for step in _steps(tmp_path):
        assert step < raised.value.step
        assert _all_finite(_restore(tmp_path, step))


def test_skip_drops_the_update_counts_it_and_continues(tmp_path):
    state = _train(tmp_path, divergence.DivergencePolicy("skip"), poisoned={3, 4}, num_steps=6)
    assert int(state.step) == 6 and _all_finite(state)
    before, after = _restore(tmp_path, 2), _restore(tmp_path, 4)
    for a, b in zip(jax.tree.leaves((before.params, before.opt_state)), jax.tree.leaves((after.params, after.opt_state))):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(after.step) == 4
    assert not np.array_equal(np.asarray(after.params["head"]), np.asarray(state.params["head"]))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    skipped = {r["step"]: r.get("skipped_steps", 0) for r in records}
    assert skipped == {1: 0, 2: 0, 3: 1.0, 4: 1.0, 5: 0, 6: 0}
    assert all(np.isfinite(r["loss"]) and np.isfinite(r["grad_norm"]) for r in records)


def test_skip_stops_after_too_many_in_a_row(tmp_path):
    policy = divergence.DivergencePolicy("skip", max_consecutive_skips=3)
    with pytest.raises(divergence.Diverged) as raised:
        _train(tmp_path, policy, poisoned=set(range(3, 100)), num_steps=20)
    assert raised.value.step == 5 and "steps 3-5" in str(raised.value)
    assert _steps(tmp_path) == [2, 4] and _all_finite(_restore(tmp_path, 4))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"on_nonfinite": "ignore"}, "on_nonfinite must be one of"),
        ({"max_consecutive_skips": 0}, "max_consecutive_skips must be ≥ 1"),
        ({"max_consecutive_skips": "3"}, "max_consecutive_skips must be an int"),
    ],
)
def test_bad_policies_are_named(kwargs, message):
    with pytest.raises(divergence.errors.ConfigError, match=message):
        divergence.DivergencePolicy(**kwargs)
