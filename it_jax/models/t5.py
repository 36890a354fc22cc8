"""T5 v1.1 encoder-decoder (the Flan-T5 architecture) in flax NNX, with a KV cache for decoding.

Pre-norm residual layers with RMSNorm, gated-GELU feed-forward blocks, relative position biases shared
across each stack, a token embedding shared by encoder and decoder, and an untied output head (the
original T5: ReLU, tied head). Dropout is applied only when `rngs` is passed to a call; the model holds no
random state, and decoding caches are explicit arrays passed in and out.

Parameter names (stable, for checkpoint conversion; with `scan_layers` the `layers.{i}` level is replaced
by one stacked layer whose arrays have a leading `layers` axis):
  token_embedder.embedding
  encoder.relative_bias.embedding, encoder.final_norm.scale
  encoder.layers.{i}.{pre_attention_norm, pre_mlp_norm}.scale
  encoder.layers.{i}.attention.{query, key, value, out}.kernel, encoder.layers.{i}.mlp.{wi_0, wi_1, wo}.kernel
  decoder.relative_bias.embedding, decoder.final_norm.scale, decoder.logits_dense.kernel
  decoder.layers.{i}.{pre_self_attention_norm, pre_cross_attention_norm, pre_mlp_norm}.scale
  decoder.layers.{i}.{self_attention, cross_attention}.{query, key, value, out}.kernel
  decoder.layers.{i}.mlp.{wi_0, wi_1, wo}.kernel
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from it_jax.models import attention, layers, stack
from it_jax.sharding import constrain

@dataclasses.dataclass(frozen=True, kw_only=True)
class T5Config:
    """Hyperparameters of a T5 v1.1 model.

    `dtype` is the activation/compute dtype, `param_dtype` the storage dtype of the parameters.
    `logits_via_embedding` ties the output head to the token embedding, with the original T5's
    1/sqrt(d_model) logit rescaling; the default untied head (T5 v1.1) is not rescaled.
    `attention_impl` selects `jax.nn.dot_product_attention`'s implementation (None, "xla", "cudnn");
    `remat_policy` ("none", "minimal", "full") and `scan_layers` trade memory and compile time.
    """

    vocab_size: int
    d_model: int
    d_ff: int
    d_kv: int
    num_heads: int
    num_encoder_layers: int
    num_decoder_layers: int
    dropout_rate: float = 0.0
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    mlp_activations: tuple[str, ...] = ("gelu", "linear")
    dtype: str = "float32"
    param_dtype: str = "float32"
    logits_via_embedding: bool = False
    attention_impl: str | None = "xla"
    remat_policy: str = "none"
    scan_layers: bool = False

    def __post_init__(self):
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))

    def dtypes(self) -> dict[str, Any]:
        """Keyword arguments `dtype` and `param_dtype` for the layers."""
        return {"dtype": jnp.dtype(self.dtype), "param_dtype": jnp.dtype(self.param_dtype)}


def _norm(config: T5Config, rngs: nnx.Rngs) -> layers.RMSNorm:
    return layers.RMSNorm(config.d_model, rngs=rngs, **config.dtypes())


def _attention(config: T5Config, rngs: nnx.Rngs) -> attention.MultiHeadAttention:
    return attention.MultiHeadAttention(
        config.d_model,
        config.num_heads,
        config.d_kv,
        scale=1.0,
        implementation=config.attention_impl,
        rngs=rngs,
        **config.dtypes(),
    )


def _mlp(config: T5Config, rngs: nnx.Rngs) -> layers.MlpBlock:
    return layers.MlpBlock(
        config.d_model,
        config.d_ff,
        activations=config.mlp_activations,
        dropout_rate=config.dropout_rate,
        rngs=rngs,
        **config.dtypes(),
    )


def _relative_bias(config: T5Config, *, bidirectional: bool, rngs: nnx.Rngs) -> layers.RelativePositionBias:
    return layers.RelativePositionBias(
        config.num_heads,
        bidirectional=bidirectional,
        num_buckets=config.relative_attention_num_buckets,
        max_distance=config.relative_attention_max_distance,
        param_dtype=jnp.dtype(config.param_dtype),
        rngs=rngs,
    )


def _positions(tokens: jax.Array, positions: jax.Array | None) -> jax.Array:
    """Positions for the relative bias: the given (packed) ones, else 0..L-1 as [1, L]."""
    return jnp.arange(tokens.shape[1])[None] if positions is None else positions


def layer_dropout_keys(rngs: nnx.Rngs | None, num_layers: int) -> jax.Array | None:
    """One dropout key per layer (scanned and unrolled stacks draw the same ones), or None without rngs."""
    return None if rngs is None else jax.random.split(rngs.dropout(), num_layers)


def layer_rngs(key: jax.Array | None) -> nnx.Rngs | None:
    return None if key is None else nnx.Rngs(dropout=key)


class EncoderLayer(nnx.Module):
    """Pre-norm self-attention then pre-norm MLP, each followed by dropout and a residual add."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.pre_attention_norm = _norm(config, rngs)
        self.attention = _attention(config, rngs)
        self.pre_mlp_norm = _norm(config, rngs)
        self.mlp = _mlp(config, rngs)
        self.dropout = nnx.Dropout(config.dropout_rate)

    def __call__(self, x: jax.Array, bias: jax.Array, *, rngs: nnx.Rngs | None = None) -> jax.Array:
        h = self.pre_attention_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.attention(h, h, bias=bias), rngs)
        h = self.pre_mlp_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.mlp(h, rngs=rngs), rngs)
        return constrain(x, layers.ACTIVATION_AXES)


