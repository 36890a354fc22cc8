"""The train state (step, parameters, optimizer state, optional frozen reference) and its creation directly
into sharded arrays.

Parameters are held as a plain nested dict of arrays (see `it_jax.models.spec`), so that optax, Orbax and
checkpoint converters see ordinary pytrees. A `trainable` mask (see `trainable_mask`) limits the optimizer
state to the trainable parameters: the optimizer sees only that part of the tree (`partition`), so frozen
parameters carry no optimizer state at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import sharding as sharding_lib
from it_jax.models.spec import ModelSpec, Params
from it_jax.train import optimizers


@flax.struct.dataclass
class TrainState:
    """`reference`: a frozen copy of the initial parameters, for objectives that need one (else None, and
    checkpoints keep their old structure)."""

    step: jax.Array
    params: Params
    opt_state: optax.OptState
    reference: Params | None = None

    def as_dict(self) -> dict[str, Any]:
        tree = {"step": self.step, "params": self.params, "opt_state": self.opt_state}
        return tree if self.reference is None else {**tree, "reference": self.reference}


Mask = Any  # a nested dict like the parameters' with a bool per leaf (True: trainable), or None: all


def _predicate(trainable: Any) -> Callable[[tuple[Any, ...], Any], bool]:
    """An nnx filter as a predicate on (path, variable); a string is a regex searched in the "/"-joined path."""
    if isinstance(trainable, str):
        pattern = re.compile(trainable)
        return lambda path, _: pattern.search("/".join(str(k) for k in path)) is not None
    if isinstance(trainable, type) or not callable(trainable):
        return nnx.filterlib.to_predicate(trainable)
    return trainable


def trainable_mask(abstract_state: nnx.State, trainable: Any) -> Mask:
    """Which parameters `trainable` selects, as a nested dict of bools shaped like the parameters' dict.

    `trainable`: None (every parameter: returns None), a Variable type (e.g. `nnx.LoRAParam`), a regex
    searched in the "/"-joined parameter path, a callable on (path, variable), or any other nnx filter.
    Raises ValueError if it selects no parameter.
    """
    if trainable is None:
        return None
    predicate = _predicate(trainable)
    mask: dict[Any, Any] = {}
    for path, variable in abstract_state.flat_state():
        node = mask
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = bool(predicate(path, variable))
    if not any(jax.tree.leaves(mask)):
        raise ValueError(f"the trainable filter {trainable!r} selects no parameter of the model")
    return mask


def _empty(tree: Any) -> bool:
    return tree is None or (isinstance(tree, dict) and not tree)


def partition(tree: Params, mask: Mask) -> tuple[Params, Params]:
    """(trainable, frozen): `tree` split by `mask`, each keeping only its leaves (empty dicts dropped)."""
    if mask is None:
        return tree, {}
    if isinstance(mask, bool):
        return (tree, None) if mask else (None, tree)
    trainable, frozen = {}, {}
    for key, subtree in tree.items():
        a, b = partition(subtree, mask[key])
        if not _empty(a):
            trainable[key] = a
        if not _empty(b):
            frozen[key] = b
    return trainable, frozen


def merge(trainable: Params, frozen: Params) -> Params:
    """The inverse of `partition`: one tree with the leaves of both."""
    if isinstance(trainable, dict) and isinstance(frozen, dict):
        return {**frozen, **{k: merge(v, frozen[k]) if k in frozen else v for k, v in trainable.items()}}
    return trainable


def _factored_dims(shape: tuple[int, ...]) -> tuple[int, int]:
    """The dims Adafactor factors over, as `optax.adafactor` picks them: (second largest, largest)."""
    order = np.argsort(shape)
    return int(order[-2]), int(order[-1])


# Adafactor's row statistics average over the largest dim, its column statistics over the second largest.
_FACTORED_STATS = {"v_row": 1, "v_col": 0}


def _reduced_sharding(
    path: tuple[Any, ...],
    leaf_shape: tuple[int, ...],
    param_shape: tuple[int, ...],
    param_sharding: NamedSharding,
    *,
    stacked: bool,
) -> NamedSharding | None:
    """The sharding of a statistic that is its parameter reduced over one dim: the param's, less that dim.

    `stacked`: the parameter is a scanned stack, which Adafactor factors layer by layer (dims after the first).
    """
    candidates = [k for k in range(len(param_shape)) if param_shape[:k] + param_shape[k + 1 :] == leaf_shape]
    if not candidates:
        return None
    spec = tuple(param_sharding.spec) + (None,) * (len(param_shape) - len(param_sharding.spec))
    names = {getattr(key, "name", None) for key in path}
    hinted = []
    offset = int(stacked)
    if len(param_shape) - offset >= 2:
        factored = _factored_dims(param_shape[offset:])
        hinted = [factored[i] + offset for name, i in _FACTORED_STATS.items() if name in names]
    if hinted and hinted[0] in candidates:
        candidates = hinted
    specs = {_move_axes(spec, k, leaf_shape, param_sharding.mesh) for k in candidates}
    if len(specs) > 1:
        return None
    return NamedSharding(param_sharding.mesh, PartitionSpec(*specs.pop()))


def _move_axes(spec: tuple[Any, ...], removed: int, shape: tuple[int, ...], mesh: Mesh) -> tuple[Any, ...]:
    """`spec` less dim `removed`, whose mesh axes move onto the largest remaining dim they divide.

    Reducing a kernel over its FSDP-sharded `embed` dim would otherwise leave the statistic replicated on
    every device; keeping the mesh axes keeps FSDP's memory at 1/n for the optimizer state too.
    """
    moved = sharding_lib.axes_of(spec[removed])
    rest = list(spec[:removed] + spec[removed + 1 :])
    if not moved:
        return tuple(rest)
    for k in sorted(range(len(shape)), key=lambda k: (shape[k], k), reverse=True):
        axes = sharding_lib.axes_of(rest[k]) + moved
        if shape[k] % int(np.prod([mesh.shape[a] for a in axes])) == 0:
            rest[k] = sharding_lib.spec_entry(axes)
            break
    return tuple(rest)


def _opt_state_shardings(opt_state_shape: Any, params_shape: Params, param_shardings: Params, mesh: Mesh) -> Any:
    """Shardings of the optimizer state, derived from the parameters' shardings.

    Optax states mirror the parameter tree: a leaf shaped like its parameter (Adam's moments, unfactored
    Adafactor statistics) shares its sharding, as in FSDP; a leaf shaped like the parameter with one dim
    reduced (Adafactor's factored row and column statistics) keeps the sharding of the remaining dims, and
    the reduced dim's mesh axes move onto one of them (see `_move_axes`).
    Everything else (step counts, placeholders of unfactored parameters) is replicated.
    """
    flat_params = jax.tree_util.tree_flatten_with_path(params_shape)[0]
    by_path = {
        tuple(str(k) for k in path): (leaf.shape, s, optimizers.in_scanned_stack(path))
        for (path, leaf), s in zip(flat_params, jax.tree.leaves(param_shardings))
    }
    replicated = NamedSharding(mesh, PartitionSpec())

    def choose(path, leaf):
        keys = tuple(str(k) for k in path)
        for start in range(len(keys)):
            if keys[start:] not in by_path:
                continue
            param_shape, param_sharding, stacked = by_path[keys[start:]]
            if leaf.shape == param_shape:
                return param_sharding
            if len(leaf.shape) == len(param_shape) - 1:
                reduced = _reduced_sharding(path[:start], leaf.shape, param_shape, param_sharding, stacked=stacked)
                return reduced or replicated
            return replicated
        return replicated

    return jax.tree_util.tree_map_with_path(choose, opt_state_shape)


def _state_shapes(
    spec: ModelSpec, optimizer: optax.GradientTransformation, mask: Mask = None, reference: bool = False
) -> TrainState:
    """`jax.ShapeDtypeStruct`s of the train state, from the abstract parameters (nothing is traced twice)."""
    params = spec.abstract_state.to_pure_dict()
    return TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32),
        params=params,
        opt_state=jax.eval_shape(optimizer.init, partition(params, mask)[0]),
        reference=params if reference else None,
    )


def with_shardings(shapes: Any, shardings: Any) -> Any:
    """Attaches each sharding to its shape: the abstract arrays Orbax restores onto."""
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def state_shardings(
    spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh, mask: Mask = None, reference: bool = False
) -> TrainState:
    """NamedShardings of every leaf of the train state, from the parameters' logical axes (a reference's are
    its parameters')."""
    shapes = _state_shapes(spec, optimizer, mask, reference)
    param_shardings = spec.param_shardings(mesh)
    return TrainState(
        step=NamedSharding(mesh, PartitionSpec()),
        params=param_shardings,
        opt_state=_opt_state_shardings(shapes.opt_state, shapes.params, param_shardings, mesh),
        reference=param_shardings if reference else None,
    )


def abstract_state(
    spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh, mask: Mask = None, reference: bool = False
) -> TrainState:
    """`jax.ShapeDtypeStruct`s of the train state, with shardings (the restore target for Orbax)."""
    return with_shardings(
        _state_shapes(spec, optimizer, mask, reference), state_shardings(spec, optimizer, mesh, mask, reference)
    )


def initial_state(
    params: Params, optimizer: optax.GradientTransformation, mask: Mask = None, reference: bool = False
) -> TrainState:
    """The state at step 0 for `params`: fresh optimizer state for the trainable ones, and with `reference`
    a copy of `params` as the frozen reference."""
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=optimizer.init(partition(params, mask)[0]),
        reference=jax.tree.map(jnp.copy, params) if reference else None,
    )


