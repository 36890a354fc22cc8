"""Parameter trees as flat `{path: array}` maps, their validation against a model config, and layer stacking.

Paths are tuples of the pure dict's keys: strings, and integers for the layers of an `nnx.List`. With
`scan_layers` a model's `layers.{i}` subtrees are stacked into one `layers` subtree with a leading axis.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from it_jax.models import registry

Path = tuple[str | int, ...]
Params = dict[str | int, Any]


def path_name(path: Path) -> str:
    """The dotted name of a path, e.g. `encoder.layers.0.mlp.wo.kernel`."""
    return ".".join(str(key) for key in path)


def flatten(params: Mapping[str | int, Any], prefix: Path = ()) -> dict[Path, Any]:
    """`{path: leaf}` of a nested dict (every non-dict value is a leaf)."""
    flat: dict[Path, Any] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten(value, prefix + (key,)))
        else:
            flat[prefix + (key,)] = value
    return flat


def unflatten(flat: Mapping[Path, Any]) -> Params:
    """Inverse of `flatten`."""
    tree: Params = {}
    for path, value in flat.items():
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = value
    return tree


def expected_params(config: registry.ModelConfig) -> dict[Path, jax.ShapeDtypeStruct]:
    """Shape and dtype of every parameter of the model `config` describes (nothing is allocated)."""
    return flatten(registry.model_spec(config).abstract_state.to_pure_dict())


def check_params(config: registry.ModelConfig, params: Mapping[str | int, Any], *, source: str) -> None:
    """Raises `ValueError` naming `source` unless `params` has exactly the model's names, shapes and dtypes."""
    expected = expected_params(config)
    actual = flatten(params)
    by_name = {path_name(path): value for path, value in actual.items()}
    missing = sorted(path_name(p) for p in expected if path_name(p) not in by_name)
    unexpected = sorted(set(by_name) - {path_name(p) for p in expected})
    problems = []
    if missing:
        problems.append(f"missing parameters {abbreviate(missing)}")
    if unexpected:
        problems.append(f"unexpected parameters {abbreviate(unexpected)}")
    for path, want in expected.items():
        got = by_name.get(path_name(path))
        if got is None:
            continue
        if tuple(got.shape) != tuple(want.shape):
            problems.append(f"{path_name(path)} has shape {tuple(got.shape)}, the config needs {tuple(want.shape)}")
        elif np.dtype(got.dtype) != np.dtype(want.dtype):
            problems.append(
                f"{path_name(path)} has dtype {np.dtype(got.dtype).name}, the config's param_dtype is "
                f"{np.dtype(want.dtype).name}"
            )
    if problems:
        raise ValueError(f"{source}: parameters do not match the model config: " + "; ".join(problems[:8]))


def num_params(params: Mapping[str | int, Any]) -> int:
    """Total number of parameter values."""
    return sum(int(np.prod(leaf.shape)) for leaf in flatten(params).values())


def set_scan_layers(
    config: registry.ModelConfig, params: Mapping[str | int, Any], *, scan: bool
) -> tuple[registry.ModelConfig, Params]:
    """The config with `scan_layers=scan`, and `params` restacked to match (numpy stacking, no copy if unchanged)."""
    if config.scan_layers == scan:
        return config, dict(params)
    return dataclasses.replace(config, scan_layers=scan), _map_layers(params, _stack if scan else _unstack)


def _map_layers(params: Mapping[str | int, Any], fn) -> Params:
    return {
        key: fn(value) if key == "layers" else _map_layers(value, fn) if isinstance(value, Mapping) else value
        for key, value in params.items()
    }


def _stack(layers: Mapping[int, Any]) -> Any:
    per_layer = [layers[i] for i in range(len(layers))]
    return jax.tree.map(lambda *leaves: np.stack([np.asarray(leaf) for leaf in leaves]), *per_layer)


def _unstack(stacked: Any) -> dict[int, Any]:
    num_layers = jax.tree.leaves(stacked)[0].shape[0]
    return {i: jax.tree.map(lambda leaf: np.asarray(leaf[i]), stacked) for i in range(num_layers)}


def abbreviate(names: list[str], limit: int = 6) -> str:
    """The first `limit` names, comma-separated, and how many more there are."""
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def key_path_name(path: tuple[Any, ...]) -> str:
    """The dotted name of a `jax.tree_util` key path, e.g. `opt_state.1.0.mu.decoder.final_norm.scale`."""
    keys = []
    for entry in path:
        for attribute in ("key", "name", "idx"):
            if hasattr(entry, attribute):
                keys.append(getattr(entry, attribute))
                break
        else:
            keys.append(str(entry))
    return path_name(tuple(keys))
