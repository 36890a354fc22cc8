"""Layer stacks: unrolled (a list of layers) or scanned (one layer with stacked parameters), with remat.

Scanning compiles one layer body whatever the depth; its parameters carry a leading `layers` axis. Both
forms run through `apply_stack`, so a model's layer loop is written once, and both give the same results
for the same parameters (`stack_params` / `unstack_params` convert between the two layouts).
Remat policies trade memory for recomputation in the backward pass: "none" keeps every activation,
"minimal" keeps only the matmul outputs without batch dimensions (the projections), "full" recomputes
the whole layer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

REMAT_POLICIES: dict[str, Callable | None] = {
    "none": None,
    "minimal": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "full": jax.checkpoint_policies.nothing_saveable,
}

# fn(layer, carry, per_layer_inputs) -> (carry, per_layer_outputs)
LayerFn = Callable[[nnx.Module, Any, Any], tuple[Any, Any]]


def create_stack(make_layer: Callable[[nnx.Rngs], nnx.Module], num_layers: int, *, scan: bool, rngs: nnx.Rngs):
    """`num_layers` layers: an `nnx.List`, or (scan) one layer whose parameters have a leading `layers` axis."""
    if not scan:
        return nnx.List([make_layer(rngs) for _ in range(num_layers)])

    @nnx.split_rngs(splits=num_layers)
    @nnx.vmap(in_axes=0, out_axes=0, transform_metadata={nnx.PARTITION_NAME: "layers"})
    def create(layer_rngs: nnx.Rngs) -> nnx.Module:
        return make_layer(layer_rngs)

    return create(rngs)


def apply_stack(stack, carry: Any, fn: LayerFn, xs: Any = None, *, scan: bool, remat_policy: str = "none"):
    """Runs `fn` through the layers: `carry` threads through, `xs` leaves are sliced per layer (axis 0).

    Returns:
      (final carry, per-layer outputs stacked along a new leading axis).
    """
    if remat_policy not in REMAT_POLICIES:
        raise ValueError(f"unknown remat policy {remat_policy!r}; choose one of {sorted(REMAT_POLICIES)}")

    def bind(graphdef):
        def body(state, carry, x):
            return fn(nnx.merge(graphdef, state), carry, x)

        if remat_policy == "none":
            return body
        return jax.checkpoint(body, policy=REMAT_POLICIES[remat_policy], prevent_cse=not scan)

    if scan:
        graphdef, state = nnx.split(stack)
        body = bind(graphdef)
        return jax.lax.scan(lambda c, inputs: body(inputs[0], c, inputs[1]), carry, (state, xs))
    outputs = []
    for i, layer in enumerate(stack):
        graphdef, state = nnx.split(layer)
        carry, out = bind(graphdef)(state, carry, jax.tree.map(lambda a: a[i], xs))
        outputs.append(out)
    return carry, jax.tree.map(lambda *ys: jnp.stack(ys), *outputs)


def stack_params(layers: dict[int, Any]) -> Any:
    """Per-layer parameter dicts {0: tree, 1: tree, ...} -> one tree with a leading `layers` axis."""
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *(layers[i] for i in range(len(layers))))


def unstack_params(stacked: Any) -> dict[int, Any]:
    """Inverse of `stack_params`."""
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    return {i: jax.tree.map(lambda a: a[i], stacked) for i in range(num_layers)}
