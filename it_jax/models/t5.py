"""T5 v1.1 encoder-decoder (the Flan-T5 architecture) in flax NNX.

Pre-norm residual layers with RMSNorm, gated-GELU feed-forward blocks, relative position biases shared
across each stack, a token embedding shared by encoder and decoder, and an untied output head. Dropout is
applied only when `rngs` is passed to a call; the model holds no random state.

Parameter names (stable, for checkpoint conversion):
  token_embedder.embedding
  encoder.relative_bias.embedding, encoder.final_norm.scale
  encoder.layers[i].{pre_attention_norm, pre_mlp_norm}.scale
  encoder.layers[i].attention.{query, key, value, out}.kernel, encoder.layers[i].mlp.{wi_0, wi_1, wo}.kernel
  decoder.relative_bias.embedding, decoder.final_norm.scale, decoder.logits_dense.kernel
  decoder.layers[i].{pre_self_attention_norm, pre_cross_attention_norm, pre_mlp_norm}.scale
  decoder.layers[i].{self_attention, cross_attention}.{query, key, value, out}.kernel
  decoder.layers[i].mlp.{wi_0, wi_1, wo}.kernel
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from it_jax.models import layers
from it_jax.sharding import constrain


@dataclasses.dataclass(frozen=True, kw_only=True)
class T5Config:
    """Hyperparameters of a T5 v1.1 model.

    `dtype` is the activation/compute dtype, `param_dtype` the storage dtype of the parameters.
    `logits_via_embedding` ties the output head to the token embedding, with the original T5's
    1/sqrt(d_model) logit rescaling; the default untied head (T5 v1.1) is not rescaled.
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

    def __post_init__(self):
        object.__setattr__(self, "mlp_activations", tuple(self.mlp_activations))

    def dtypes(self) -> dict[str, Any]:
        """Keyword arguments `dtype` and `param_dtype` for the layers."""
        return {"dtype": jnp.dtype(self.dtype), "param_dtype": jnp.dtype(self.param_dtype)}


def _norm(config: T5Config, rngs: nnx.Rngs) -> layers.RMSNorm:
    return layers.RMSNorm(config.d_model, rngs=rngs, **config.dtypes())


def _attention(config: T5Config, rngs: nnx.Rngs) -> layers.MultiHeadAttention:
    return layers.MultiHeadAttention(config.d_model, config.num_heads, config.d_kv, rngs=rngs, **config.dtypes())


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
        x = x + layers.apply_dropout(self.dropout, self.attention(h, h, bias), rngs)
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
        encoded: jax.Array,
        self_bias: jax.Array,
        cross_bias: jax.Array,
        *,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        h = self.pre_self_attention_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.self_attention(h, h, self_bias), rngs)
        h = self.pre_cross_attention_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.cross_attention(h, encoded, cross_bias), rngs)
        h = self.pre_mlp_norm(x)
        x = x + layers.apply_dropout(self.dropout, self.mlp(h, rngs=rngs), rngs)
        return constrain(x, layers.ACTIVATION_AXES)


class Encoder(nnx.Module):
    """Embedding dropout, the encoder layers with one bidirectional relative bias, final norm and dropout."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.relative_bias = _relative_bias(config, bidirectional=True, rngs=rngs)
        self.layers = nnx.List([EncoderLayer(config, rngs=rngs) for _ in range(config.num_encoder_layers)])
        self.final_norm = _norm(config, rngs)
        self.dropout = nnx.Dropout(config.dropout_rate)

    def __call__(
        self, embedded: jax.Array, mask_bias: jax.Array, positions: jax.Array, *, rngs: nnx.Rngs | None = None
    ) -> jax.Array:
        """Encodes embedded inputs [B, L, d_model] given the additive attention mask bias [B, 1, L, L]."""
        bias = self.relative_bias(positions, positions) + mask_bias
        x = constrain(layers.apply_dropout(self.dropout, embedded, rngs), layers.ACTIVATION_AXES)
        for layer in self.layers:
            x = layer(x, bias, rngs=rngs)
        return layers.apply_dropout(self.dropout, self.final_norm(x), rngs)


class Decoder(nnx.Module):
    """Embedding dropout, the decoder layers with one causal relative bias, final norm, dropout, head."""

    def __init__(self, config: T5Config, *, rngs: nnx.Rngs):
        self.relative_bias = _relative_bias(config, bidirectional=False, rngs=rngs)
        self.layers = nnx.List([DecoderLayer(config, rngs=rngs) for _ in range(config.num_decoder_layers)])
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

    def __call__(
        self,
        embedded: jax.Array,
        encoded: jax.Array,
        self_mask_bias: jax.Array,
        cross_bias: jax.Array,
        positions: jax.Array,
        *,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Final hidden states [B, Ld, d_model] (normalized, before the output head)."""
        self_bias = self.relative_bias(positions, positions) + self_mask_bias
        x = constrain(layers.apply_dropout(self.dropout, embedded, rngs), layers.ACTIVATION_AXES)
        for layer in self.layers:
            x = layer(x, encoded, self_bias, cross_bias, rngs=rngs)
        return layers.apply_dropout(self.dropout, self.final_norm(x), rngs)


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
            mask = layers.make_attention_mask(valid, valid)
        else:
            mask = layers.make_segment_mask(encoder_segment_ids, encoder_segment_ids)
        embedded = self.token_embedder(encoder_input_tokens)
        positions = _positions(encoder_input_tokens, encoder_positions)
        return self.encoder(embedded, layers.mask_to_bias(mask), positions, rngs=rngs)

    def decode(
        self,
        encoded: jax.Array,
        encoder_input_tokens: jax.Array,
        decoder_input_tokens: jax.Array,
        *,
        encoder_segment_ids: jax.Array | None = None,
        decoder_segment_ids: jax.Array | None = None,
        decoder_positions: jax.Array | None = None,
        rngs: nnx.Rngs | None = None,
    ) -> jax.Array:
        """Float32 logits [B, Ld, vocab] for teacher-forced decoder inputs [B, Ld] (targets shifted right).

        Decoder self-attention is causal (plus the segment mask when packed); it needs no padding mask,
        since the start token is 0 and later padding is never attended by real positions.
        """
        if (encoder_segment_ids is None) != (decoder_segment_ids is None):
            raise ValueError("packed decoding needs both encoder_segment_ids and decoder_segment_ids")
        self_masks = [layers.make_causal_mask(decoder_input_tokens.shape[1])]
        if decoder_segment_ids is None:
            decoder_valid = jnp.ones(decoder_input_tokens.shape, bool)
            cross_mask = layers.make_attention_mask(decoder_valid, encoder_input_tokens > 0)
        else:
            self_masks.append(layers.make_segment_mask(decoder_segment_ids, decoder_segment_ids))
            cross_mask = layers.make_segment_mask(decoder_segment_ids, encoder_segment_ids)
        embedded = self.token_embedder(decoder_input_tokens)
        positions = _positions(decoder_input_tokens, decoder_positions)
        y = self.decoder(
            embedded,
            encoded,
            layers.mask_to_bias(*self_masks),
            layers.mask_to_bias(cross_mask),
            positions,
            rngs=rngs,
        )
        if self.config.logits_via_embedding:
            logits = self.token_embedder.attend(y) / jnp.sqrt(jnp.asarray(self.config.d_model, y.dtype))
        else:
            logits = self.decoder.logits_dense(y)
        logits = logits.astype(jnp.float32)
        return constrain(logits, ("activation_batch", "activation_length", "activation_vocab"))

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
