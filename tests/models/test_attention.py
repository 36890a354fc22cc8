import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax.models import attention


def _softmax(logits):
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    return probs / probs.sum(-1, keepdims=True)


def test_t5_attention_is_unscaled_softmax_with_bias():
    layer = attention.MultiHeadAttention(8, 2, 4, scale=1.0, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(3)
    xq = rng.normal(size=(1, 3, 8)).astype(np.float32)
    xkv = rng.normal(size=(1, 5, 8)).astype(np.float32)
    bias = rng.normal(size=(1, 2, 3, 5)).astype(np.float32)
    q = np.einsum("bld,dhk->bhlk", xq, np.asarray(layer.query.kernel[...]))
    k = np.einsum("bld,dhk->bhlk", xkv, np.asarray(layer.key.kernel[...]))
    v = np.einsum("bld,dhk->bhlk", xkv, np.asarray(layer.value.kernel[...]))
    probs = _softmax(q @ k.transpose(0, 1, 3, 2) + bias)
    expected = np.einsum("bhqk,bhkd,hdo->bqo", probs, v, np.asarray(layer.out.kernel[...]))
    np.testing.assert_allclose(layer(jnp.asarray(xq), jnp.asarray(xkv), bias=jnp.asarray(bias)), expected, atol=1e-5)


def test_grouped_query_attention_shares_kv_heads_and_scales_by_head_dim():
    layer = attention.MultiHeadAttention(8, 4, 2, num_kv_heads=2, use_bias=True, rngs=nnx.Rngs(1))
    assert layer.key.kernel.shape == (8, 2, 2) and layer.query.bias.shape == (4, 2)
    layer.query.bias[...] = jnp.full((4, 2), 0.3)
    layer.value.bias[...] = jnp.full((2, 2), -0.2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 8)).astype(np.float32)
    mask = np.tril(np.ones((5, 5), bool))[None, None]
    q = np.einsum("bld,dhk->bhlk", x, np.asarray(layer.query.kernel[...])) + 0.3
    k = np.einsum("bld,dhk->bhlk", x, np.asarray(layer.key.kernel[...]))
    v = np.einsum("bld,dhk->bhlk", x, np.asarray(layer.value.kernel[...])) - 0.2
    k, v = np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1)  # query head h reads kv head h // 2
    logits = np.where(mask, q @ k.transpose(0, 1, 3, 2) / np.sqrt(2), -1e30)
    expected = np.einsum("bhqk,bhkd,hdo->bqo", _softmax(logits), v, np.asarray(layer.out.kernel[...]))
    np.testing.assert_allclose(layer(jnp.asarray(x), jnp.asarray(x), mask=jnp.asarray(mask)), expected, atol=1e-5)
    with pytest.raises(ValueError, match="divide"):
        attention.MultiHeadAttention(8, 4, 2, num_kv_heads=3, rngs=nnx.Rngs(0))


def test_attention_init_stddevs():
    d_model, heads, d_kv = 256, 4, 64
    t5_style = attention.MultiHeadAttention(d_model, heads, d_kv, scale=1.0, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.std(t5_style.query.kernel[...]), (d_model * d_kv) ** -0.5, rtol=0.05)
    np.testing.assert_allclose(np.std(t5_style.key.kernel[...]), d_model**-0.5, rtol=0.05)
    np.testing.assert_allclose(np.std(t5_style.out.kernel[...]), (heads * d_kv) ** -0.5, rtol=0.05)
    scaled = attention.MultiHeadAttention(d_model, heads, d_kv, rngs=nnx.Rngs(0))
    np.testing.assert_allclose(np.std(scaled.query.kernel[...]), d_model**-0.5, rtol=0.05)


def test_rope_rotates_half_pairs_and_preserves_relative_dot_products():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 1, 1, 4)).astype(np.float32)
    rotated = np.asarray(attention.apply_rope(jnp.asarray(x), jnp.asarray([[3]]), theta=100.0))
    # Pair (0, 2) turns by 3 rad, pair (1, 3) by 3 * 100**-0.5 rad.
    for i, angle in ((0, 3.0), (1, 0.3)):
        a, b = x[0, 0, 0, i], x[0, 0, 0, i + 2]
        np.testing.assert_allclose(
            rotated[0, 0, 0, [i, i + 2]], [a * np.cos(angle) - b * np.sin(angle), b * np.cos(angle) + a * np.sin(angle)],
            rtol=1e-5,
        )
    q, k = (jnp.asarray(rng.normal(size=(1, 1, 1, 8)), jnp.float32) for _ in range(2))

    def score(pq, pk):
        rq = attention.apply_rope(q, jnp.asarray([[pq]]), theta=10000.0)
        rk = attention.apply_rope(k, jnp.asarray([[pk]]), theta=10000.0)
        return float((rq * rk).sum())

    np.testing.assert_allclose(score(5, 2), score(13, 10), rtol=1e-4)


