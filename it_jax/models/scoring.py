"""Scoring targets under any model family: per-example log-likelihoods, batched, for rank classification."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx


def shift_right(targets: jax.Array) -> jax.Array:
    """Decoder inputs for teacher forcing: the targets shifted one place right, starting from 0 (T5's pad)."""
    return jnp.pad(targets, ((0, 0), (1, 0)))[:, :-1]


def target_log_likelihood(
    model: nnx.Module,
    inputs: jax.Array,
    targets: jax.Array,
    *,
    input_lengths: jax.Array | None = None,
    target_lengths: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Log-likelihood of each example's targets given its inputs.

    Args:
      inputs: [batch, input_length] encoder ids (0-padded) or decoder-only prompts (right-padded).
      targets: [batch, target_length] ids (EOS included).
      input_lengths: decoder-only prompt lengths; None means every prompt fills the row.
      target_lengths: how many target tokens count; None counts the nonzero ids (0 is T5's padding).

    Returns:
      (sum, mean) over the counted target tokens, each [batch]: the sum is what the training loss counts.
    """
    logits = model.logits_without_cache(inputs, targets, input_lengths=input_lengths).astype(jnp.float32)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    token_ll = jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
    if target_lengths is None:
        weights = (targets > 0).astype(jnp.float32)
    else:
        weights = (jnp.arange(targets.shape[1])[None] < target_lengths[:, None]).astype(jnp.float32)
    total = (token_ll * weights).sum(axis=-1)
    return total, total / jnp.maximum(weights.sum(axis=-1), 1.0)


def option_log_likelihoods(
    model: nnx.Module,
    inputs: jax.Array,
    options: jax.Array,
    *,
    input_lengths: jax.Array | None = None,
    option_lengths: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Log-likelihood of each of K options [B, K, T] given its example's inputs [B, P] (rank classification).

    The inputs are run once per example and shared by its options (the encoder for encoder-decoder models,
    the prompt's KV cache for decoder-only ones). `option_lengths` [B, K] counts each option's scored tokens.

    Returns:
      (sum, mean) over each option's counted tokens, each [B, K].
    """
    logits = model.continuation_logits(inputs, options, input_lengths=input_lengths).astype(jnp.float32)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    token_ll = jnp.take_along_axis(logits, options[..., None], axis=-1)[..., 0] - log_z
    weights = (jnp.arange(options.shape[-1]) < option_lengths[..., None]).astype(jnp.float32)
    total = (token_ll * weights).sum(axis=-1)
    return total, total / jnp.maximum(weights.sum(axis=-1), 1.0)
