"""Device meshes and the logical-axis rules table: the one place where sharding is decided.

Parameters and activations are annotated with *logical* axis names (``embed``, ``mlp``, ``heads`` ...).
A rules table maps each logical name onto zero or more *mesh* axes (``replica``, ``data``, ``fsdp``,
``tensor``). Changing the parallelism strategy means changing this table or the mesh shape, never the
model code.

The mesh has four axes. ``replica`` spans slices (or hosts) connected by the slow data-centre network
(DCN): only data parallelism crosses it, so gradients are all-reduced over it once per step. ``data``,
``fsdp`` and ``tensor`` lie within a slice (fast ICI): ``fsdp`` shards parameters and optimizer state
and ``tensor`` shards the heads, MLP and vocabulary dimensions. The batch is split over
(replica, data, fsdp).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import jax
import numpy as np
from flax import nnx
from jax.experimental import mesh_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import errors

MESH_AXES = ("replica", "data", "fsdp", "tensor")
BATCH_AXES = ("replica", "data", "fsdp")

AxisRules = tuple[tuple[str, str | tuple[str, ...] | None], ...]

# Logical axis -> mesh axes. Parameters use the short names; activations use the `activation_*` names so
# that, e.g., `embed` can be FSDP-sharded in the weights while staying replicated in the activations.
# `layers` is the leading axis of scanned layer stacks (one slice per layer, never split across devices).
DEFAULT_RULES: AxisRules = (
    ("batch", BATCH_AXES),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("vocab", "tensor"),
    ("length", None),
    ("relpos_buckets", None),
    ("layers", None),
    ("activation_batch", BATCH_AXES),
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


def axes_of(entry: str | Sequence[str] | None) -> tuple[str, ...]:
    """The mesh axes of a rule's or a `PartitionSpec`'s entry (None, one name, or several) as a tuple."""
    return () if entry is None else (entry,) if isinstance(entry, str) else tuple(entry)


def spec_entry(mesh_axes: tuple[str, ...]) -> str | tuple[str, ...] | None:
    """The `PartitionSpec` entry for a dimension sharded over `mesh_axes` (inverse of `axes_of`)."""
    return mesh_axes[0] if len(mesh_axes) == 1 else (mesh_axes or None)


def logical_to_spec(logical_axes: Sequence[str | None], rules: AxisRules | None = None) -> PartitionSpec:
    """Maps logical axis names to a `PartitionSpec` using the first matching rule for each name.

    A mesh axis is used at most once per spec: a later dimension that maps onto an already used mesh
    axis is left replicated (as T5X does), so `('embed', 'embed')` cannot shard one axis twice.
    """
    rules = current_rules() if rules is None else rules
    table: dict[str, tuple[str, ...]] = {}
    for name, mesh_axes in rules:
        table.setdefault(name, axes_of(mesh_axes))
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
        spec.append(spec_entry(mesh_axes))
    return PartitionSpec(*spec)


def with_overrides(overrides: AxisRules, rules: AxisRules = DEFAULT_RULES) -> AxisRules:
    """`rules` with the entries of `overrides` taking precedence (the first matching rule wins)."""
    return tuple((name, tuple(axes) if isinstance(axes, list) else axes) for name, axes in overrides) + tuple(rules)


def _resolve_shape(sizes: dict[str, int], num_devices: int) -> dict[str, int]:
    if list(sizes.values()).count(-1) > 1:
        raise errors.ConfigError(f"at most one mesh axis may be -1, got {sizes}")
    known = math.prod(s for s in sizes.values() if s != -1)
    if -1 in sizes.values():
        if num_devices % known:
            raise errors.ConfigError(f"{num_devices} devices cannot be split into mesh {sizes}")
        sizes = {name: num_devices // known if s == -1 else s for name, s in sizes.items()}
    if math.prod(sizes.values()) != num_devices:
        raise errors.ConfigError(
            f"mesh {sizes} needs {math.prod(sizes.values())} devices but {num_devices} are "
            "available; set the mesh sizes (e.g. --gin_bindings='create_mesh.data=-1') to match"
        )
    return sizes


def _device_grid(shape: Sequence[int], devices: Sequence[jax.Device], *, all_devices: bool) -> np.ndarray:
    """Devices arranged as `shape`; the leading (replica) axis runs across slices or hosts when it can.

    With several slices (devices carrying `slice_index`) or, failing that, several processes matching the
    replica count, the replica axis is laid over them (DCN) and the rest within each (ICI). Otherwise
    the layout is topology-aware for all devices of the platform, and a plain reshape for a given subset.
    """
    replica, ici = shape[0], (1, *shape[1:])
    dcn = (replica, 1, 1, 1)
    if replica > 1:
        slices = {getattr(d, "slice_index", 0) for d in devices}
        if len(slices) == replica:
            return mesh_utils.create_hybrid_device_mesh(ici, dcn, devices, allow_split_physical_axes=True)
        if len(slices) == 1 and len({d.process_index for d in devices}) == replica:
            return mesh_utils.create_hybrid_device_mesh(
                ici, dcn, devices, process_is_granule=True, allow_split_physical_axes=True
            )
    if all_devices:
        return mesh_utils.create_device_mesh(shape, devices, allow_split_physical_axes=True)
    return np.asarray(devices).reshape(shape)


def create_mesh(
    *,
    replica: int = 1,
    data: int = 1,
    fsdp: int = 1,
    tensor: int = 1,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """Builds a (replica, data, fsdp, tensor) mesh. One of the sizes may be -1: "all remaining devices".

    Args:
      replica: data-parallel replicas across slices (multi-slice TPU) or hosts (the DCN axis).
      data, fsdp, tensor: the axes within a slice (see the module docstring).
      devices: the devices to use (default: all of them, in a topology-aware order).
    """
    all_devices = devices is None
    devices = list(jax.devices() if devices is None else devices)
    sizes = _resolve_shape(dict(zip(MESH_AXES, (replica, data, fsdp, tensor))), len(devices))
    return Mesh(_device_grid(tuple(sizes.values()), devices, all_devices=all_devices), MESH_AXES)


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