class DecoderLayer(nnx.Module):
    """Pre-norm causal self-attention, cross-attention to the encoder, then MLP; dropout and residuals."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.pre_self_attention_norm = _norm(config, rngs)
        self.self_attention = _attention(config, rngs)
        self.pre_cross_attention_norm = _norm(config, rngs)
        self.cross_attention = _attention(config, rngs)
        self.pre_mlp_norm = _norm(config, rngs)
        self.mlp = _mlp(config, rngs)
        self.dropout = nnx.Dropout(config.dropout_rate)

    def __call__(
        self,
        x: jax.Array,
        cross_kv: attention.KVCache,
        self_bias: jax.Array,
        cross_bias: jax.Array,
        *,
        cache: attention.KVCache | None = None,
        index: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, attention.KVCache | None]:
        """One layer over decoder states `x`; with `cache`, `x`'s keys/values are written at `index` first.

        Returns:
          The new states, and the updated cache (None without one).
        """
        h = self.pre_self_attention_norm(x)
        kv = self.self_attention.project_kv(h)
        if cache is not None:
            kv = cache = attention.write_cache(cache, kv, index)
        attended = self.self_attention.attend(self.self_attention.project_query(h), kv, bias=self_bias)
        x = x + layers.apply_dropout(self.dropout, attended, rngs)
        h = self.pre_cross_attention_norm(x)
        attended = self.cross_attention.attend(self.cross_attention.project_query(h), cross_kv, bias=cross_bias)
        x = x + layers.apply_dropout(self.dropout, attended, rngs)
        h = self.pre_mlp_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.mlp(h, rngs=rngs), rngs)
        return constrain(x, layers.ACTIVATION_AXES), cache


class Encoder(nnx.Module):
    """Embedding dropout, the encoder layers with one bidirectional relative bias, final norm and dropout."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.config = config
        self.relative_bias = _relative_bias(config, bidirectional=True, rngs=rngs)
        self.layers = stack.create_stack(
            lambda r: EncoderLayer(config, rngs=r), config.num_encoder_layers, scan=config.scan_layers, rngs=rngs
        )
        self.final_norm = _norm(config, rngs)
        self.dropout = nnx.Dropout(config.dropout_rate)

    def __call__(
        self, embedded: jax.Array, mask_bias: jax.Array, positions: jax.Array, *, rngs: nnx.Rngs | None = None
    ) -> jax.Array:
        """Encodes embedded inputs [B, L, d_model] given the additive attention mask bias [B, 1, L, L]."""
        bias = self.relative_bias(positions, positions) + mask_bias
        x = constrain(layers.apply_dropout(self.dropout, embedded, rngs), layers.ACTIVATION_AXES)
        x, _ = stack.apply_stack(
            self.layers,
            x,
            lambda layer, x, key: (layer(x, bias, rngs=layer_rngs(key)), None),
            layer_dropout_keys(rngs, self.config.num_encoder_layers),
            scan=self.config.scan_layers,
            remat_policy=self.config.remat_policy,
        )
        return layers.apply_dropout(self.dropout, self.final_norm(x), rngs)


