"""Low-rank adapters (LoRA, Hu et al. 2021) on a model's `DenseGeneral` projections.

`with_lora(build, config)` wraps a model build function: the model is built as before (same base parameters
for the same seed) and every projection whose path matches `config.targets` gets two `nnx.LoRAParam`s,
`lora_a` [in..., rank] (normal, std fan_in**-0.5) and `lora_b` [rank, out...] (zeros), so that the output is
`x @ W + (alpha / rank) * dropout(x) @ A @ B` and equals the base model's at initialization. The trainer
trains only the adapters with `trainable=nnx.LoRAParam`. In scanned stacks the adapters get the leading
`layers` axis like the kernels. Logical axes: A has the kernel's input axes then an unsharded rank, B an
unsharded rank then the kernel's output axes, so `it_jax.sharding` rules shard them like the kernel.

Parameters stay plain nested dicts; adapter leaves sit beside the kernel (`...attention.query.lora_a`).
- `merge(params, config)`: the base parameters with `W + scale * A @ B` folded in (bind with the base spec,
  export to Hugging Face like any base checkpoint).
- `without_adapters(params)`: the same tree with B zeroed: the "adapters disabled" view whose logits are the
  base model's. A DPO reference needs no second copy: inside the loss, bind
  `jax.lax.stop_gradient(lora.without_adapters(params))` with the same (LoRA) spec.
- `adapter_params`, `save_adapters`, `load_adapters`: the adapters alone, as a safetensors file whose tensor
  names are the dotted parameter paths and whose metadata holds the `LoraConfig` as JSON.
- `with_base(params, base)`: a LoRA model's parameters over a pretrained base (a checkpoint without adapters);
  then `load_adapters` puts saved adapters on it.

Dropout on the adapter input draws from a key set by `train_dropout(key)` around the forward pass (the
projections take no rngs); without it (evaluation) it is the identity. Each adapter folds its own index into
the key; the layers of a scanned stack share a mask.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from flax import nnx

from it_jax.convert import tree
from it_jax.models.layers import DenseGeneral
from it_jax.sharding import variable_axes

Params = dict[str, Any]
ADAPTER_NAMES = ("lora_a", "lora_b")
# Shorthands for the attention projections' names (patterns match a path component or the whole path).
SHORTHANDS = {"q": "query", "k": "key", "v": "value", "o": "out"}
_DROPOUT_KEYS: list[jax.Array] = []


@dataclasses.dataclass(frozen=True)
class LoraConfig:
    """Adapter rank, `alpha` (the update is scaled by alpha / rank), input dropout, and target patterns.

    `targets` are regexes, each fully matching one component of a projection's dotted path or the whole path
    (q, k, v, o stand for query, key, value, out): ("q", "k", "v", "o") adapts every attention projection,
    ("mlp",) every feed-forward projection, ("self_attention",) only T5's decoder self-attention.
    `base_dtype` (e.g. "bfloat16") stores the frozen base parameters in that dtype; adapters stay float32.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = ("q", "k", "v", "o")
    base_dtype: str | None = None

    def __post_init__(self):
        if self.rank < 1:
            raise ValueError(f"LoraConfig.rank must be >= 1, got {self.rank}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoraConfig.dropout must lie in [0, 1), got {self.dropout}")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(f"LoraConfig.targets must be a non-empty tuple of patterns, got {self.targets!r}")
        object.__setattr__(self, "targets", tuple(self.targets))

    @property
    def scale(self) -> float:
        return self.alpha / self.rank


@dataclasses.dataclass(frozen=True)
class Dropout:
    """Adapter input dropout (static, hashable); active only inside `train_dropout`."""

    rate: float
    salt: int

    def __call__(self, x: jax.Array) -> jax.Array:
        if not self.rate or not _DROPOUT_KEYS:
            return x
        keep = jax.random.bernoulli(jax.random.fold_in(_DROPOUT_KEYS[-1], self.salt), 1.0 - self.rate, x.shape)
        return jnp.where(keep, x / (1.0 - self.rate), 0.0).astype(x.dtype)


@contextlib.contextmanager
def train_dropout(key: jax.Array) -> Iterator[None]:
    """Applies the adapters' dropout, drawn from `key`, to forward passes inside the block (traceable)."""
    _DROPOUT_KEYS.append(key)
    try:
        yield
    finally:
        _DROPOUT_KEYS.pop()


