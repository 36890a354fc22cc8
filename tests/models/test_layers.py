"""Tests of the T5 building blocks against hand-written numpy formulas and hand-computed values."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax.models import layers


def test_rms_norm_matches_numpy():
    x = np.random.default_rng(0).normal(size=(2, 3, 8)).astype(np.float32)
    norm = layers.RMSNorm(8, rngs=nnx.Rngs(0))
    norm.scale[...] = jnp.arange(1.0, 9.0)
    expected = x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True) + 1e-6) * np.arange(1.0, 9.0)
    np.testing.assert_allclose(norm(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-6)


def test_rms_norm_initial_scale_is_ones_and_axes_annotated():
    norm = layers.RMSNorm(4, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(norm.scale[...], np.ones(4))
    assert norm.scale.get_metadata()["out_sharding"] == ("embed",)


@pytest.mark.parametrize(
    "relative, expected",
    [(0, 0), (-1, 1), (1, 17), (-7, 7), (-8, 8), (-16, 10), (20, 26), (-127, 15), (-128, 15), (-1000, 15)],
)
def test_bidirectional_buckets(relative, expected):
    # 16 buckets per direction, 8 exact; key after query adds 16. -16: 8 + floor(8 * log(2) / log(16)) = 10;
    # +20: 16 + 8 + floor(8 * log(2.5) / log(16)) = 26.
    bucket = layers.relative_position_bucket(jnp.asarray(relative), bidirectional=True)
    assert int(bucket) == expected


@pytest.mark.parametrize(
    "relative, expected", [(3, 0), (0, 0), (-3, 3), (-15, 15), (-16, 16), (-32, 21), (-127, 31), (-200, 31)]
)
def test_unidirectional_buckets(relative, expected):
    # Future keys share bucket 0; 16 exact; -32: 16 + floor(16 * log(2) / log(8)) = 21.
    bucket = layers.relative_position_bucket(jnp.asarray(relative), bidirectional=False)
    assert int(bucket) == expected


def test_relative_position_bias_looks_up_the_table():
    bias_layer = layers.RelativePositionBias(3, bidirectional=True, rngs=nnx.Rngs(0))
    positions = jnp.arange(5)[None]
    bias = bias_layer(positions, positions)
    assert bias.shape == (1, 3, 5, 5) and bias.dtype == jnp.float32
    table = np.asarray(bias_layer.embedding[...])
    np.testing.assert_allclose(bias[0, :, 2, 0], table[2])  # key 2 before query: bucket 2
    np.testing.assert_allclose(bias[0, :, 0, 1], table[17])  # key 1 after query: bucket 16 + 1
    assert bias_layer.embedding.get_metadata()["out_sharding"] == ("relpos_buckets", "heads")


def test_embed_lookup_and_attend():
    embed = layers.Embed(10, 4, embedding_init=jax.nn.initializers.normal(1.0), rngs=nnx.Rngs(0))
    table = np.asarray(embed.embedding[...])
    ids = jnp.asarray([[1, 2, 0]])
    np.testing.assert_allclose(embed(ids), table[[[1, 2, 0]]])
    x = jnp.ones((2, 4))
    np.testing.assert_allclose(embed.attend(x), np.ones((2, 4)) @ table.T, rtol=1e-6)


def test_dense_general_contracts_multiple_axes():
    dense = layers.DenseGeneral(
        (2, 3), (5,), axes=("heads", "kv", "embed"), kernel_init=jax.nn.initializers.normal(1.0), rngs=nnx.Rngs(0)
    )
    x = np.random.default_rng(0).normal(size=(4, 7, 2, 3)).astype(np.float32)
    expected = np.einsum("blhk,hkd->bld", x, np.asarray(dense.kernel[...]))
    np.testing.assert_allclose(dense(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="axis names"):
        layers.DenseGeneral((2,), (3,), axes=("embed",), kernel_init=jax.nn.initializers.zeros, rngs=nnx.Rngs(0))


def test_gated_gelu_mlp_matches_formula():
    mlp = layers.MlpBlock(4, 6, rngs=nnx.Rngs(0))
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype(np.float32)
    wi_0, wi_1, wo = (np.asarray(m.kernel[...]) for m in (mlp.wi_0, mlp.wi_1, mlp.wo))
    h = x @ wi_0
    gelu = 0.5 * h * (1 + np.tanh(np.sqrt(2 / np.pi) * (h + 0.044715 * h**3)))
    np.testing.assert_allclose(mlp(jnp.asarray(x)), (gelu * (x @ wi_1)) @ wo, rtol=1e-5, atol=1e-5)


def test_relu_mlp_is_not_gated():
    mlp = layers.MlpBlock(4, 6, activations=("relu",), rngs=nnx.Rngs(0))
    x = np.random.default_rng(2).normal(size=(2, 4)).astype(np.float32)
    expected = np.maximum(x @ np.asarray(mlp.wi.kernel[...]), 0) @ np.asarray(mlp.wo.kernel[...])
    np.testing.assert_allclose(mlp(jnp.asarray(x)), expected, rtol=1e-5, atol=1e-5)
    assert not hasattr(mlp, "wi_0")
    with pytest.raises(ValueError, match="activations"):
        layers.MlpBlock(4, 6, activations=("tanh",), rngs=nnx.Rngs(0))
