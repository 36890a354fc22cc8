"""Attention: multi-head and grouped-query attention, rotary position embeddings, masks and the KV cache.

Attention runs through `jax.nn.dot_product_attention`, whose `implementation` selects XLA (everywhere) or
cuDNN's fused kernel (NVIDIA GPUs, bf16/fp16); soft-capped logits (Gemma 2) take a plain einsum path instead.
Projections are split from the attention itself so that
decoding can project a new token's keys and values into a cache and attend over the whole cache.

A KV cache is a plain dict {"key": [B, S, K, H], "value": [B, S, K, H]}: functional, so it passes
through `jit`, `lax.while_loop` and `lax.scan` like any other array tree.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from jax.typing import DTypeLike

from it_jax.models.layers import DenseGeneral, RMSNorm
from it_jax.sharding import constrain

KVCache = dict[str, jax.Array]

# Additive attention bias for masked positions: large but finite, so fully masked rows stay NaN-free.
NEG_INF = -1e10

HEAD_AXES = ("activation_batch", "activation_length", "activation_heads", "activation_kv")

# `None` lets JAX choose; "xla" works on every backend; "cudnn" needs an NVIDIA GPU and bf16/fp16.
ATTENTION_IMPLEMENTATIONS = (None, "xla", "cudnn")


# Llama 3.x frequency scaling ("llama3" rope type): its parameters, by name.
LLAMA3_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")

RopeScaling = tuple[tuple[str, float | int | str], ...]


def rope_frequencies(head_dim: int, theta: float, scaling: RopeScaling | None = None) -> jax.Array:
    """Float32 inverse frequencies [head_dim / 2]: `theta**(-2i / head_dim)`, then `scaling`'s rescaling.

    Llama 3 scaling ({"rope_type": "llama3", factor, low_freq_factor, high_freq_factor,
    original_max_position_embeddings} as (name, value) pairs) keeps the short wavelengths (below
    original / high_freq_factor), divides the frequencies of long ones (above original / low_freq_factor)
    by `factor`, and interpolates linearly in `original / wavelength` between the two.
    """
    inv_freq = theta ** (-jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
    if scaling is None:
        return inv_freq
    params = dict(scaling)
    if params.get("rope_type") != "llama3":
        raise ValueError(f"rope scaling {params.get('rope_type')!r} unknown (only 'llama3')")
    factor, low, high, original = (float(params[k]) for k in LLAMA3_SCALING_KEYS)
    wavelength = 2 * jnp.pi / inv_freq
    smooth = (original / wavelength - low) / (high - low)
    interpolated = (1 - smooth) * inv_freq / factor + smooth * inv_freq
    scaled = jnp.where(wavelength > original / low, inv_freq / factor, interpolated)
    return jnp.where(wavelength < original / high, inv_freq, scaled)


def apply_rope(
    x: jax.Array, positions: jax.Array, *, theta: float, scaling: RopeScaling | None = None
) -> jax.Array:
    """Rotary position embedding of `x` [B, L, heads, head_dim] at integer `positions` [B, L].

    Pairs dimension i with i + head_dim/2 ("rotate half", as Llama and Qwen checkpoints expect), rotating
    pair i by `position * rope_frequencies(...)[i]` (`theta**(-2i / head_dim)` unless `scaling` rescales
    it). Angles are computed in float32.
    """
    head_dim = x.shape[-1]
    if head_dim % 2:
        raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
    angles = positions.astype(jnp.float32)[..., None] * rope_frequencies(head_dim, theta, scaling)
    cos = jnp.cos(angles)[:, :, None, :]
    sin = jnp.sin(angles)[:, :, None, :]
    first, second = jnp.split(x.astype(jnp.float32), 2, axis=-1)
    rotated = jnp.concatenate([first * cos - second * sin, second * cos + first * sin], axis=-1)
    return rotated.astype(x.dtype)


class MultiHeadAttention(nnx.Module):
    """Query/key/value/output projections around `jax.nn.dot_product_attention`.

    Args:
      num_kv_heads: key/value heads (grouped-query attention when fewer than `num_heads`, which they must
        divide); defaults to `num_heads`.
      use_bias: biases on the query, key and value projections (Qwen2); the output has none.
      scale: logit scale; None means head_dim**-0.5. T5 uses 1.0 and folds the scaling into the query's
        initialization: its std is `(d_model * head_dim)**-0.5 / scale`.
      rope_theta: rotary embeddings with this base on queries and keys (None: no rotary embeddings).
      rope_scaling: rescaling of the rotary frequencies (see `rope_frequencies`); None: none.
      qk_norm_eps: with a value, per-head RMSNorms (`query_norm`, `key_norm`, over head_dim, this epsilon) on
        the projected queries and keys, before the rotary embeddings (Qwen3).
      softcap: with a value c, the scaled logits become `c * tanh(logits / c)` (Gemma 2).
      implementation: passed to `jax.nn.dot_product_attention` (None, "xla" or "cudnn").
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        head_dim: int,
        *,
        num_kv_heads: int | None = None,
        use_bias: bool = False,
        scale: float | None = None,
        rope_theta: float | None = None,
        rope_scaling: RopeScaling | None = None,
        qk_norm_eps: float | None = None,
        softcap: float | None = None,
        implementation: str | None = "xla",
        dtype: DTypeLike = jnp.float32,
        param_dtype: DTypeLike = jnp.float32,
        rngs: nnx.Rngs,
    ):
        num_kv_heads = num_kv_heads or num_heads
        if num_heads % num_kv_heads:
            raise ValueError(f"num_kv_heads ({num_kv_heads}) must divide num_heads ({num_heads})")
        if implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(f"attention implementation must be one of {ATTENTION_IMPLEMENTATIONS}, got {implementation!r}")
        self.scale = head_dim**-0.5 if scale is None else scale
        self.rope_theta = rope_theta
        self.rope_scaling = rope_scaling
        self.softcap = softcap
        self.implementation = implementation
        normal = jax.nn.initializers.normal
        dense = dict(use_bias=use_bias, dtype=dtype, param_dtype=param_dtype, rngs=rngs)
        in_axes = ("embed", "heads", "kv")
        query_std = (d_model * head_dim) ** -0.5 / self.scale
        self.query = DenseGeneral((d_model,), (num_heads, head_dim), axes=in_axes, kernel_init=normal(query_std), **dense)
        self.key = DenseGeneral((d_model,), (num_kv_heads, head_dim), axes=in_axes, kernel_init=normal(d_model**-0.5), **dense)
        self.value = DenseGeneral(
            (d_model,), (num_kv_heads, head_dim), axes=in_axes, kernel_init=normal(d_model**-0.5), **dense
        )
        self.out = DenseGeneral(
            (num_heads, head_dim),
            (d_model,),
            axes=("heads", "kv", "embed"),
            kernel_init=normal((num_heads * head_dim) ** -0.5),
            dtype=dtype,
            param_dtype=param_dtype,
            rngs=rngs,
        )
        if qk_norm_eps is not None:
            norm = dict(eps=qk_norm_eps, axes=("kv",), dtype=dtype, param_dtype=param_dtype, rngs=rngs)
            self.query_norm = RMSNorm(head_dim, **norm)
            self.key_norm = RMSNorm(head_dim, **norm)
        self.qk_norm = qk_norm_eps is not None

    def _rotate(self, x: jax.Array, positions: jax.Array | None) -> jax.Array:
        if self.rope_theta is None:
            return x
        if positions is None:
            raise ValueError("rotary attention needs the token positions")
        return apply_rope(x, positions, theta=self.rope_theta, scaling=self.rope_scaling)

    def project_query(self, x: jax.Array, positions: jax.Array | None = None) -> jax.Array:
        """Queries [B, L, heads, head_dim] (normalized with q/k norms, rotated when rotary)."""
        query = self.query_norm(self.query(x)) if self.qk_norm else self.query(x)
        return constrain(self._rotate(query, positions), HEAD_AXES)

    def project_kv(self, x: jax.Array, positions: jax.Array | None = None) -> KVCache:
        """Keys (rotated when rotary) and values [B, L, kv_heads, head_dim] of `x`, as a cache dict."""
        key = self.key_norm(self.key(x)) if self.qk_norm else self.key(x)
        key = constrain(self._rotate(key, positions), HEAD_AXES)
        return {"key": key, "value": constrain(self.value(x), HEAD_AXES)}

    def attend(
        self, query: jax.Array, kv: KVCache, *, bias: jax.Array | None = None, mask: jax.Array | None = None
    ) -> jax.Array:
        """Attention of projected queries over projected keys/values, then the output projection.

        Args:
          bias: additive float32 logit bias broadcastable to [B, heads, Lq, Lk].
          mask: boolean, broadcastable to [B, heads, Lq, Lk]; True where a query may attend to a key.
        """
        if self.softcap is not None:
            x = softcapped_attention(query, kv, scale=self.scale, softcap=self.softcap, bias=bias, mask=mask)
            return self.out(constrain(x, HEAD_AXES))
        x = jax.nn.dot_product_attention(
            query,
            kv["key"].astype(query.dtype),
            kv["value"].astype(query.dtype),
            bias=bias,
            mask=mask,
            scale=self.scale,
            implementation=self.implementation,
        )
        return self.out(constrain(x, HEAD_AXES))

    def __call__(
        self,
        inputs_q: jax.Array,
        inputs_kv: jax.Array,
        *,
        bias: jax.Array | None = None,
        mask: jax.Array | None = None,
        query_positions: jax.Array | None = None,
        key_positions: jax.Array | None = None,
    ) -> jax.Array:
        """Attends `inputs_q` [B, Lq, d_model] to `inputs_kv` [B, Lk, d_model]."""
        query = self.project_query(inputs_q, query_positions)
        return self.attend(query, self.project_kv(inputs_kv, key_positions), bias=bias, mask=mask)


