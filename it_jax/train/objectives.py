"""Training objectives: what a step minimizes, given the model and a batch.

An objective names the batch features it reads, gives the whole batch's normalizer (so that a batch split
into microbatches, each divided by the whole batch's normalizer, sums to the unsplit batch's loss and
gradients), returns a microbatch's loss with SUMMED statistics (microbatches add), and turns summed statistics
into the logged values. `CrossEntropy` is next-token cross-entropy on the target tokens; `DPO` is direct
preference optimization over (chosen, rejected) pairs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
from flax import nnx

from it_jax.train import dpo, losses

Batch = Mapping[str, jax.Array]

# The features each architecture's model reads (besides the optional packing features).
_MODEL_INPUTS = {
    "encoder_decoder": ("encoder_input_tokens", "decoder_input_tokens"),
    "decoder_only": ("decoder_input_tokens",),
    "prefix_lm": ("decoder_input_tokens", "decoder_causal_attention"),
}
_TARGETS = ("decoder_target_tokens", "decoder_loss_weights")
REFERENCES = ("cached", "live")


@runtime_checkable
class Objective(Protocol):
    """A training objective (see the module docstring). `needs_reference` (optional attribute, default
    False): the trainer keeps a frozen copy of the initial parameters and passes it as `reference=`."""

    name: str

    def features(self, architecture: str) -> tuple[str, ...]: ...

    def denominator(self, batch: Batch) -> jax.Array: ...

    def __call__(
        self, model: nnx.Module, batch: Batch, *, rngs: nnx.Rngs | None, normalizer: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]: ...

    def metrics(self, totals: Mapping[str, float]) -> dict[str, float]: ...


def model_features(architecture: str) -> tuple[str, ...]:
    """The features a model of `architecture` reads and its targets ("encoder_decoder", "decoder_only",
    "prefix_lm"; see `it_jax.models.registry.architecture`)."""
    if architecture not in _MODEL_INPUTS:
        raise ValueError(f"unknown architecture {architecture!r}; choose one of {tuple(_MODEL_INPUTS)}")
    return _MODEL_INPUTS[architecture] + _TARGETS


def token_metrics(totals: Mapping[str, float]) -> dict[str, float]:
    """Cross-entropy's logged values: `loss` (mean token NLL), `accuracy` (per token), and `z_loss` when used."""
    tokens = max(totals["tokens"], 1.0)
    values = {"loss": totals["nll_sum"] / tokens, "accuracy": totals["correct"] / tokens}
    if totals.get("z_loss_sum"):
        values["z_loss"] = totals["z_loss_sum"] / tokens
    return values


