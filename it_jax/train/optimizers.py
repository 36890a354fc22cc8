"""Optax optimizers and learning-rate schedules, built from plain keyword arguments (gin binds them)."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import optax


def _rsqrt(base_learning_rate: float, warmup_steps: int, steps_after_warmup: jnp.ndarray) -> jnp.ndarray:
    step = jnp.maximum(steps_after_warmup, 0) + warmup_steps
    return base_learning_rate * jnp.sqrt(warmup_steps / step)


def make_schedule(
    *,
    base_learning_rate: float = 1e-3,
    warmup_steps: int = 100,
    decay: str = "cosine",
    total_steps: int = 1000,
    final_fraction: float = 0.1,
) -> optax.Schedule:
    """Linear warmup from 0 to `base_learning_rate`, then a decay.

    Args:
      decay: "constant"; "linear" or "cosine" down to `final_fraction * base_learning_rate` at
        `total_steps`; or "rsqrt" (T5's inverse square root: `base * sqrt(warmup_steps / step)`).
    """
    warmup = optax.linear_schedule(0.0, base_learning_rate, max(warmup_steps, 1))
    decay_steps = max(total_steps - warmup_steps, 1)
    final = base_learning_rate * final_fraction
    if decay == "constant":
        after = optax.constant_schedule(base_learning_rate)
    elif decay == "linear":
        after = optax.linear_schedule(base_learning_rate, final, decay_steps)
    elif decay == "cosine":
        after = optax.cosine_decay_schedule(base_learning_rate, decay_steps, alpha=final_fraction)
    elif decay == "rsqrt":
        after = functools.partial(_rsqrt, base_learning_rate, max(warmup_steps, 1))
    else:
        raise ValueError(f"unknown decay {decay!r}; choose constant, linear, cosine or rsqrt")
    return optax.join_schedules([warmup, after], [warmup_steps])


def in_scanned_stack(path: tuple[Any, ...]) -> bool:
    """Whether a parameter path lies in a scanned layer stack, whose leaves carry a leading `layers` axis.

    Stacks are named `layers`: unrolled, their children are layer indices (`layers/0/mlp/...`); scanned,
    they are the layer's own submodules (`layers/mlp/...`).
    """
    keys = [getattr(key, "key", getattr(key, "idx", key)) for key in path]
    return any(key == "layers" and isinstance(child, str) for key, child in zip(keys, keys[1:]))


def per_layer(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` applied to each layer's slice of leaves with a leading `layers` axis (vmapped over it)."""
    return optax.GradientTransformation(jax.vmap(inner.init), jax.vmap(inner.update))


def layerwise(inner: optax.GradientTransformation) -> optax.GradientTransformation:
    """`inner` on scanned stacks one layer at a time, so they are optimized exactly as unrolled layers.

    Adafactor's update clipping and parameter scale are RMS statistics over a whole tensor, and its
    factored dims are a tensor's two largest: over a `[layers, ...]` stack they would mix the layers.
    Stacks are grouped by depth (an encoder and a decoder may differ), each group vmapped over its layers.
    """

    def labels(tree):
        def label(path, leaf):
            return f"stack_of_{leaf.shape[0]}" if in_scanned_stack(path) else "unstacked"

        return jax.tree_util.tree_map_with_path(label, tree)

    def for_tree(tree) -> optax.GradientTransformation:
        groups = set(jax.tree.leaves(labels(tree)))
        return optax.multi_transform({g: inner if g == "unstacked" else per_layer(inner) for g in groups}, labels)

    def init(params):
        return for_tree(params).init(params)

    def update(updates, state, params=None):
        return for_tree(updates).update(updates, state, params)

    return optax.GradientTransformation(init, update)


def make_optimizer(
    schedule: optax.Schedule,
    *,
    name: str = "adamw",
    weight_decay: float = 0.0,
    b1: float = 0.9,
    b2: float = 0.999,
    clip_norm: float | None = 1.0,
    adafactor_options: Mapping[str, Any] | None = None,
) -> optax.GradientTransformation:
    """AdamW or Adafactor (factored second moments, T5's optimizer, applied per layer to scanned stacks),
    with optional global-norm clipping.

    Args:
      schedule: the learning rate per step.
      name: "adamw" or "adafactor".
      weight_decay: decoupled weight decay (AdamW's `weight_decay`, Adafactor's `weight_decay_rate`).
      b1, b2: Adam's moment decay rates.
      clip_norm: the global gradient norm is clipped to this before the update (None: no clipping).
      adafactor_options: further keyword arguments of `optax.adafactor`, e.g. `decay_rate` (0.8),
        `min_dim_size_to_factor` (128: a parameter's second moments are factored into row and column
        statistics over its two largest dimensions when both are at least this), `multiply_by_parameter_scale`
        (True), `clipping_threshold` (1.0), `momentum` (None).
    """
    if name == "adamw":
        optimizer = optax.adamw(schedule, b1=b1, b2=b2, weight_decay=weight_decay)
    elif name == "adafactor":
        optimizer = layerwise(
            optax.adafactor(schedule, weight_decay_rate=weight_decay or None, **dict(adafactor_options or {}))
        )
    else:
        raise ValueError(f"unknown optimizer {name!r}; choose adamw or adafactor")
    if clip_norm:
        optimizer = optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)
    return optimizer
