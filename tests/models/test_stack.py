"""Scan over layers and remat policies: same numbers as the unrolled stack, for both model families."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax.models import decoder, registry, stack, t5
from it_jax.train import losses

T5_TINY = t5.T5Config(
    vocab_size=48, d_model=16, d_ff=32, d_kv=4, num_heads=2, num_encoder_layers=3, num_decoder_layers=2, dropout_rate=0.1
)
DECODER_TINY = decoder.DecoderConfig(
    vocab_size=48, d_model=16, d_ff=32, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=4, dropout_rate=0.1
)


def _batch(config):
    rng = np.random.default_rng(0)
    x = rng.integers(2, 48, (2, 7)).astype(np.int32)
    y = rng.integers(2, 48, (2, 5)).astype(np.int32)
    if isinstance(config, t5.T5Config):
        return {"encoder_input_tokens": x, "decoder_input_tokens": np.pad(y, ((0, 0), (1, 0)))[:, :-1]}, y
    return {"decoder_input_tokens": x[:, :5]}, y


def _stacked(params, config):
    """Unrolled parameters in the scanned layout."""
    params = jax.tree.map(lambda a: a, params)
    if isinstance(config, t5.T5Config):
        for part in ("encoder", "decoder"):
            params[part]["layers"] = stack.stack_params(params[part]["layers"])
    else:
        params["layers"] = stack.stack_params(params["layers"])
    return params


def _loss_and_grads(config, params):
    spec = registry.model_spec(config)
    features, targets = _batch(config)

    def loss(p):
        logits = spec.bind(p).logits_from_features(features, rngs=nnx.Rngs(dropout=7))
        return losses.cross_entropy(logits, targets, jnp.ones_like(targets))[0]

    return jax.jit(jax.value_and_grad(loss))(params)


@pytest.mark.parametrize(
    "base, scan, policy",
    [(T5_TINY, True, "minimal"), (DECODER_TINY, True, "none"), (DECODER_TINY, False, "full")],
    ids=["t5-scan-minimal", "decoder-scan", "decoder-full-remat"],
)
def test_scan_and_remat_give_the_unrolled_loss_and_gradients(base, scan, policy):
    params = registry.model_spec(base).init_params(0)
    loss, grads = _loss_and_grads(base, params)
    config = type(base)(**{**base.__dict__, "scan_layers": scan, "remat_policy": policy})
    other_loss, other_grads = _loss_and_grads(config, _stacked(params, config) if scan else params)
    np.testing.assert_allclose(other_loss, loss, rtol=1e-6)
    expected = _stacked(grads, config) if scan else grads
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), other_grads, expected)


def test_scanned_parameters_carry_the_layers_axis():
    config = decoder.DecoderConfig(**{**DECODER_TINY.__dict__, "scan_layers": True})
    spec = registry.model_spec(config)
    kernel = spec.abstract_state["layers"]["mlp"]["wi_0"]["kernel"]
    assert kernel.shape == (3, 16, 32)
    assert kernel.get_metadata()["out_sharding"] == ("layers", "embed", "mlp")


def test_stack_and_unstack_are_inverse():
    layers = {i: {"w": jnp.full((2,), float(i))} for i in range(3)}
    stacked = stack.stack_params(layers)
    assert stacked["w"].shape == (3, 2)
    jax.tree.map(np.testing.assert_array_equal, stack.unstack_params(stacked), layers)


def test_unknown_remat_policy_is_an_error():
    with pytest.raises(ValueError, match="remat policy"):
        stack.apply_stack([], 0, lambda layer, c, x: (c, None), scan=False, remat_policy="some")
