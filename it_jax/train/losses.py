"""Training losses: token cross-entropy on target tokens, with label smoothing, z-loss and normalization modes.

The loss of a batch is `sum(per-token loss * token scale) / denominator`. The denominator depends only on
the batch's loss weights (never on the parameters), so a batch split into microbatches can be normalized
by the whole batch's denominator and its gradients summed: the result equals the unsplit batch's.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

NORMALIZATIONS = ("real_tokens", "all_tokens", "per_sequence")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LossConfig:
    """How token losses are formed and averaged.

    Attributes:
      label_smoothing: mass moved from the target to the other `vocab - 1` tokens (T5X's form: the loss is
        shifted by the smoothed distribution's entropy, so a perfect prediction still scores 0).
      z_loss: coefficient of the `log(Z)**2` penalty per target token (Z: the softmax normalizer), which
        keeps the logits from drifting; 1e-4 in T5X and PaLM.
      normalization: "real_tokens" divides by the number of real (weighted) target tokens; "all_tokens"
        by the number of target positions, padding included; "per_sequence" averages within each target
        sequence (each packed segment) and then over the sequences.
    """

    label_smoothing: float = 0.0
    z_loss: float = 0.0
    normalization: str = "real_tokens"

    def __post_init__(self):
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown loss normalization {self.normalization!r}; choose one of {NORMALIZATIONS}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def _segments(weights: jax.Array, segment_ids: jax.Array | None) -> jax.Array:
    """Segment ids of the target positions: the packed ones, else one segment per row."""
    return (weights > 0).astype(jnp.int32) if segment_ids is None else segment_ids.astype(jnp.int32)


def _segment_counts(weights: jax.Array, segments: jax.Array) -> jax.Array:
    """[batch, length + 1]: the number of weighted tokens of each segment id (0: padding) in each row."""
    empty = jnp.zeros(weights.shape[-1] + 1, jnp.float32)
    return jax.vmap(lambda s, w: empty.at[s].add(w))(segments, weights)


def token_scale(
    weights: jax.Array, *, segment_ids: jax.Array | None = None, normalization: str = "real_tokens"
) -> jax.Array:
    """The factor each token's loss is multiplied by before summing (the weight, per sequence: 1/count)."""
    weights = weights.astype(jnp.float32)
    if normalization != "per_sequence":
        return weights
    segments = _segments(weights, segment_ids)
    counts = jnp.take_along_axis(_segment_counts(weights, segments), segments, axis=-1)
    return weights / jnp.maximum(counts, 1.0)


def denominator(
    weights: jax.Array, *, segment_ids: jax.Array | None = None, normalization: str = "real_tokens"
) -> jax.Array:
    """What the summed, scaled token losses are divided by: real tokens, all positions or sequences."""
    weights = weights.astype(jnp.float32)
    if normalization == "real_tokens":
        total = weights.sum()
    elif normalization == "all_tokens":
        total = jnp.asarray(weights.size, jnp.float32)
    elif normalization == "per_sequence":
        counts = _segment_counts(weights, _segments(weights, segment_ids))
        total = (counts[:, 1:] > 0).sum().astype(jnp.float32)
    else:
        raise ValueError(f"unknown loss normalization {normalization!r}; choose one of {NORMALIZATIONS}")
    return jnp.maximum(total, 1.0)


def cross_entropy(
    logits: jax.Array,
    targets: jax.Array,
    weights: jax.Array,
    *,
    segment_ids: jax.Array | None = None,
    config: LossConfig = LossConfig(),
    normalizer: jax.Array | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The loss of the target tokens where `weights` is nonzero, and summed statistics for logging.

    Args:
      logits: [batch, length, vocab], any float dtype (computed in float32).
      targets: [batch, length] token ids.
      weights: [batch, length] loss weights: 1 on real target tokens (EOS included), 0 on padding.
      segment_ids: [batch, length] packed segment ids of the targets (for "per_sequence" normalization).
      config: label smoothing, z-loss and normalization.
      normalizer: the denominator to divide by; defaults to this batch's (pass the whole batch's when
        `logits` are one microbatch of it).

    Returns:
      The loss and summed statistics: `nll_sum` (plain cross-entropy, no smoothing or z-loss), `z_loss_sum`,
      `correct` and `tokens` (over the weighted tokens), and `loss_sum` (the scaled numerator of the loss).
    """
    logits = logits.astype(jnp.float32)
    weights = weights.astype(jnp.float32)
    # One max over the vocabulary serves both the stable logsumexp and the accuracy statistic (a token is
    # correct when its target logit is the largest), sparing a separate argmax pass over the logits.
    max_logits = jax.lax.stop_gradient(logits.max(axis=-1))
    log_z = max_logits + jnp.log(jnp.exp(logits - max_logits[..., None]).sum(axis=-1))
    target_logits = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    nll = log_z - target_logits
    token_loss = nll
    if config.label_smoothing:
        vocab = logits.shape[-1]
        confidence = 1.0 - config.label_smoothing
        low = config.label_smoothing / (vocab - 1)
        # -sum_v q_v log p_v with q = low everywhere but `confidence` at the target, minus the entropy of q.
        sum_log_probs = logits.sum(axis=-1) - vocab * log_z
        cross = confidence * nll - low * (sum_log_probs + nll)
        entropy = -(confidence * jnp.log(confidence) + (vocab - 1) * low * jnp.log(low + 1e-20))
        token_loss = cross - entropy
    z_loss = config.z_loss * jnp.square(log_z)
    token_loss = token_loss + z_loss
    scale = token_scale(weights, segment_ids=segment_ids, normalization=config.normalization)
    if normalizer is None:
        normalizer = denominator(weights, segment_ids=segment_ids, normalization=config.normalization)
    loss_sum = (token_loss * scale).sum()
    stats = {
        "loss_sum": loss_sum,
        "nll_sum": (nll * weights).sum(),
        "z_loss_sum": (z_loss * weights).sum(),
        "correct": ((target_logits >= max_logits) * weights).sum(),
        "tokens": weights.sum(),
    }
    return loss_sum / normalizer, stats
