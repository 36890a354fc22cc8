"""Partial initialization from pretrained parameters: every parameter whose path and shape match is loaded.

Fine-tuning a model whose shape differs in places (a resized vocabulary head, an added layer) starts
from a fresh initialization and overwrites what the pretrained parameters can fill; the rest keeps its
fresh values. The source is a parameter tree, a model directory of this project (its latest checkpoint),
or a converted pretrained model directory (its `params/`); of a directory only the matching parameters are
read, directly onto the target's shardings.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from it_jax.models.lora import ADAPTER_NAMES
from it_jax.run_dir import RunDirectory
from it_jax.train.checkpoints import Checkpointer, checkpoint_dir

Params = dict[str, Any]

# A converted pretrained model directory keeps its parameters here (an Orbax PyTree checkpoint).
PRETRAINED_PARAMS_DIR = "params"


@dataclasses.dataclass(frozen=True)
class WarmStartReport:
    """Which parameters were loaded, which kept their fresh values (and why), and which went unused."""

    source: str
    loaded: tuple[str, ...]
    skipped: dict[str, str]
    unused: tuple[str, ...]

    @property
    def new_adapters(self) -> tuple[str, ...]:
        """The LoRA adapters (`lora_a`, `lora_b`) the source lacks: newly initialized, as intended."""
        return tuple(sorted(name for name in self.skipped if name.rsplit("/", 1)[-1] in ADAPTER_NAMES))

    def summary(self) -> str:
        lines = [f"Initialized {len(self.loaded)} parameters from {self.source}"]
        adapters = set(self.new_adapters)
        if adapters:
            lines.append(f"  newly initialized: {len(adapters)} LoRA adapter parameters (lora_a, lora_b)")
        lines += [f"  kept fresh {name}: {why}" for name, why in sorted(self.skipped.items()) if name not in adapters]
        if self.unused:
            lines.append(f"  unused from the source: {', '.join(self.unused)}")
        return "\n".join(lines)


def _key_name(key: Any) -> str:
    for attr in ("key", "idx", "name"):
        if hasattr(key, attr):
            return str(getattr(key, attr))
    return str(key)


def _flatten(tree: Any) -> dict[str, Any]:
    """`{"encoder/layers/0/mlp/wi_0/kernel": leaf}` for every leaf of a nested dict/list tree."""
    leaves = jax.tree_util.tree_flatten_with_path(tree, is_leaf=lambda x: hasattr(x, "shape"))[0]
    return {"/".join(_key_name(k) for k in path): leaf for path, leaf in leaves}


def _match(params: Params, source_shapes: Mapping[str, Any]) -> tuple[list[str], dict[str, str], tuple[str, ...]]:
    target = _flatten(params)
    loaded, skipped = [], {}
    for name, leaf in target.items():
        if name not in source_shapes:
            skipped[name] = "not in the source"
        elif tuple(source_shapes[name].shape) != tuple(leaf.shape):
            skipped[name] = f"shape {tuple(source_shapes[name].shape)} in the source, {tuple(leaf.shape)} here"
        else:
            loaded.append(name)
    unused = tuple(sorted(set(source_shapes) - set(target)))
    return loaded, skipped, unused


def _replace(params: Params, values: Mapping[str, Any]) -> Params:
    """`params` with the leaves named in `values` replaced (cast to the leaf's dtype, on its sharding)."""

    def pick(path, leaf):
        name = "/".join(_key_name(k) for k in path)
        if name not in values:
            return leaf
        value = np.asarray(values[name]) if not isinstance(values[name], jax.Array) else values[name]
        return jax.device_put(value.astype(leaf.dtype), leaf.sharding)

    return jax.tree_util.tree_map_with_path(pick, params)


def _subset(params: Params, names: set[str]) -> Params:
    """The nested sub-tree of `params` holding only the leaves in `names`, as abstract restore targets."""
    out: dict[Any, Any] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        if "/".join(_key_name(k) for k in path) not in names:
            continue
        keys = [getattr(k, "key", getattr(k, "idx", None)) for k in path]
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = jax.ShapeDtypeStruct(leaf.shape, leaf.dtype, sharding=leaf.sharding)
    return out


def _restore_from_directory(path: pathlib.Path, params: Params) -> tuple[Params, WarmStartReport]:
    pretrained = path / PRETRAINED_PARAMS_DIR
    if pretrained.is_dir() and not RunDirectory(path).checkpoints.is_dir():
        shapes = ocp.StandardCheckpointer().metadata(pretrained).item_metadata.tree
        loaded, skipped, unused = _match(params, _flatten(shapes))
        restored = {}
        if loaded:
            target = _subset(params, set(loaded))
            restored = ocp.PyTreeCheckpointer().restore(
                pretrained,
                args=ocp.args.PyTreeRestore(
                    item=target, restore_args=ocp.checkpoint_utils.construct_restore_args(target), partial_restore=True
                ),
            )
        source = str(pretrained.absolute())
    else:
        checkpointer = Checkpointer(checkpoint_dir(path))
        try:
            step = checkpointer.latest_step()
            loaded, skipped, unused = _match(params, _flatten(checkpointer.param_shapes(step)))
            restored = checkpointer.restore_params(_subset(params, set(loaded)), step) if loaded else {}
        finally:
            checkpointer.close()
        source = f"{checkpointer.directory} step {step}"
    return _replace(params, _flatten(restored)), WarmStartReport(source, tuple(loaded), skipped, unused)


def load_matching_params(source: str | pathlib.Path | Params, *, params: Params) -> tuple[Params, WarmStartReport]:
    """`params` with every leaf whose path and shape match one in `source` replaced by the source's value.

    Args:
      source: a parameter tree; a model directory of this project (or its `checkpoints/`), whose latest
        checkpoint is read; or a converted pretrained model directory (with `params/`).
      params: the freshly initialized (sharded) parameters.

    Returns:
      The merged parameters (each on its original sharding and dtype) and a report of what was loaded.
    """
    if isinstance(source, Mapping):
        values = _flatten(source)
        loaded, skipped, unused = _match(params, values)
        merged = _replace(params, {name: values[name] for name in loaded})
        return merged, WarmStartReport("the given parameters", tuple(loaded), skipped, unused)
    return _restore_from_directory(pathlib.Path(source), params)
