"""Device meshes and the logical-axis rules table: the one place where sharding is decided.

Parameters and activations are annotated with *logical* axis names (``embed``, ``mlp``, ``heads`` ...).
A rules table maps each logical name onto zero or more *mesh* axes (``data``, ``fsdp``, ``tensor``).
Changing the parallelism strategy means changing this table or the mesh shape, never the model code.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp", "tensor")

AxisRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

# Logical axis -> mesh axes. Parameters use the short names; activations use the `activation_*` names so
# that, e.g., `embed` can be FSDP-sharded in the weights while staying replicated in the activations.
DEFAULT_RULES: AxisRules = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("relpos_buckets", None),
    ("layers", None),
    ("activation_batch", ("data", "fsdp")),
    ("activation_length", None),
    ("activation_embed", None),
    ("activation_mlp", "tensor"),
    ("activation_heads", "tensor"),
    ("activation_kv", None),
    ("activation_vocab", "tensor"),
)

_ACTIVE_RULES: list[AxisRules] = [DEFAULT_RULES]


@contextlib.contextmanager
def axis_rules(rules: AxisRules) -> Iterator[AxisRules]:
    """Makes `rules` the table used by `logical_to_spec` and `constrain` inside the block."""
    _ACTIVE_RULES.append(tuple(rules))
    try:
        yield _ACTIVE_RULES[-1]
    finally:
        _ACTIVE_RULES.pop()


def current_rules() -> AxisRules:
    return _ACTIVE_RULES[-1]


def logical_to_spec(logical_axes: Sequence[str | None], rules: AxisRules | None = None) -> PartitionSpec:
    """Maps logical axis names to a `PartitionSpec` using the first matching rule for each name.

    A mesh axis is used at most once per spec: a later dimension that maps onto an already used mesh
    axis is left replicated (as T5X does), so `('embed', 'embed')` cannot shard one axis twice.
    """
    rules = current_rules() if rules is None else rules
    table: dict[str, tuple[str, ...]] = {}
    for name, mesh_axes in rules:
        if name in table:
            continue
        if mesh_axes is None:
            table[name] = ()
        elif isinstance(mesh_axes, str):
            table[name] = (mesh_axes,)
        else:
            table[name] = tuple(mesh_axes)
    used: set[str] = set()
    spec = []
    for axis in logical_axes:
        if axis is None:
            spec.append(None)
            continue
        if axis not in table:
            raise KeyError(f"logical axis {axis!r} has no rule; known axes: {sorted(table)}")
        mesh_axes = tuple(a for a in table[axis] if a not in used)
        used.update(mesh_axes)
        spec.append(mesh_axes[0] if len(mesh_axes) == 1 else (mesh_axes or None))
    return PartitionSpec(*spec)


def create_mesh(*, data: int = 1, fsdp: int = 1, tensor: int = 1, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """Builds a (data, fsdp, tensor) mesh. One of the sizes may be -1, meaning "all remaining devices"."""
    devices = list(jax.devices() if devices is None else devices)
    shape = [data, fsdp, tensor]
    if shape.count(-1) > 1:
        raise ValueError(f"at most one mesh axis may be -1, got data={data} fsdp={fsdp} tensor={tensor}")
    if -1 in shape:
        known = math.prod(s for s in shape if s != -1)
        if len(devices) % known:
            raise ValueError(f"{len(devices)} devices cannot be split into mesh {dict(zip(MESH_AXES, shape))}")
        shape[shape.index(-1)] = len(devices) // known
    if math.prod(shape) != len(devices):
        raise ValueError(
            f"mesh {dict(zip(MESH_AXES, shape))} needs {math.prod(shape)} devices but {len(devices)} are "
            "available; set the mesh sizes (e.g. --gin_bindings='create_mesh.data=-1') to match"
        )
    return Mesh(np.asarray(devices).reshape(shape), MESH_AXES)


def constrain(x: jax.Array, logical_axes: Sequence[str | None]) -> jax.Array:
    """Sharding constraint on an activation, a no-op when no mesh is set (e.g. plain eager use)."""
    mesh = jax.sharding.get_abstract_mesh()
    if mesh.empty:
        return x
    return jax.lax.with_sharding_constraint(x, logical_to_spec(logical_axes))


def variable_axes(variable: nnx.Variable) -> tuple[str | None, ...] | None:
    """The logical axis names a parameter was annotated with (`nnx.with_partitioning`), if any."""
    return variable.get_metadata().get("out_sharding")


def state_shardings(state: nnx.State, mesh: Mesh, rules: AxisRules | None = None) -> nnx.State:
    """NamedShardings for every variable of `state` from its logical axes; unannotated ones replicate."""

    def to_sharding(variable):
        axes = variable_axes(variable) if isinstance(variable, nnx.Variable) else None
        spec = PartitionSpec() if not axes else logical_to_spec(axes, rules)
        return NamedSharding(mesh, spec)

    return jax.tree.map(to_sharding, state, is_leaf=lambda x: isinstance(x, nnx.Variable))


def data_sharding(mesh: Mesh, ndim: int = 2, rules: AxisRules | None = None) -> NamedSharding:
    """Sharding of an input batch: the leading axis over the batch axes, the rest replicated."""
    return NamedSharding(mesh, logical_to_spec(("activation_batch",) + (None,) * (ndim - 1), rules))
