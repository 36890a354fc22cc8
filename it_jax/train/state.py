"""The train state (step, parameters, optimizer state) and its creation directly into sharded arrays.

Parameters are held as a plain nested dict of arrays (`nnx.State.to_pure_dict`), so that optax, Orbax and
checkpoint converters see ordinary pytrees; `ModelSpec.bind` turns them back into an NNX module inside
jitted functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import sharding as sharding_lib

Params = dict[str, Any]


@flax.struct.dataclass
class TrainState:
    step: jax.Array
    params: Params
    opt_state: optax.OptState

    def as_dict(self) -> dict[str, Any]:
        return {"step": self.step, "params": self.params, "opt_state": self.opt_state}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """How to build a model, and the abstract structure of its parameters (no memory allocated)."""

    build: Callable[[nnx.Rngs], nnx.Module]
    graphdef: Any
    abstract_state: nnx.State

    @classmethod
    def create(cls, build: Callable[[nnx.Rngs], nnx.Module]) -> ModelSpec:
        with nnx.use_eager_sharding(False):
            abstract = nnx.eval_shape(lambda: build(nnx.Rngs(0)))
        graphdef, abstract_state = nnx.split(abstract)
        return cls(build=build, graphdef=graphdef, abstract_state=abstract_state)

    def bind(self, params: Params) -> nnx.Module:
        """The module with `params` (a pure dict) as its parameters; usable inside jit."""
        state = nnx.State(self.abstract_state)
        nnx.replace_by_pure_dict(state, params)
        return nnx.merge(self.graphdef, state)

    def init_params(self, seed: int) -> Params:
        with nnx.use_eager_sharding(False):
            model = self.build(nnx.Rngs(seed))
        return nnx.split(model)[1].to_pure_dict()

    def param_shardings(self, mesh: Mesh) -> Params:
        return sharding_lib.state_shardings(self.abstract_state, mesh).to_pure_dict()

    def num_params(self) -> int:
        return sum(x.size for x in jax.tree.leaves(self.abstract_state.to_pure_dict()))


def _opt_state_shardings(opt_state_shape: Any, params_shape: Params, param_shardings: Params, mesh: Mesh) -> Any:
    """Optimizer-state leaves shaped like a parameter share its sharding (as in FSDP); others replicate.

    Optax states mirror the parameter tree (Adam's moments) or hold factored/scalar leaves (Adafactor's
    row/column statistics, step counts); the latter are small and replicated.
    """
    by_shape_path = {
        tuple(str(k) for k in path): (leaf.shape, s)
        for (path, leaf), s in zip(jax.tree_util.tree_flatten_with_path(params_shape)[0], jax.tree.leaves(param_shardings))
    }
    replicated = NamedSharding(mesh, PartitionSpec())

    def choose(path, leaf):
        keys = tuple(str(k) for k in path)
        for start in range(len(keys)):
            match = by_shape_path.get(keys[start:])
            if match and match[0] == leaf.shape:
                return match[1]
        return replicated

    return jax.tree_util.tree_map_with_path(choose, opt_state_shape)


def _state_shapes(spec: ModelSpec, optimizer: optax.GradientTransformation) -> TrainState:
    """`jax.ShapeDtypeStruct`s of the train state, from the abstract parameters (nothing is traced twice)."""
    params = spec.abstract_state.to_pure_dict()
    return TrainState(
        step=jax.ShapeDtypeStruct((), jnp.int32), params=params, opt_state=jax.eval_shape(optimizer.init, params)
    )


def with_shardings(shapes: Any, shardings: Any) -> Any:
    """Attaches each sharding to its shape: the abstract arrays Orbax restores onto."""
    return jax.tree.map(lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), shapes, shardings)


def state_shardings(spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    """NamedShardings of every leaf of the train state, from the parameters' logical axes."""
    shapes = _state_shapes(spec, optimizer)
    param_shardings = spec.param_shardings(mesh)
    return TrainState(
        step=NamedSharding(mesh, PartitionSpec()),
        params=param_shardings,
        opt_state=_opt_state_shardings(shapes.opt_state, shapes.params, param_shardings, mesh),
    )


def abstract_state(spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh) -> TrainState:
    """`jax.ShapeDtypeStruct`s of the train state, with shardings (the restore target for Orbax)."""
    return with_shardings(_state_shapes(spec, optimizer), state_shardings(spec, optimizer, mesh))


def _init(spec: ModelSpec, optimizer: optax.GradientTransformation, seed: int) -> TrainState:
    params = spec.init_params(seed)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))


def create_state(spec: ModelSpec, optimizer: optax.GradientTransformation, mesh: Mesh, *, seed: int) -> TrainState:
    """Initializes the train state inside `jit`, each array created directly with its sharding."""
    shardings = state_shardings(spec, optimizer, mesh)
    with jax.set_mesh(mesh):
        return jax.jit(lambda: _init(spec, optimizer, seed), out_shardings=shardings)()
