import types

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from it_jax.models import t5
from it_jax.train import flops

T5_SMALLISH = t5.T5Config(
    vocab_size=256, d_model=128, d_ff=512, d_kv=32, num_heads=4, num_encoder_layers=2, num_decoder_layers=2
)


def _cost(fn, *args) -> float:
    """XLA's FLOP count of the lowered (not compiled) computation."""
    analysis = jax.jit(fn).lower(*args).cost_analysis()
    return (analysis[0] if isinstance(analysis, list) else analysis)["flops"]


def test_encoder_decoder_count_matches_xla_s_for_a_t5_forward_and_backward():
    graphdef, state = nnx.split(t5.T5(T5_SMALLISH, rngs=nnx.Rngs(0)))
    batch, enc, dec = 2, 64, 32
    features = {
        "encoder_input_tokens": jnp.ones((batch, enc), jnp.int32),
        "decoder_input_tokens": jnp.ones((batch, dec), jnp.int32),
    }

    def forward(state, features):
        return nnx.merge(graphdef, state).logits_from_features(features).sum()

    ours = batch * flops.encoder_decoder_forward_flops(T5_SMALLISH, encoder_length=enc, decoder_length=dec)
    # XLA also counts the elementwise work (softmax, GELU, norms) that the model-FLOPs count leaves out.
    assert ours == pytest.approx(_cost(forward, state, features), rel=0.05)
    shapes = {"encoder_input_tokens": (batch, enc), "decoder_target_tokens": (batch, dec)}
    assert flops.train_flops_per_step(T5_SMALLISH, shapes) == 3 * ours
    assert 3 * ours == pytest.approx(_cost(jax.grad(forward), state, features), rel=0.05)


def test_decoder_only_count_by_hand():
    config = types.SimpleNamespace(
        vocab_size=100, d_model=16, d_ff=64, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=8,
        mlp_activations=("silu", "linear"), tie_embeddings=True,
    )
    length = 10
    # Per token and layer: q, out (16 x 32 each), k, v (16 x 16 each), MLP (2 x 16 x 64 in, 64 x 16 out).
    matmul_params = 3 * (2 * 16 * 32 + 2 * 16 * 16 + 3 * 16 * 64) + 16 * 100
    attention = 3 * 2 * 2 * length * 32
    forward = length * (2 * matmul_params + attention)
    assert flops.decoder_only_forward_flops(config, length=length) == forward
    assert flops.train_flops_per_step(config, {"decoder_target_tokens": (4, length)}) == 3 * 4 * forward
