"""Direct preference optimization (Rafailov et al. 2023) and its variants, over per-example summed log-probs.

With `h = (log pi(y_w) - log ref(y_w)) - (log pi(y_l) - log ref(y_l))` the policy's log-ratio margin of the
chosen response `y_w` over the rejected `y_l`:
- "sigmoid": `-(1 - eps) log sigmoid(beta h) - eps log sigmoid(-beta h)`; `eps = label_smoothing` gives the
  conservative DPO of Mitchell (2023), which assumes each label is flipped with probability eps (eps = 0 is DPO).
- "ipo": `(h - 1 / (2 beta))^2` (Azar et al. 2023), a squared loss that regresses the margin to a target
  instead of pushing it to infinity. TRL divides each log-ratio by its response length before IPO; pass
  length-averaged log-probs to get that form.
The implicit rewards are `beta (log pi(y) - log ref(y))` for each response.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

LOSS_TYPES = ("sigmoid", "ipo")


def dpo_loss(
    policy_chosen_logps: jax.Array,
    policy_rejected_logps: jax.Array,
    reference_chosen_logps: jax.Array,
    reference_rejected_logps: jax.Array,
    *,
    beta: float,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-example DPO losses and the chosen and rejected implicit rewards, each [batch] float32.

    Args:
      policy_chosen_logps, policy_rejected_logps: the policy's summed log-probs of each response [batch].
      reference_chosen_logps, reference_rejected_logps: the frozen reference's, same shape.
      beta: the KL-penalty strength (> 0); larger keeps the policy closer to the reference.
      loss_type: "sigmoid" (DPO, conservative with label smoothing) or "ipo".
      label_smoothing: the assumed probability of a flipped preference, in [0, 0.5); sigmoid only.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown DPO loss_type {loss_type!r}; choose one of {list(LOSS_TYPES)}")
    if not beta > 0:
        raise ValueError(f"DPO beta must be positive, got {beta}")
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must lie in [0, 0.5) (a flip probability), got {label_smoothing}")
    if loss_type == "ipo" and label_smoothing:
        raise ValueError(
            "label_smoothing applies to the sigmoid (conservative DPO) loss only: IPO regresses the margin to "
            "1/(2 beta) and has no label-noise term; set label_smoothing=0 or loss_type='sigmoid'"
        )
    f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731
    chosen_ratio = f32(policy_chosen_logps) - f32(reference_chosen_logps)
    rejected_ratio = f32(policy_rejected_logps) - f32(reference_rejected_logps)
    margin = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = -(1.0 - label_smoothing) * jax.nn.log_sigmoid(beta * margin) - label_smoothing * jax.nn.log_sigmoid(
            -beta * margin
        )
    else:
        losses = jnp.square(margin - 1.0 / (2.0 * beta))
    return losses, beta * chosen_ratio, beta * rejected_ratio


def sequence_logps(logits: jax.Array, targets: jax.Array, weights: jax.Array) -> jax.Array:
    """Summed log-probabilities [batch] of `targets` [batch, length] under `logits` [batch, length, vocab].

    Only positions with `weights > 0` count (each with weight 1, so padding and prompt tokens drop out);
    the log-softmax is taken in float32 whatever the logits' dtype.
    """
    if logits.ndim != 3 or logits.shape[:2] != targets.shape or targets.shape != weights.shape:
        raise ValueError(
            f"sequence_logps needs logits [batch, length, vocab] and targets, weights [batch, length]; got "
            f"{logits.shape}, {targets.shape}, {weights.shape}"
        )
    log_probs = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    token_logps = jnp.take_along_axis(log_probs, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return jnp.sum(jnp.where(weights > 0, token_logps, 0.0), axis=-1)
