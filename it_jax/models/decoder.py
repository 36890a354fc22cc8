"""Decoder-only transformers in the Llama style (and Qwen2/3's, Mistral's and Gemma 2's variants), with a
prefix-LM mode and a KV cache.

Pre-norm residual layers: RMSNorm, grouped-query self-attention with rotary position embeddings (optionally
Llama 3's rescaled frequencies), and a SwiGLU feed-forward block; optional q/k/v biases (Qwen2), per-head
query/key RMSNorms (Qwen3), sliding-window (local) attention in all or some layers (Mistral, Gemma 2) and a
head tied to the embedding. Gemma 2 adds embeddings scaled by sqrt(d_model), (1 + w) norm scales, norms after
attention and after the MLP, soft-capped attention and output logits and a GeGLU MLP. In prefix-LM
mode the input (prefix) positions attend to each other bidirectionally, targets causally.

Parameter names (stable, for checkpoint conversion; `scan_layers` stacks `layers.{i}` into one layer with
a leading `layers` axis):
  token_embedder.embedding, final_norm.scale, logits_dense.kernel (untied only)
  layers.{i}.{pre_attention_norm, pre_mlp_norm}.scale, layers.{i}.{post_attention_norm, post_mlp_norm}.scale
  (post_norms only)
  layers.{i}.attention.{query, key, value}.{kernel, bias (qkv_bias only)}, layers.{i}.attention.out.kernel
  layers.{i}.attention.{query_norm, key_norm}.scale (qk_norm only)
  layers.{i}.mlp.{wi_0 (gate), wi_1 (up), wo (down)}.kernel
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from it_jax.models import attention, layers, stack
from it_jax.models.t5 import layer_dropout_keys, layer_rngs
from it_jax.sharding import constrain


@dataclasses.dataclass(frozen=True, kw_only=True)
class DecoderConfig:
    """Hyperparameters of a decoder-only model (Llama: the defaults; Qwen2: `qkv_bias=True`; Qwen3: `qk_norm=True`).

    `num_kv_heads` < `num_heads` gives grouped-query attention; `prefix_lm` makes attention over the
    inputs bidirectional (the features' `decoder_causal_attention` marks them). `rope_scaling` (Llama 3.1+)
    is None or {"rope_type": "llama3", **LLAMA3_SCALING_KEYS}, given as a dict (gin, JSON) and kept as
    sorted (name, value) pairs so that the config stays hashable. `qk_norm` adds RMSNorms (epsilon
    `norm_eps`) over each head of the projected queries and keys.

    `sliding_window` W limits each query to the keys less than W positions before it (itself included) in the
    layers `sliding_window_layers` (None: every layer; Gemma 2: the even ones). Gemma 2's options:
    `scale_embeddings` (embeddings times sqrt(d_model)), `norm_scale_offset` 1.0 (norms scale by 1 + w),
    `post_norms` (RMSNorms on the attention and MLP outputs before their residual additions),
    `attn_logit_softcap` / `final_logit_softcap` (logits c * tanh(logits / c)) and `query_pre_attn_scalar`
    (attention logits scaled by its inverse square root instead of head_dim's).
    """

    vocab_size: int
    d_model: int
    d_ff: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    rope_theta: float = 10000.0
    rope_scaling: attention.RopeScaling | None = None
    norm_eps: float = 1e-5
    qkv_bias: bool = False
    qk_norm: bool = False
    tie_embeddings: bool = False
    sliding_window: int | None = None
    sliding_window_layers: tuple[int, ...] | None = None
    scale_embeddings: bool = False
    norm_scale_offset: float = 0.0
    post_norms: bool = False
    attn_logit_softcap: float | None = None
    final_logit_softcap: float | None = None
    query_pre_attn_scalar: float | None = None
    prefix_lm: bool = False
    mlp_activations: tuple[str, ...] = ("silu", "linear")
    dropout_rate: float = 0.0
    dtype: str = "float32"
    param_dtype: str = "float32"
    attention_impl: str | None = "xla"
    remat_policy: str = "none"
    scan_layers: bool = False

    def __post_init__(self):
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))
        if self.rope_scaling is not None:
            object.__setattr__(self, "rope_scaling", _rope_scaling_pairs(self.rope_scaling))
        if self.sliding_window is not None and self.sliding_window < 1:
            raise ValueError(f"sliding_window must be a positive number of positions or None: {self.sliding_window}")
        if self.sliding_window_layers is not None:
            layer_ids = tuple(sorted(set(self.sliding_window_layers)))
            if self.sliding_window is None or not all(0 <= i < self.num_layers for i in layer_ids):
                raise ValueError(
                    f"sliding_window_layers {self.sliding_window_layers} need a sliding_window and layer indices "
                    f"in [0, num_layers={self.num_layers})"
                )
            object.__setattr__(self, "sliding_window_layers", layer_ids)

    def dtypes(self) -> dict[str, Any]:
        return {"dtype": jnp.dtype(self.dtype), "param_dtype": jnp.dtype(self.param_dtype)}

    def sliding_layers(self) -> tuple[bool, ...]:
        """Per layer, whether it attends through the sliding window."""
        if self.sliding_window is None:
            return (False,) * self.num_layers
        chosen = self.sliding_window_layers
        return tuple(chosen is None or i in chosen for i in range(self.num_layers))


def _rope_scaling_pairs(scaling: Mapping[str, Any] | Sequence[Sequence[Any]]) -> attention.RopeScaling:
    """Llama 3 rope scaling parameters (a dict or (name, value) pairs) as sorted pairs, checked."""
    params = dict(scaling.items() if isinstance(scaling, Mapping) else (tuple(pair) for pair in scaling))
    expected = {"rope_type", *attention.LLAMA3_SCALING_KEYS}
    if params.get("rope_type") != "llama3" or set(params) != expected:
        keys = attention.LLAMA3_SCALING_KEYS
        raise ValueError(f"rope_scaling must be {{'rope_type': 'llama3'}} and {keys}, got {params}")
    if not params["high_freq_factor"] > params["low_freq_factor"] > 0:
        raise ValueError(f"rope_scaling needs high_freq_factor > low_freq_factor > 0, got {params}")
    return tuple(sorted(params.items()))


class DecoderLayer(nnx.Module):
    """Pre-norm self-attention (rotary, grouped-query) then pre-norm gated MLP, with residuals."""

    def __init__(self, config: DecoderConfig, *, rngs: nnx.Rngs):
        norm = dict(eps=config.norm_eps, scale_offset=config.norm_scale_offset, rngs=rngs, **config.dtypes())
        self.pre_attention_norm = layers.RMSNorm(config.d_model, **norm)
        self.attention = attention.MultiHeadAttention(
            config.d_model,
            config.num_heads,
            config.head_dim,
            num_kv_heads=config.num_kv_heads,
            use_bias=config.qkv_bias,
            scale=None if config.query_pre_attn_scalar is None else config.query_pre_attn_scalar**-0.5,
            rope_theta=config.rope_theta,
            rope_scaling=config.rope_scaling,
            qk_norm_eps=config.norm_eps if config.qk_norm else None,
            softcap=config.attn_logit_softcap,
            implementation=config.attention_impl,
            rngs=rngs,
            **config.dtypes(),
        )
        self.pre_mlp_norm = layers.RMSNorm(config.d_model, **norm)
        if config.post_norms:
            self.post_attention_norm = layers.RMSNorm(config.d_model, **norm)
            self.post_mlp_norm = layers.RMSNorm(config.d_model, **norm)
        self.post_norms = config.post_norms
        self.mlp = layers.MlpBlock(
            config.d_model,
            config.d_ff,
            activations=config.mlp_activations,
            dropout_rate=config.dropout_rate,
            rngs=rngs,
            **config.dtypes(),
        )
        self.dropout = nnx.Dropout(config.dropout_rate)

    def __call__(
        self,
        x: jax.Array,
        positions: jax.Array,
        mask: jax.Array,
        *,
        cache: attention.KVCache | None = None,
        index: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, attention.KVCache | None]:
        """One layer over `x` [B, L, d_model]; with `cache`, `x`'s keys/values are written at `index` first."""
        h = self.pre_attention_norm(x)
        kv = self.attention.project_kv(h, positions)
        if cache is not None:
            kv = cache = attention.write_cache(cache, kv, index)
        attended = self.attention.attend(self.attention.project_query(h, positions), kv, mask=mask)
        if self.post_norms:
            attended = self.post_attention_norm(attended)
        x = x + layers.apply_dropout(self.dropout, attended, rngs)
        h = self.mlp(self.pre_mlp_norm(x), rngs=rngs)
        if self.post_norms:
            h = self.post_mlp_norm(h)
        x = x + layers.apply_dropout(self.dropout, h, rngs)
        return constrain(x, layers.ACTIVATION_AXES), cache


class Decoder(nnx.Module):
    """Decoder-only language model. Logits are float32; `positions` drive the rotary embeddings."""

    def __init__(self, config: DecoderConfig, *, rngs: nnx.Rngs):
        self.config = config
        # A tied head reads the embedding as its kernel: scale it like one (logits of unit variance).
        embedding_std = config.d_model**-0.5 if config.tie_embeddings else 1.0
        self.token_embedder = layers.Embed(
            config.vocab_size,
            config.d_model,
            embedding_init=jax.nn.initializers.normal(embedding_std),
            rngs=rngs,
            **config.dtypes(),
        )
        self.layers = stack.create_stack(
            lambda r: DecoderLayer(config, rngs=r), config.num_layers, scan=config.scan_layers, rngs=rngs
        )
        self.final_norm = layers.RMSNorm(
            config.d_model, eps=config.norm_eps, scale_offset=config.norm_scale_offset, rngs=rngs, **config.dtypes()
        )
        self.dropout = nnx.Dropout(config.dropout_rate)
        if not config.tie_embeddings:
            self.logits_dense = layers.DenseGeneral(
                (config.d_model,),
                (config.vocab_size,),
                axes=("embed", "vocab"),
                kernel_init=jax.nn.initializers.normal(config.d_model**-0.5),
                rngs=rngs,
                **config.dtypes(),
            )

    def _run(
        self,
        tokens: jax.Array,
        positions: jax.Array,
        mask: jax.Array,
        *,
        window: jax.Array | None = None,
        cache: attention.KVCache | None = None,
        index: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, attention.KVCache | None]:
        """Logits and cache; `window` (from `_window_mask`) further restricts `mask` in the sliding layers."""
        x = self.token_embedder(tokens)
        if self.config.scale_embeddings:
            x = x * jnp.asarray(self.config.d_model**0.5, x.dtype)
        x = constrain(layers.apply_dropout(self.dropout, x, rngs), layers.ACTIVATION_AXES)
        # Carried through the layers (a scan included) as data: per layer, whether it uses the window.
        sliding = None if window is None else jnp.asarray(self.config.sliding_layers())

        def run_layer(layer, x, per_layer):
            key, layer_cache, layer_sliding = per_layer
            layer_mask = mask if window is None else mask & (window | ~layer_sliding)
            return layer(x, positions, layer_mask, cache=layer_cache, index=index, rngs=layer_rngs(key))

        keys = layer_dropout_keys(rngs, self.config.num_layers)
        x, cache = stack.apply_stack(
            self.layers,
            x,
            run_layer,
            (keys, cache, sliding),
            scan=self.config.scan_layers,
            remat_policy=self.config.remat_policy,
        )
        y = layers.apply_dropout(self.dropout, self.final_norm(x), rngs)
        logits = self.token_embedder.attend(y) if self.config.tie_embeddings else self.logits_dense(y)
        logits = logits.astype(jnp.float32)
        if self.config.final_logit_softcap is not None:
            logits = self.config.final_logit_softcap * jnp.tanh(logits / self.config.final_logit_softcap)
        logits = constrain(logits, ("activation_batch", "activation_length", "activation_vocab"))
        return logits, cache

    def _window_mask(self, query_positions: jax.Array, key_positions: jax.Array) -> jax.Array | None:
        """The sliding-window mask of these positions ([B or 1, L]), or None without a window."""
        if self.config.sliding_window is None:
            return None
        return attention.sliding_window_mask(query_positions, key_positions, self.config.sliding_window)

    def __call__(
        self,
        tokens: jax.Array,
        *,
        segment_ids: jax.Array | None = None,
        positions: jax.Array | None = None,
        inputs_mask: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Float32 logits [B, L, vocab] of the next token at every position of `tokens` [B, L].

        Args:
          segment_ids, positions: packed sequences (segment 0 is padding); default one sequence per row.
          inputs_mask: [B, L], nonzero on input (prefix) positions; used only when `config.prefix_lm`.
        """
        if positions is None:
            positions = jnp.broadcast_to(jnp.arange(tokens.shape[1])[None], tokens.shape)
        mask = attention.causal_mask(positions, positions)
        if self.config.prefix_lm and inputs_mask is not None:
            mask = mask | attention.prefix_mask(inputs_mask, inputs_mask)
        if segment_ids is not None:
            mask = mask & attention.segment_mask(segment_ids, segment_ids)
        return self._run(tokens, positions, mask, window=self._window_mask(positions, positions), rngs=rngs)[0]

    def logits_from_features(self, features: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits for a batch of the (prefix-)LM feature converter's features (possibly packed)."""
        return self(
            features["decoder_input_tokens"],
            segment_ids=features.get("decoder_segment_ids"),
            positions=features.get("decoder_positions"),
            inputs_mask=features.get("decoder_causal_attention"),
            rngs=rngs,
        )

    # Decoding (see `it_jax.models.decoding`). Prompts arrive right-padded with their lengths; the cache holds
    # them left-aligned to the end of a window of P slots, generation writes slot P + step, so slot s holds
    # position s - P + length. Every cache leaf is [layers or 1, batch, ...].

    def prefill(
        self, inputs: jax.Array, *, max_decode_length: int, input_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Runs the prompts `inputs` [B, P] (right-padded, lengths `input_lengths`, default P) into a cache.

        Returns:
          The logits [B, vocab] of the first generated token, and the decoding cache.
        """
        batch, prompt_length = inputs.shape
        lengths = jnp.full((batch,), prompt_length) if input_lengths is None else input_lengths.astype(jnp.int32)
        shift = prompt_length - lengths
        slots = jnp.arange(prompt_length)[None]
        # Left-align: slot s holds prompt token s - shift (padding before it).
        tokens = jnp.take_along_axis(inputs, jnp.maximum(slots - shift[:, None], 0), axis=1)
        positions = jnp.maximum(slots - shift[:, None], 0)
        valid = slots >= shift[:, None]
        length = prompt_length + max_decode_length
        key_valid = jnp.pad(valid, ((0, 0), (0, max_decode_length)))
        mask = attention.causal_mask(slots, jnp.arange(length)[None]) & key_valid[:, None, None, :]
        if self.config.prefix_lm:
            mask = mask | attention.prefix_mask(valid, key_valid)
        config = self.config
        cache = attention.init_cache(
            batch, length, config.num_kv_heads, config.head_dim, jnp.dtype(config.dtype), num_layers=config.num_layers
        )
        window = self._window_mask(positions, jnp.arange(length)[None] - shift[:, None])
        logits, cache = self._run(tokens, positions, mask, window=window, cache=cache, index=jnp.zeros((), jnp.int32))
        state = {
            "kv": cache,
            "key_valid": key_valid[None],
            "lengths": lengths[None],
            "prompt_slots": jnp.full((1, batch), prompt_length, jnp.int32),
        }
        return logits[:, -1], state

    def decode_step(self, tokens: jax.Array, step: jax.Array, cache: dict[str, Any]) -> tuple[jax.Array, dict[str, Any]]:
        """Feeds generated token `step` ([B] ids): the logits of the next token and the new cache."""
        key_valid, lengths = cache["key_valid"][0], cache["lengths"][0]
        index = cache["prompt_slots"][0, 0] + step
        key_valid = key_valid.at[:, index].set(True)
        mask = key_valid[:, None, None, :]
        positions = (lengths + step)[:, None]
        key_positions = jnp.arange(key_valid.shape[1])[None] - cache["prompt_slots"][0, 0] + lengths[:, None]
        window = self._window_mask(positions, key_positions)
        logits, kv = self._run(tokens[:, None], positions, mask, window=window, cache=cache["kv"], index=index)
        return logits[:, 0], {**cache, "kv": kv, "key_valid": key_valid[None]}

    def continuation_logits(
        self, inputs: jax.Array, continuations: jax.Array, *, input_lengths: jax.Array | None = None
    ) -> jax.Array:
        """Logits [B, K, T, vocab] of K continuations [B, K, T] of each prompt [B, P], the prompt run once.

        The prompt's keys and values are computed once (`prefill`) and shared by its K continuations, which
        attend to the prompt and causally to themselves; logits [b, k, t] predict `continuations[b, k, t]`.
        """
        batch, num, length = continuations.shape
        first, cache = self.prefill(inputs, max_decode_length=length, input_lengths=input_lengths)
        prompt_slots = inputs.shape[1]
        repeat = lambda x: jnp.repeat(x, num, axis=1)  # noqa: E731  # [layers or 1, B, ...] -> [.., B*K, ..]
        kv = jax.tree.map(repeat, cache["kv"])
        key_valid = repeat(cache["key_valid"])[0]
        lengths = repeat(cache["lengths"])[0]
        slots = prompt_slots + jnp.arange(length)
        own = attention.causal_mask(slots[None], jnp.arange(prompt_slots + length)[None]) & (
            jnp.arange(prompt_slots + length) >= prompt_slots
        )
        mask = own | (key_valid[:, None, None, :] & (jnp.arange(prompt_slots + length) < prompt_slots))
        tokens = continuations.reshape(batch * num, length)
        positions = lengths[:, None] + jnp.arange(length)[None]
        window = self._window_mask(positions, jnp.arange(prompt_slots + length)[None] - prompt_slots + lengths[:, None])
        index = jnp.asarray(prompt_slots, jnp.int32)
        logits, _ = self._run(tokens, positions, mask, window=window, cache=kv, index=index)
        logits = jnp.concatenate([jnp.repeat(first, num, axis=0)[:, None], logits[:, :-1]], axis=1)
        return logits.reshape(batch, num, length, -1)

    def logits_without_cache(
        self, inputs: jax.Array, generated: jax.Array, *, input_lengths: jax.Array | None = None
    ) -> jax.Array:
        """Logits [B, Lg, vocab] of each generated position given the prompt and the tokens before it."""
        batch, prompt_length = inputs.shape
        lengths = jnp.full((batch,), prompt_length) if input_lengths is None else input_lengths.astype(jnp.int32)
        total = prompt_length + generated.shape[1]
        columns = jnp.arange(total)[None]
        # Each row: its prompt, then its generated tokens, then padding (segment 0).
        from_generated = jnp.take_along_axis(generated, jnp.clip(columns - lengths[:, None], 0, generated.shape[1] - 1), 1)
        from_prompt = jnp.take_along_axis(inputs, jnp.minimum(columns, prompt_length - 1), 1)
        tokens = jnp.where(columns < lengths[:, None], from_prompt, from_generated)
        segment_ids = (columns < (lengths[:, None] + generated.shape[1])).astype(jnp.int32)
        inputs_mask = (columns < lengths[:, None]).astype(jnp.int32)
        logits = self(tokens, segment_ids=segment_ids, positions=jnp.broadcast_to(columns, tokens.shape), inputs_mask=inputs_mask)
        # The logits predicting generated token i sit at column length - 1 + i.
        gather = lengths[:, None] - 1 + jnp.arange(generated.shape[1])[None]
        return jnp.take_along_axis(logits, gather[..., None], axis=1)