class Decoder(nnx.Module):
    """Embedding dropout, the decoder layers with one causal relative bias, final norm, dropout, head."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.config = config
        self.relative_bias = _relative_bias(config, bidirectional=False, rngs=rngs)
        self.layers = stack.create_stack(
            lambda r: DecoderLayer(config, rngs=r), config.num_decoder_layers, scan=config.scan_layers, rngs=rngs
        )
        self.final_norm = _norm(config, rngs)
        self.dropout = nnx.Dropout(config.dropout_rate)
        if not config.logits_via_embedding:
            self.logits_dense = layers.DenseGeneral(
                (config.d_model,),
                (config.vocab_size,),
                axes=("embed", "vocab"),
                kernel_init=jax.nn.initializers.normal(config.d_model**-0.5),
                rngs=rngs,
                **config.dtypes(),
            )

    def cross_kv(self, encoded: jax.Array) -> attention.KVCache:
        """Every layer's cross-attention keys and values of `encoded`, stacked: [layers, B, Le, heads, d_kv]."""
        _, kv = stack.apply_stack(
            self.layers,
            None,
            lambda layer, carry, _: (carry, layer.cross_attention.project_kv(encoded)),
            scan=self.config.scan_layers,
        )
        return kv

    def __call__(
        self,
        embedded: jax.Array,
        cross_kv: attention.KVCache,
        self_bias: jax.Array,
        cross_bias: jax.Array,
        *,
        cache: attention.KVCache | None = None,
        index: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> tuple[jax.Array, attention.KVCache | None]:
        """Final hidden states [B, Ld, d_model] (normalized, before the output head) and the updated cache.

        Args:
          cross_kv: stacked per-layer cross-attention keys/values (`cross_kv`).
          self_bias: relative position bias plus mask for self-attention, [B or 1, heads, Ld, Lkeys].
          cache: stacked self-attention caches [layers, B, S, heads, d_kv] to write at `index`, if decoding.
        """
        x = constrain(layers.apply_dropout(self.dropout, embedded, rngs), layers.ACTIVATION_AXES)

        def run_layer(layer, x, per_layer):
            key, layer_cross_kv, layer_cache = per_layer
            return layer(
                x, layer_cross_kv, self_bias, cross_bias, cache=layer_cache, index=index, rngs=layer_rngs(key)
            )

        keys = layer_dropout_keys(rngs, self.config.num_decoder_layers)
        x, cache = stack.apply_stack(
            self.layers,
            x,
            run_layer,
            (keys, cross_kv, cache),
            scan=self.config.scan_layers,
            remat_policy=self.config.remat_policy,
        )
        return layers.apply_dropout(self.dropout, self.final_norm(x), rngs), cache


class T5(nnx.Module):
    """Encoder-decoder T5 v1.1. Token ids are int32 with 0 as padding; logits are float32."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.config = config
        self.token_embedder = layers.Embed(
            config.vocab_size,
            config.d_model,
            embedding_init=jax.nn.initializers.normal(1.0),
            rngs=rngs,
            **config.dtypes(),
        )
        self.encoder = Encoder(config, rngs=rngs)
        self.decoder = Decoder(config, rngs=rngs)

    def encode(
        self,
        encoder_input_tokens: jax.Array,
        *,
        encoder_segment_ids: jax.Array | None = None,
        encoder_positions: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Encoder outputs [B, Le, d_model] for input ids [B, Le] (packed when segment ids are given)."""
        if encoder_segment_ids is None:
            valid = encoder_input_tokens > 0
            mask = attention.attention_mask(valid, valid)
        else:
            mask = attention.segment_mask(encoder_segment_ids, encoder_segment_ids)
        embedded = self.token_embedder(encoder_input_tokens)
        positions = _positions(encoder_input_tokens, encoder_positions)
        return self.encoder(embedded, attention.mask_to_bias(mask), positions, rngs=rngs)

    def _logits(self, y: jax.Array) -> jax.Array:
        if self.config.logits_via_embedding:
            logits = self.token_embedder.attend(y) / jnp.sqrt(jnp.asarray(self.config.d_model, y.dtype))
        else:
            logits = self.decoder.logits_dense(y)
        return constrain(logits.astype(jnp.float32), ("activation_batch", "activation_length", "activation_vocab"))

    def decode(
        self,
        encoded: jax.Array | None,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        *,
        encoder_segment_ids: jax.Array | None = None,
        decoder_segment_ids: jax.Array | None = None,
        decoder_positions: jax.Array | None = None,
        cross_kv: attention.KVCache | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Float32 logits [B, Ld, vocab] for teacher-forced decoder inputs [B, Ld] (targets shifted right).

        Decoder self-attention is causal (plus the segment mask when packed); it needs no padding mask,
        since the start token is 0 and later padding is never attended by real positions. `cross_kv`:
        `Decoder.cross_kv(encoded)` when already computed (`encoded` is then not read).
        """
        if (encoder_segment_ids is None) != (decoder_segment_ids is None):
            raise ValueError("packed decoding needs both encoder_segment_ids and decoder_segment_ids")
        positions = _positions(decoder_input_tokens, decoder_positions)
        self_masks = [attention.causal_mask(positions, positions)]
        if decoder_segment_ids is None:
            decoder_valid = jnp.ones(decoder_input_tokens.shape, bool)
            cross_mask = attention.attention_mask(decoder_valid, encoder_input_tokens > 0)
        else:
            self_masks.append(attention.segment_mask(decoder_segment_ids, decoder_segment_ids))
            cross_mask = attention.segment_mask(decoder_segment_ids, encoder_segment_ids)
        self_bias = self.decoder.relative_bias(positions, positions) + attention.mask_to_bias(*self_masks)
        y, _ = self.decoder(
            self.token_embedder(decoder_input_tokens),
            self.decoder.cross_kv(encoded) if cross_kv is None else cross_kv,
            self_bias,
            attention.mask_to_bias(cross_mask),
            rngs=rngs,
        )
        return self._logits(y)

    def __call__(
        self,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        *,
        encoder_segment_ids: jax.Array | None = None,
        decoder_segment_ids: jax.Array | None = None,
        encoder_positions: jax.Array | None = None,
        decoder_positions: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Encode then decode: float32 logits [B, Ld, vocab]."""
        encoded = self.encode(
            encoder_input_tokens, encoder_segment_ids=encoder_segment_ids, encoder_positions=encoder_positions, rngs=rngs
        )
        return self.decode(
            encoded,
            encoder_input_tokens,
            decoder_input_tokens,
            encoder_segment_ids=encoder_segment_ids,
            decoder_segment_ids=decoder_segment_ids,
            decoder_positions=decoder_positions,
            rngs=rngs,
        )

    def logits_from_features(self, features: Mapping[str, jax.Array], *, rngs: nnx.Rngs | None = None) -> jax.Array:
        """Logits for a batch of the encoder-decoder feature converter's (possibly packed) features."""
        return self(
            features["encoder_input_tokens"],
            features["decoder_input_tokens"],
            encoder_segment_ids=features.get("encoder_segment_ids"),
            decoder_segment_ids=features.get("decoder_segment_ids"),
            encoder_positions=features.get("encoder_positions"),
            decoder_positions=features.get("decoder_positions"),
            rngs=rngs,
        )

    # Decoding (see `it_jax.models.decoding`): every cache leaf is [layers or 1, batch, ...].

    def prefill(
        self, inputs: jax.Array, *, max_decode_length: int, input_lengths: jax.Array | None = None
    ) -> tuple[jax.Array, dict[str, Any]]:
        """Encodes `inputs` [B, Le] (0-padded; `input_lengths` unused) and feeds the start token 0.

        Returns:
          The logits [B, vocab] of the first generated token, and the decoding cache.
        """
        del input_lengths
        encoded = self.encode(inputs)
        num_layers, batch = self.config.num_decoder_layers, inputs.shape[0]
        empty = attention.init_cache(
            batch,
            max_decode_length,
            self.config.num_heads,
            self.config.d_kv,
            jnp.dtype(self.config.dtype),
            num_layers=num_layers,
        )
        cache = {
            "self": empty,
            "cross": self.decoder.cross_kv(encoded),
            "encoder_valid": (inputs > 0)[None],
        }
        return self._step(jnp.zeros((batch,), jnp.int32), jnp.zeros((), jnp.int32), cache)

    def decode_step(self, tokens: jax.Array, step: jax.Array, cache: dict[str, Any]) -> tuple[jax.Array, dict[str, Any]]:
        """Feeds generated token `step` ([B] ids, at decoder position step + 1): logits of the next, new cache."""
        return self._step(tokens, step + 1, cache)

    def _step(self, tokens: jax.Array, position: jax.Array, cache: dict[str, Any]) -> tuple[jax.Array, dict[str, Any]]:
        length = cache["self"]["key"].shape[2]
        key_positions = jnp.arange(length)[None]
        query_positions = jnp.full((1, 1), position)
        self_bias = self.decoder.relative_bias(query_positions, key_positions) + attention.mask_to_bias(
            attention.causal_mask(query_positions, key_positions)
        )
        encoder_valid = cache["encoder_valid"][0]
        cross_bias = attention.mask_to_bias(attention.attention_mask(jnp.ones_like(encoder_valid[:, :1]), encoder_valid))
        y, self_cache = self.decoder(
            self.token_embedder(tokens[:, None]), cache["cross"], self_bias, cross_bias, cache=cache["self"], index=position
        )
        return self._logits(y)[:, 0], {**cache, "self": self_cache}

    def continuation_logits(
        self, inputs: jax.Array, continuations: jax.Array, *, input_lengths: jax.Array | None = None
    ) -> jax.Array:
        """Logits [B, K, T, vocab] of K target sequences [B, K, T] per input [B, Le], each input encoded once
        and its cross-attention keys and values projected once."""
        del input_lengths
        batch, num, length = continuations.shape
        encoded = self.encode(inputs)
        # Keys and values of the encoding are projected once, then shared by the input's K targets.
        cross_kv = jax.tree.map(lambda x: jnp.repeat(x, num, axis=1), self.decoder.cross_kv(encoded))
        targets = continuations.reshape(batch * num, length)
        logits = self.decode(
            None,
            jnp.repeat(inputs, num, axis=0),
            jnp.pad(targets, ((0, 0), (1, 0)))[:, :-1],
            cross_kv=cross_kv,
        )
        return logits.reshape(batch, num, length, -1)

    def logits_without_cache(
        self, inputs: jax.Array, generated: jax.Array, *, input_lengths: jax.Array | None = None
    ) -> jax.Array:
        """Logits [B, Lg, vocab] of each generated position given everything before it (no cache)."""
        del input_lengths
        return self(inputs, jnp.pad(generated, ((0, 0), (1, 0)))[:, :-1])
