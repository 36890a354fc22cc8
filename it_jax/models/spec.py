"""`ModelSpec`: how to build a model, and the abstract structure of its parameters.

Parameters travel as a plain nested dict of arrays (`nnx.State.to_pure_dict`), so that optax, Orbax and
the checkpoint converters see ordinary pytrees; `ModelSpec.bind` turns them back into an NNX module inside
jitted functions.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
from flax import nnx
from jax.sharding import Mesh

from it_jax import sharding as sharding_lib

Params = dict[str, Any]


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

    def init_params(self, seed: int | jax.Array) -> Params:
        """Fresh parameters from an int seed or a PRNG key (traceable, e.g. inside `jit`)."""
        with nnx.use_eager_sharding(False):
            model = self.build(nnx.Rngs(seed))
        return nnx.split(model)[1].to_pure_dict()

    def param_shardings(self, mesh: Mesh) -> Params:
        return sharding_lib.state_shardings(self.abstract_state, mesh).to_pure_dict()

    def num_params(self) -> int:
        return sum(x.size for x in jax.tree.leaves(self.abstract_state.to_pure_dict()))
