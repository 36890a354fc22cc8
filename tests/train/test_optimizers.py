import jax.numpy as jnp
import numpy as np
import pytest

from it_jax.train import optimizers


@pytest.mark.parametrize("decay", ["constant", "linear", "cosine", "rsqrt"])
def test_schedule_warms_up_linearly_then_decays(decay):
    schedule = optimizers.make_schedule(base_learning_rate=1.0, warmup_steps=10, decay=decay, total_steps=110)
    np.testing.assert_allclose(schedule(0), 0.0, atol=1e-7)
    np.testing.assert_allclose(schedule(5), 0.5, rtol=1e-6)
    np.testing.assert_allclose(schedule(10), 1.0, rtol=1e-6)
    late = float(schedule(100))
    if decay == "constant":
        assert late == pytest.approx(1.0)
    else:
        assert late < 1.0


def test_cosine_ends_at_final_fraction():
    schedule = optimizers.make_schedule(base_learning_rate=2.0, warmup_steps=0, decay="cosine", total_steps=50, final_fraction=0.1)
    np.testing.assert_allclose(schedule(50), 0.2, rtol=1e-5)


@pytest.mark.parametrize("name", ["adamw", "adafactor"])
def test_optimizers_reduce_a_quadratic(name):
    optimizer = optimizers.make_optimizer(optimizers.make_schedule(base_learning_rate=0.1, warmup_steps=1, decay="constant"), name=name)
    params = {"w": jnp.ones((4, 3))}
    state = optimizer.init(params)
    for _ in range(20):
        grads = {"w": 2 * params["w"]}
        updates, state = optimizer.update(grads, state, params)
        params = {"w": params["w"] + updates["w"]}
    assert float(jnp.abs(params["w"]).max()) < 0.9


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown optimizer"):
        optimizers.make_optimizer(lambda s: 0.1, name="sgdx")
    with pytest.raises(ValueError, match="unknown decay"):
        optimizers.make_schedule(decay="exp")