def test_cache_writes_at_the_index():
    cache = attention.init_cache(2, 6, 1, 3, jnp.float32)
    new = {"key": jnp.ones((2, 2, 1, 3)), "value": 2 * jnp.ones((2, 2, 1, 3))}
    cache = attention.write_cache(cache, new, jnp.asarray(3))
    np.testing.assert_array_equal(cache["key"][0, :, 0, 0], [0, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(cache["value"][1, :, 0, 0], [0, 0, 0, 2, 2, 0])


def test_masks_and_bias():
    tokens = jnp.asarray([[5, 6, 0]])
    padding = attention.attention_mask(tokens > 0, tokens > 0)
    assert padding.shape == (1, 1, 3, 3)
    np.testing.assert_array_equal(padding[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])
    segments = attention.segment_mask(jnp.asarray([[1, 1, 2, 0]]), jnp.asarray([[1, 2, 2, 0]]))
    np.testing.assert_array_equal(segments[0, 0], [[1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]])
    positions = jnp.arange(3)[None]
    causal = attention.causal_mask(positions, positions)
    np.testing.assert_array_equal(causal[0, 0], np.tril(np.ones((3, 3))))
    prefix = attention.prefix_mask(jnp.asarray([[1, 1, 0]]), jnp.asarray([[1, 1, 0]]))
    np.testing.assert_array_equal((causal | prefix)[0, 0], [[1, 1, 0], [1, 1, 0], [1, 1, 1]])
    bias = attention.mask_to_bias(padding, causal)
    assert bias.dtype == jnp.float32
    np.testing.assert_array_equal(bias[0, 0] == 0, [[1, 0, 0], [1, 1, 0], [0, 0, 0]])
    assert float(bias.min()) == attention.NEG_INF


def test_softcapped_attention_is_numpy_attention_with_capped_logits():
    rng = np.random.default_rng(5)
    query = rng.normal(size=(2, 3, 4, 6)).astype(np.float32)  # 4 query heads sharing 2 kv heads.
    key, value = (rng.normal(size=(2, 5, 2, 6)).astype(np.float32) for _ in range(2))
    mask = rng.random((2, 1, 3, 5)) > 0.3
    mask[..., 0] = True
    bias = rng.normal(size=(2, 4, 3, 5)).astype(np.float32)
    kv = {"key": jnp.asarray(key), "value": jnp.asarray(value)}
    ours = attention.softcapped_attention(
        jnp.asarray(query), kv, scale=0.7, softcap=1.5, bias=jnp.asarray(bias), mask=jnp.asarray(mask)
    )
    shared = np.repeat(key, 2, axis=2), np.repeat(value, 2, axis=2)  # Query head h reads kv head h // 2.
    logits = 1.5 * np.tanh(np.einsum("bqhd,bkhd->bhqk", query, shared[0]) * 0.7 / 1.5) + bias
    probs = _softmax(np.where(mask, logits, -1e10))
    np.testing.assert_allclose(ours, np.einsum("bhqk,bkhd->bqhd", probs, shared[1]), atol=1e-5)
    # A cap far above the logits leaves jax.nn.dot_product_attention's result.
    uncapped = attention.softcapped_attention(jnp.asarray(query), kv, scale=0.7, softcap=1e6, mask=jnp.asarray(mask))
    reference = jnp.asarray(query), kv["key"], kv["value"]
    expected = jax.nn.dot_product_attention(*reference, mask=jnp.asarray(mask), scale=0.7)
    np.testing.assert_allclose(uncapped, expected, atol=1e-5)


def test_sliding_window_mask_keeps_the_last_window_positions():
    positions = jnp.arange(6)[None]
    mask = attention.causal_mask(positions, positions) & attention.sliding_window_mask(positions, positions, 3)
    expected = [[k <= q and q - k < 3 for k in range(6)] for q in range(6)]
    np.testing.assert_array_equal(mask[0, 0], expected)
