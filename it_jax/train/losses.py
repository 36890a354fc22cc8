"""Training losses: token cross-entropy on target tokens only, normalized by the real target tokens."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def cross_entropy(
    logits: jax.Array, targets: jax.Array, weights: jax.Array
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean negative log-likelihood over the positions where `weights` is nonzero.

    Args:
      logits: [batch, length, vocab], any float dtype (computed in float32).
      targets: [batch, length] token ids.
      weights: [batch, length] loss weights: 1 on real target tokens (EOS included), 0 on padding.

    Returns:
      The loss and summed statistics (`nll_sum`, `correct`, `tokens`) for logging.
    """
    logits = logits.astype(jnp.float32)
    weights = weights.astype(jnp.float32)
    log_z = jax.nn.logsumexp(logits, axis=-1)
    target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    nll = (log_z - target_logits) * weights
    tokens = weights.sum()
    correct = ((jnp.argmax(logits, axis=-1) == targets) * weights).sum()
    loss = nll.sum() / jnp.maximum(tokens, 1.0)
    return loss, {"nll_sum": nll.sum(), "correct": correct, "tokens": tokens}