def softcapped_attention(
    query: jax.Array,
    kv: KVCache,
    *,
    scale: float,
    softcap: float,
    bias: jax.Array | None = None,
    mask: jax.Array | None = None,
) -> jax.Array:
    """Grouped-query attention [B, Lq, heads, head_dim] with logits `softcap * tanh(scale * q.k / softcap)`.

    Logits and softmax are float32; `bias` and `mask` broadcast to [B, heads, Lq, Lk] as in `attend`.
    """
    batch, length, num_heads, head_dim = query.shape
    num_kv_heads = kv["key"].shape[2]
    grouped = query.reshape(batch, length, num_kv_heads, num_heads // num_kv_heads, head_dim)
    key, value = kv["key"].astype(query.dtype), kv["value"].astype(query.dtype)
    logits = jnp.einsum("bqkgh,bskh->bkgqs", grouped, key, preferred_element_type=jnp.float32) * scale
    logits = softcap * jnp.tanh(logits / softcap)
    if bias is not None:
        logits = logits + _by_group(bias, num_kv_heads)
    if mask is not None:
        logits = jnp.where(_by_group(mask, num_kv_heads), logits, NEG_INF)
    weights = jax.nn.softmax(logits, axis=-1).astype(query.dtype)
    out = jnp.einsum("bkgqs,bskh->bqkgh", weights, value)
    return out.reshape(batch, length, num_heads, head_dim)


def _by_group(x: jax.Array, num_kv_heads: int) -> jax.Array:
    """A [B or 1, heads or 1, Lq or 1, Lk] bias or mask as [B or 1, kv_heads or 1, groups or 1, Lq or 1, Lk]."""
    x = jnp.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"attention bias/mask must have 4 axes [batch, heads, query, key], got shape {x.shape}")
    if x.shape[1] == 1:
        return x[:, :, None]
    return x.reshape(x.shape[0], num_kv_heads, -1, *x.shape[2:])


