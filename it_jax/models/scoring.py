"""Scoring targets under an encoder-decoder model: per-example log-likelihoods for rank classification."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def shift_right(targets: jax.Array) -> jax.Array:
    """Decoder inputs for teacher forcing: the targets shifted one place right, starting from 0 (T5's pad)."""
    return jnp.pad(targets, ((0, 0), (1, 0)))[:, :-1]


def target_log_likelihood(
    model: nnx.Module, encoder_input_tokens: jax.Array, decoder_target_tokens: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Log-likelihood of each example's targets given its inputs.

    Args:
      encoder_input_tokens: [batch, input_length] ids, 0-padded.
      decoder_target_tokens: [batch, target_length] ids (EOS included), 0-padded.

    Returns:
      (sum, mean) over the real target tokens, each [batch]: the sum is what the training loss counts.
    """
    logits = model(encoder_input_tokens, shift_right(decoder_target_tokens)).astype(jnp.float32)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    token_ll = jnp.take_along_axis(log_probs, decoder_target_tokens[..., None], axis=-1)[..., 0]
    weights = (decoder_target_tokens > 0).astype(jnp.float32)
    total = (token_ll * weights).sum(axis=-1)
    return total, total / jnp.maximum(weights.sum(axis=-1), 1.0)
