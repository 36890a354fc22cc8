"""Integrity fingerprints of a train state: exact, mesh-independent checksums of every array.

Orbax restores a damaged array file without complaint when the damage stays inside the data, so each save
records per array wrap-around sums of its bits (plain and position-weighted) and a restore recomputes them
on the restored arrays. Integer sums modulo 2**32 do not depend on the reduction order, so the values are
the same on any mesh, sharding or number of hosts.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from it_jax.convert import tree as tree_lib

_UINT_OF_WIDTH = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32}


def _leaf_fingerprint(x: jax.Array) -> jax.Array:
    """uint32 [sum of the bits, sum of bits x (1-based flat position), number of non-finite values] of `x`.

    Integer sums wrap around (mod 2**32), so the result is exact whatever order the reduction runs in: the
    same on any mesh and sharding. The position is built from iotas, so no sharded array is reshaped.
    """
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        x = jax.random.key_data(x)
    if x.dtype == jnp.bool_:
        bits = x.astype(jnp.uint32)
    elif x.dtype.itemsize == 8:
        bits = jax.lax.bitcast_convert_type(x, jnp.uint32)  # a trailing dim of two 32-bit words
    else:
        bits = jax.lax.bitcast_convert_type(x, _UINT_OF_WIDTH[x.dtype.itemsize]).astype(jnp.uint32)
    position = jnp.ones((), jnp.uint32)
    stride = 1
    for dim in reversed(range(bits.ndim)):
        position = position + jax.lax.broadcasted_iota(jnp.uint32, bits.shape, dim) * jnp.uint32(stride % 2**32)
        stride *= bits.shape[dim]
    nonfinite = jnp.uint32(0)
    if jnp.issubdtype(x.dtype, jnp.inexact):
        nonfinite = jnp.sum(~jnp.isfinite(x), dtype=jnp.uint32)
    return jnp.stack([jnp.sum(bits, dtype=jnp.uint32), jnp.sum(bits * position, dtype=jnp.uint32), nonfinite])


@functools.lru_cache(maxsize=8)
def _fingerprint_fn(out_sharding: NamedSharding | None):
    return jax.jit(lambda leaves: jnp.stack([_leaf_fingerprint(x) for x in leaves]), out_shardings=out_sharding)


def fingerprints(tree: Any) -> dict[str, tuple[int, int, int]]:
    """Per leaf of `tree`, by `tree.key_path_name`: (bit sum, position-weighted bit sum, non-finite count).

    One jitted pass over the arrays on their devices; the small result is replicated, so every process gets
    the same values, and they do not depend on the mesh the arrays are sharded over.
    """
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    if not flat:
        return {}
    leaves = [jnp.asarray(leaf) if not isinstance(leaf, jax.Array) else leaf for _, leaf in flat]
    meshes = [leaf.sharding.mesh for leaf in leaves if isinstance(leaf.sharding, NamedSharding)]
    replicated = NamedSharding(meshes[0], PartitionSpec()) if meshes else None
    table = np.asarray(_fingerprint_fn(replicated)(leaves))
    return {tree_lib.key_path_name(path): tuple(int(v) for v in row) for (path, _), row in zip(flat, table)}