def _path_name(path: Sequence[Any]) -> str:
    return ".".join(str(p) for p in path)


def projection_paths(model: nnx.Module) -> list[str]:
    """Dotted paths of every `DenseGeneral` in `model`."""
    return [_path_name(path) for path, module in nnx.iter_modules(model) if isinstance(module, DenseGeneral)]


def _matches(pattern: str, path: str) -> bool:
    pattern = SHORTHANDS.get(pattern, pattern)
    return re.fullmatch(pattern, path) is not None or any(re.fullmatch(pattern, p) for p in path.split("."))


def matched_paths(model: nnx.Module, targets: Sequence[str]) -> list[str]:
    """The projection paths matched by `targets`; a ValueError names any pattern that matches none."""
    paths = projection_paths(model)
    for pattern in targets:
        if not any(_matches(pattern, p) for p in paths):
            raise ValueError(f"LoRA target {pattern!r} matches no projection; the model's projections are: "
                             f"{', '.join(paths)}")
    return [p for p in paths if any(_matches(t, p) for t in targets)]


def attach(module: DenseGeneral, config: LoraConfig, key: jax.Array, salt: int = 0) -> None:
    """Adds `lora_a`, `lora_b` (float32 `nnx.LoRAParam`s with logical axes) to `module`."""
    kernel = module.kernel[...]
    axes = variable_axes(module.kernel)
    if axes is None:
        raise ValueError("LoRA needs kernels annotated with logical axes (layers.param)")
    lead = 1 if axes[0] == "layers" else 0  # scanned stacks: a leading `layers` axis
    split = lead + module.num_in_axes
    in_shape, out_shape = kernel.shape[lead:split], kernel.shape[split:]
    lead_shape, lead_axes = kernel.shape[:lead], tuple(axes[:lead])

    def make(init, shape, names):
        annotated = nnx.with_partitioning(init, lead_axes + tuple(names), eager_sharding=False)
        return nnx.LoRAParam(annotated(key, lead_shape + tuple(shape), jnp.float32))

    a_init = jax.nn.initializers.normal(float(np.prod(in_shape)) ** -0.5)
    module.lora_a = make(a_init, (*in_shape, config.rank), (*axes[lead:split], None))
    module.lora_b = make(jax.nn.initializers.zeros, (config.rank, *out_shape), (None, *axes[split:]))
    module.lora_scale = config.scale
    module.lora_dropout = Dropout(config.dropout, salt)


def _cast_base(model: nnx.Module, dtype: str) -> None:
    frozen = nnx.state(model, nnx.All(nnx.Param, nnx.Not(nnx.LoRAParam)))
    nnx.update(model, jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, frozen))


def with_lora(build: Callable[[nnx.Rngs], nnx.Module], config: LoraConfig) -> Callable[[nnx.Rngs], nnx.Module]:
    """A build function for `ModelSpec.create`: `build`'s model with adapters on the projections `config`
    targets (the base parameters are those `build` draws from the same rngs)."""

    def build_with_lora(rngs: nnx.Rngs) -> nnx.Module:
        model = build(rngs)
        targets = set(matched_paths(model, config.targets))
        key = rngs.params()
        salt = 0
        for path, module in nnx.iter_modules(model):
            if _path_name(path) in targets:
                attach(module, config, jax.random.fold_in(key, salt), salt)
                salt += 1
        if config.base_dtype is not None:
            _cast_base(model, config.base_dtype)
        return model

    return build_with_lora


def _is_adapter(path: tree.Path) -> bool:
    return path[-1] in ADAPTER_NAMES


def has_adapters(params: Params) -> bool:
    """Whether `params` hold LoRA adapters."""
    return any(_is_adapter(p) for p in tree.flatten(params))


def adapter_params(params: Params) -> Params:
    """Only the adapter leaves of `params` (same nesting)."""
    return tree.unflatten({p: v for p, v in tree.flatten(params).items() if _is_adapter(p)})


