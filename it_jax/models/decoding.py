"""Greedy decoding for encoder-decoder models (the encoder runs once; the decoder re-reads its prefix)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def greedy_decode(
    model: nnx.Module, encoder_input_tokens: jax.Array, *, max_length: int, eos_id: int = 1
) -> jax.Array:
    """Greedy decoding with per-example EOS stopping.

    Returns:
      [batch, max_length] generated ids; positions after an example's EOS are 0.
    """
    batch = encoder_input_tokens.shape[0]
    encoded = model.encode(encoder_input_tokens)
    # decoder_inputs[:, i] feeds position i; position 0 is the start token 0.
    decoder_inputs = jnp.zeros((batch, max_length + 1), jnp.int32)
    done = jnp.zeros((batch,), bool)

    def cond(carry):
        i, _, done = carry
        return (i < max_length) & ~done.all()

    def body(carry):
        i, decoder_inputs, done = carry
        logits = model.decode(encoded, encoder_input_tokens, decoder_inputs[:, :max_length])
        token = jnp.argmax(logits[:, i], axis=-1).astype(jnp.int32)
        token = jnp.where(done, 0, token)
        decoder_inputs = decoder_inputs.at[:, i + 1].set(token)
        return i + 1, decoder_inputs, done | (token == eos_id)

    _, decoder_inputs, _ = jax.lax.while_loop(cond, body, (0, decoder_inputs, done))
    return decoder_inputs[:, 1:]