# The init program runs once: on CPU, where LLVM's optimization of its random-number code dominates the
# compile time (several times the unoptimized build's), it is compiled unoptimized.
_CPU_INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}


def state_initializer(
    spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh, mask: Mask = None, reference: bool = False
) -> Callable[[int], TrainState]:
    """`seed -> train state`, compiled once: each array is created inside `jit` directly with its sharding."""
    init = jax.jit(
        lambda seed: initial_state(spec.init_params(jax.random.key(seed)), optimizer, mask, reference),
        out_shardings=state_shardings(spec, optimizer, mesh, mask, reference),
    )
    on_cpu = mesh.devices.flat[0].platform == "cpu"
    compiled = []

    def create(seed: int) -> TrainState:
        seed = jnp.asarray(seed, jnp.int32)
        with jax.set_mesh(mesh):
            if not compiled:
                compiled.append(init.lower(seed).compile(_CPU_INIT_COMPILER_OPTIONS if on_cpu else None))
            return compiled[0](seed)

    return create


def bytes_per_device(tree: Any) -> dict[jax.Device, int]:
    """Bytes of `tree`'s arrays held on each local device: the sum of the shards placed there.

    A replicated array counts in full on every device, an FSDP-sharded one by its slice.
    """
    held: dict[jax.Device, int] = {}
    for leaf in jax.tree.leaves(tree):
        for shard in leaf.addressable_shards:
            held[shard.device] = held.get(shard.device, 0) + shard.data.nbytes
    return held