@dataclasses.dataclass(frozen=True)
class CrossEntropy:
    """Next-token cross-entropy on `decoder_target_tokens` where `decoder_loss_weights` is nonzero, with the
    label smoothing, z-loss and normalization of `config` (see `losses.cross_entropy`)."""

    config: losses.LossConfig = losses.LossConfig()
    name: str = "cross_entropy"
    needs_reference = False

    def features(self, architecture: str) -> tuple[str, ...]:
        return model_features(architecture)

    def denominator(self, batch: Batch) -> jax.Array:
        return losses.denominator(
            batch["decoder_loss_weights"],
            segment_ids=batch.get("decoder_segment_ids"),
            normalization=self.config.normalization,
        )

    def __call__(
        self, model: nnx.Module, batch: Batch, *, rngs: nnx.Rngs | None, normalizer: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        logits = model.logits_from_features(batch, rngs=rngs)
        return losses.cross_entropy(
            logits,
            batch["decoder_target_tokens"],
            batch["decoder_loss_weights"],
            segment_ids=batch.get("decoder_segment_ids"),
            config=self.config,
            normalizer=normalizer,
        )

    def metrics(self, totals: Mapping[str, float]) -> dict[str, float]:
        return token_metrics(totals)


def side(batch: Batch, prefix: str) -> dict[str, jax.Array]:
    """The features of one side of a preference pair: `<prefix>_<feature>` as `<feature>`."""
    start = prefix + "_"
    return {name[len(start) :]: value for name, value in batch.items() if name.startswith(start)}


@dataclasses.dataclass(frozen=True)
class DPO:
    """Direct preference optimization (Rafailov et al. 2023) and its IPO and label-smoothed variants.

    Reads each side's model features with a prefix (`chosen_decoder_input_tokens`,
    `rejected_decoder_target_tokens`, ...; one unpacked pair per row, the response tokens weighted) and scores
    each side by its summed log-probability of the weighted tokens. The reference's scores are read from
    float32 features `reference_chosen_logps` / `reference_rejected_logps` ("cached"), or computed from the
    frozen reference parameters the trainer keeps ("live"). Rows whose chosen side has no weighted token are
    padding and count for nothing. The loss is the mean over the batch's pairs.
    """

    beta: float = 0.1
    loss_type: str = "sigmoid"
    label_smoothing: float = 0.0
    reference: str = "cached"
    name: str = "dpo"

    def __post_init__(self):
        if self.loss_type not in dpo.LOSS_TYPES:
            raise ValueError(f"DPO loss_type {self.loss_type!r} is unknown; choose one of {dpo.LOSS_TYPES}")
        if self.reference not in REFERENCES:
            raise ValueError(f"DPO reference {self.reference!r} is unknown; choose one of {REFERENCES}")
        if self.beta <= 0:
            raise ValueError(f"DPO beta must be positive, got {self.beta}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ValueError(f"DPO label_smoothing must be in [0, 0.5), got {self.label_smoothing}")

    @property
    def needs_reference(self) -> bool:
        return self.reference == "live"

    def features(self, architecture: str) -> tuple[str, ...]:
        names = tuple(f"{prefix}_{name}" for prefix in ("chosen", "rejected") for name in model_features(architecture))
        if self.reference == "cached":
            names += ("reference_chosen_logps", "reference_rejected_logps")
        return names

    def denominator(self, batch: Batch) -> jax.Array:
        return jnp.maximum(_real_pairs(batch).sum().astype(jnp.float32), 1.0)

    def __call__(
        self,
        model: nnx.Module,
        batch: Batch,
        *,
        rngs: nnx.Rngs | None,
        normalizer: jax.Array,
        reference: nnx.Module | None = None,
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        chosen, rejected = side(batch, "chosen"), side(batch, "rejected")
        policy = [sequence_logps(model, features, rngs=rngs) for features in (chosen, rejected)]
        if self.reference == "cached":
            ref = [batch["reference_chosen_logps"], batch["reference_rejected_logps"]]
        elif reference is None:
            raise ValueError("DPO(reference='live') needs the frozen reference model (`reference=`)")
        else:
            ref = [jax.lax.stop_gradient(sequence_logps(reference, f, rngs=None)) for f in (chosen, rejected)]
        ref = [r.astype(jnp.float32) for r in ref]
        per_pair, chosen_rewards, rejected_rewards = dpo.dpo_loss(
            *policy, *ref, beta=self.beta, loss_type=self.loss_type, label_smoothing=self.label_smoothing
        )
        real = _real_pairs(batch).astype(jnp.float32)
        loss_sum = (per_pair * real).sum()
        stats = {
            "pairs": real.sum(),
            "loss_sum": loss_sum,
            "reward_margin_sum": ((chosen_rewards - rejected_rewards) * real).sum(),
            "reward_correct": ((chosen_rewards > rejected_rewards) * real).sum(),
            "chosen_logps_sum": (policy[0] * real).sum(),
            "rejected_logps_sum": (policy[1] * real).sum(),
        }
        return loss_sum / normalizer, stats

    def metrics(self, totals: Mapping[str, float]) -> dict[str, float]:
        pairs = max(totals["pairs"], 1.0)
        return {
            "loss": totals["loss_sum"] / pairs,
            "reward_margin": totals["reward_margin_sum"] / pairs,
            "reward_accuracy": totals["reward_correct"] / pairs,
            "chosen_logps": totals["chosen_logps_sum"] / pairs,
            "rejected_logps": totals["rejected_logps_sum"] / pairs,
        }


def _real_pairs(batch: Batch) -> jax.Array:
    """[batch] booleans: the rows whose chosen response has a weighted token (the others are padding)."""
    return batch["chosen_decoder_loss_weights"].sum(axis=-1) > 0


def sequence_logps(model: nnx.Module, features: Batch, *, rngs: nnx.Rngs | None) -> jax.Array:
    """[batch] summed log-probabilities of each row's weighted target tokens under `model`."""
    logits = model.logits_from_features(features, rngs=rngs)
    return dpo.sequence_logps(logits, features["decoder_target_tokens"], features["decoder_loss_weights"])


def loss_and_stats(
    objective: Objective,
    model: nnx.Module,
    batch: Batch,
    *,
    rngs: nnx.Rngs | None,
    normalizer: jax.Array,
    reference: nnx.Module | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Calls `objective`, passing the frozen `reference` model only to an objective that needs one."""
    if getattr(objective, "needs_reference", False):
        return objective(model, batch, rngs=rngs, normalizer=normalizer, reference=reference)
    return objective(model, batch, rngs=rngs, normalizer=normalizer)