def init_cache(
    batch: int, length: int, num_kv_heads: int, head_dim: int, dtype: DTypeLike, *, num_layers: int | None = None
) -> KVCache:
    """An empty (zero) cache for `length` positions; with `num_layers`, one per layer stacked on axis 0."""
    shape = (batch, length, num_kv_heads, head_dim)
    if num_layers is not None:
        shape = (num_layers, *shape)
    return {"key": jnp.zeros(shape, dtype), "value": jnp.zeros(shape, dtype)}


def write_cache(cache: KVCache, new: KVCache, index: jax.Array) -> KVCache:
    """The cache with `new` [B, T, K, H] written at positions index..index+T-1."""
    start = (0, index, 0, 0)
    return {name: jax.lax.dynamic_update_slice(cache[name], new[name].astype(cache[name].dtype), start) for name in cache}


def attention_mask(query_valid: jax.Array, key_valid: jax.Array) -> jax.Array:
    """[B, 1, Lq, Lk] mask that is True where both the query and the key are valid (e.g. tokens != 0)."""
    return query_valid[:, None, :, None] & key_valid[:, None, None, :]


def segment_mask(query_segment_ids: jax.Array, key_segment_ids: jax.Array) -> jax.Array:
    """[B, 1, Lq, Lk] mask for packed sequences: equal, nonzero segment ids (0 marks padding)."""
    same = query_segment_ids[:, None, :, None] == key_segment_ids[:, None, None, :]
    return same & attention_mask(query_segment_ids != 0, key_segment_ids != 0)


def causal_mask(query_positions: jax.Array, key_positions: jax.Array) -> jax.Array:
    """[B or 1, 1, Lq, Lk] mask letting each query attend to keys at its own or earlier positions."""
    return key_positions[:, None, None, :] <= query_positions[:, None, :, None]


def sliding_window_mask(query_positions: jax.Array, key_positions: jax.Array, window: int) -> jax.Array:
    """[B or 1, 1, Lq, Lk] mask of keys less than `window` positions before each query (itself included);
    keys after the query stay allowed (combine with `causal_mask`). Mistral's and Gemma 2's local attention."""
    return key_positions[:, None, None, :] > query_positions[:, None, :, None] - window


def prefix_mask(query_is_input: jax.Array, key_is_input: jax.Array) -> jax.Array:
    """[B, 1, Lq, Lk] mask of bidirectional attention among input (prefix) positions (prefix LM)."""
    return attention_mask(query_is_input.astype(bool), key_is_input.astype(bool))


def mask_to_bias(*masks: jax.Array) -> jax.Array:
    """The conjunction of boolean masks as an additive float32 bias: 0 where allowed, NEG_INF elsewhere."""
    mask = masks[0]
    for other in masks[1:]:
        mask = mask & other
    return jnp.where(mask, 0.0, NEG_INF).astype(jnp.float32)
