import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from it_jax.models import stack
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


def test_schedule_values_after_warmup():
    kwargs = dict(base_learning_rate=1.0, warmup_steps=10, total_steps=110, final_fraction=0.1)
    rsqrt = optimizers.make_schedule(decay="rsqrt", **kwargs)
    np.testing.assert_allclose(rsqrt(40), np.sqrt(10 / 40), rtol=1e-6)
    linear = optimizers.make_schedule(decay="linear", **kwargs)
    np.testing.assert_allclose(linear(60), 0.55, rtol=1e-5)
    np.testing.assert_allclose(linear(110), 0.1, rtol=1e-5)
    cosine = optimizers.make_schedule(decay="cosine", **kwargs)
    np.testing.assert_allclose(cosine(60), 0.1 + 0.9 * 0.5, rtol=1e-5)
    constant = optimizers.make_schedule(decay="constant", **kwargs)
    np.testing.assert_allclose(constant(1000), 1.0)


def test_gradients_are_clipped_to_the_global_norm():
    schedule = optimizers.make_schedule(base_learning_rate=0.1, warmup_steps=0, decay="constant")
    optimizer = optimizers.make_optimizer(schedule, name="adamw", b1=0.9, clip_norm=1.0)
    params = {"a": jnp.zeros((3,)), "b": jnp.zeros((4,))}
    grads = {"a": jnp.full((3,), 30.0), "b": jnp.full((4,), 40.0)}
    _, state = optimizer.update(grads, optimizer.init(params), params)
    norm = np.sqrt(3 * 30.0**2 + 4 * 40.0**2)
    # Adam's first moment after one step is (1 - b1) times the (clipped) gradient.
    np.testing.assert_allclose(state[1][0].mu["b"], 0.1 * 40.0 / norm, rtol=1e-5)


def test_adafactor_options_reach_optax():
    schedule = optimizers.make_schedule(base_learning_rate=0.1, warmup_steps=0, decay="constant")
    params = {"w": jnp.full((4, 3), 2.0)}
    grads = {"w": jnp.ones((4, 3))}
    updates = {}
    for scale in (True, False):
        optimizer = optimizers.make_optimizer(
            schedule, name="adafactor", clip_norm=None, adafactor_options={"multiply_by_parameter_scale": scale}
        )
        updates[scale], _ = optimizer.update(grads, optimizer.init(params), params)
    # Scaling by the parameters' RMS (2.0) doubles the step.
    np.testing.assert_allclose(updates[True]["w"], 2.0 * updates[False]["w"], rtol=1e-5)


def test_adafactor_updates_a_scanned_stack_exactly_as_unrolled_layers():
    rng = np.random.default_rng(0)
    # Layers of very different scales: whole-stack RMS clipping and parameter scaling would mix them.
    layers = {i: {"w": jnp.asarray(rng.normal(size=(16, 24)) * 10.0**i, jnp.float32)} for i in range(3)}
    grads = {i: {"w": jnp.asarray(rng.normal(size=(16, 24)) * 10.0 ** (2 - i), jnp.float32)} for i in range(3)}
    head = jnp.asarray(rng.normal(size=(24, 8)), jnp.float32)
    unrolled = {"layers": layers, "head": head}
    scanned = {"layers": stack.stack_params(layers), "head": head}
    unrolled_grads = {"layers": grads, "head": head}
    scanned_grads = {"layers": stack.stack_params(grads), "head": head}
    schedule = optimizers.make_schedule(base_learning_rate=0.1, warmup_steps=0, decay="constant")
    options = {"min_dim_size_to_factor": 8}
    optimizer = optimizers.make_optimizer(schedule, name="adafactor", clip_norm=None, adafactor_options=options)

    expected, _ = optimizer.update(unrolled_grads, optimizer.init(unrolled), unrolled)
    updates, _ = optimizer.update(scanned_grads, optimizer.init(scanned), scanned)
    np.testing.assert_allclose(updates["layers"]["w"], stack.stack_params(expected["layers"])["w"], rtol=1e-6)
    np.testing.assert_allclose(updates["head"], expected["head"], rtol=1e-6)
    # Plain optax Adafactor over the stack differs: the layerwise wrapper is what makes them equal.
    whole = optax.adafactor(schedule, **options)
    mixed, _ = whole.update(scanned_grads, whole.init(scanned), scanned)
    assert not np.allclose(mixed["layers"]["w"], updates["layers"]["w"], rtol=1e-3)


def test_only_children_of_a_scanned_layers_stack_count_as_stacked():
    def paths(tree):
        flat = jax.tree_util.tree_flatten_with_path(tree)[0]
        return {jax.tree_util.keystr(path): optimizers.in_scanned_stack(path) for path, _ in flat}

    tree = {"encoder": {"layers": {"mlp": {"w": 0}}}, "decoder": {"layers": {0: {"mlp": {"w": 0}}}}, "head": 0}
    assert paths(tree) == {
        "['decoder']['layers'][0]['mlp']['w']": False,
        "['encoder']['layers']['mlp']['w']": True,
        "['head']": False,
    }