def with_base(params: Params, base: Params) -> Params:
    """A LoRA model's `params` with every base leaf taken from `base` (e.g. a pretrained checkpoint of the
    model without adapters, cast to the LoRA model's dtypes): how a fine-tuning run starts from a base."""
    flat, base_flat = tree.flatten(params), tree.flatten(base)
    expected = {p for p in flat if not _is_adapter(p)}
    if expected != set(base_flat):
        missing = sorted(map(tree.path_name, expected - set(base_flat)))
        unknown = sorted(map(tree.path_name, set(base_flat) - expected))
        raise ValueError(f"base parameters do not fit the LoRA model: missing {missing[:5]}, unexpected {unknown[:5]}")
    for path in expected:
        if tuple(base_flat[path].shape) != tuple(flat[path].shape):
            raise ValueError(f"base parameter {tree.path_name(path)} has shape {tuple(base_flat[path].shape)}, "
                             f"the model's {tuple(flat[path].shape)}")
        flat[path] = jnp.asarray(base_flat[path], flat[path].dtype)
    return tree.unflatten(flat)


def without_adapters(params: Params) -> Params:
    """`params` with every `lora_b` zeroed: bound with the LoRA spec it computes the base model."""
    return tree.unflatten({p: jnp.zeros_like(v) if p[-1] == "lora_b" else v for p, v in tree.flatten(params).items()})


def _delta(kernel: jax.Array, a: jax.Array, b: jax.Array, scale: float) -> jax.Array:
    """`scale * A @ B` in the kernel's shape; A [lead, in..., r], B [lead, r, out...]."""
    rank = a.shape[-1]
    for lead in (0, 1):
        if b.shape[lead] == rank and kernel.shape == a.shape[:-1] + b.shape[lead + 1:]:
            a2 = a.astype(jnp.float32).reshape(*a.shape[:lead], -1, rank)
            b2 = b.astype(jnp.float32).reshape(*b.shape[:lead], rank, -1)
            return (scale * (a2 @ b2)).reshape(kernel.shape)
    raise ValueError(f"adapter shapes {a.shape}, {b.shape} do not fit kernel {kernel.shape}")


def merge(params: Params, config: LoraConfig) -> Params:
    """Base parameters with the adapters folded in (`W + alpha/rank * A @ B`, in float32, cast to W's dtype),
    and without adapter leaves: bind with the spec of the base build function."""
    flat = tree.flatten(params)
    merged = {p: v for p, v in flat.items() if not _is_adapter(p)}
    for path, a in flat.items():
        if path[-1] == "lora_a":
            kernel_path = path[:-1] + ("kernel",)
            kernel = flat[kernel_path]
            delta = _delta(kernel, a, flat[path[:-1] + ("lora_b",)], config.scale)
            merged[kernel_path] = (kernel.astype(jnp.float32) + delta).astype(kernel.dtype)
    return tree.unflatten(merged)


def save_adapters(path: str | os.PathLike, params: Params, config: LoraConfig) -> None:
    """Writes the adapters of `params` (float32) and `config` (metadata `lora_config`) to a safetensors file."""
    tensors = {tree.path_name(p): np.asarray(v, np.float32) for p, v in tree.flatten(adapter_params(params)).items()}
    if not tensors:
        raise ValueError(f"no LoRA adapters in the parameters to save to {path}; build the model with with_lora")
    safetensors.numpy.save_file(tensors, str(path), metadata={"lora_config": json.dumps(dataclasses.asdict(config))})


def load_config(path: str | os.PathLike) -> LoraConfig:
    """The `LoraConfig` saved with the adapters in `path`."""
    with safetensors.safe_open(str(path), "np") as f:
        metadata = f.metadata() or {}
    if "lora_config" not in metadata:
        raise ValueError(f"{path} has no lora_config metadata; was it written by lora.save_adapters?")
    return LoraConfig(**json.loads(metadata["lora_config"]))


def load_adapters(path: str | os.PathLike, params: Params) -> Params:
    """`params` (a LoRA model's) with its adapters replaced by those saved in `path`; every saved and every
    expected adapter must match by name and shape."""
    saved = safetensors.numpy.load_file(str(path))
    flat = tree.flatten(params)
    expected = {tree.path_name(p): p for p in flat if _is_adapter(p)}
    missing, unknown = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or unknown:
        raise ValueError(f"adapters in {path} do not fit the model: missing {missing[:5]}, unexpected "
                         f"{unknown[:5]}; build the model with the LoraConfig saved there (lora.load_config)")
    for name, p in expected.items():
        if saved[name].shape != tuple(flat[p].shape):
            raise ValueError(f"adapter {name} in {path} has shape {saved[name].shape}, the model's "
                             f"{tuple(flat[p].shape)}; build the model with lora.load_config({str(path)!r})")
        flat[p] = jnp.asarray(saved[name], flat[p].dtype)
    return tree.unflatten(flat)
