"""T5X checkpoints (msgpack) of the T5 1.1 / T5 network to it_jax's T5 config and parameters.

A T5X checkpoint is a msgpack file, `checkpoint` inside a `checkpoint_<step>` directory (or the file
itself), holding {"version": 3, "optimizer": {"target": params, "state": optimizer state}}; only the target
is read. Large arrays may be stored with TensorStore beside the file: the msgpack then holds a TensorStore
spec (a dict with "driver" and "kvstore") whose path is relative to the checkpoint directory.

T5X kernels are flat [in, out]: attention query/key/value [d_model, heads * d_kv] and out
[heads * d_kv, d_model] (head-major), so they are reshaped; relative position tables are
[heads, buckets] and are transposed to it_jax's [buckets, heads]. The config is inferred from shapes.
"""

from __future__ import annotations

import dataclasses
import pathlib
import re
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import tensorstore
from flax import serialization

from it_jax.convert import tree
from it_jax.models import t5

CHECKPOINT_FILE = "checkpoint"

# T5X sublayer names -> it_jax's, per stack.
_ATTENTION = {
    "encoder": {"attention": "attention"},
    "decoder": {"self_attention": "self_attention", "encoder_decoder_attention": "cross_attention"},
}
_NORMS = {
    "pre_attention_layer_norm": "pre_attention_norm",
    "pre_self_attention_layer_norm": "pre_self_attention_norm",
    "pre_cross_attention_layer_norm": "pre_cross_attention_norm",
    "pre_mlp_layer_norm": "pre_mlp_norm",
}
_FINAL_NORM = {"encoder": "encoder_norm", "decoder": "decoder_norm"}
_LAYER = re.compile(r"layers_(\d+)")


def read_target(path: str | pathlib.Path) -> dict[str, Any]:
    """The parameter tree ("target") of a T5X msgpack checkpoint, TensorStore-backed arrays read in."""
    path = pathlib.Path(path)
    file = path / CHECKPOINT_FILE if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"{file} not found: expected a T5X checkpoint directory or its msgpack file")
    try:
        state = serialization.msgpack_restore(file.read_bytes())
    except Exception as error:  # msgpack raises several unrelated types on foreign bytes.
        raise ValueError(f"{file} is not a T5X msgpack checkpoint ({type(error).__name__}: {error})") from error
    if isinstance(state, Mapping) and "optimizer" in state:
        state = state["optimizer"]
    if not isinstance(state, Mapping) or "target" not in state:
        raise ValueError(f"{file}: no optimizer target in the checkpoint (top-level keys: {_keys(state)})")
    return _read_arrays(state["target"], file.parent, ("target",))


def _keys(value: Any) -> list[str]:
    return sorted(value) if isinstance(value, Mapping) else []


def _read_arrays(node: Any, directory: pathlib.Path, path: tuple[str, ...]) -> Any:
    if isinstance(node, Mapping) and "driver" in node and "kvstore" in node:
        return _read_tensorstore(node, directory, ".".join(path))
    if isinstance(node, Mapping):
        return {key: _read_arrays(value, directory, path + (key,)) for key, value in node.items()}
    if isinstance(node, np.ndarray):
        return node
    raise ValueError(f"{directory}: checkpoint entry {'/'.join(path)} is a {type(node).__name__}, not an array")


def _read_tensorstore(spec: Mapping[str, Any], directory: pathlib.Path, name: str) -> np.ndarray:
    """Reads an array T5X stored with TensorStore (a "file" kvstore, path relative to the checkpoint)."""
    kvstore = dict(spec["kvstore"])
    if kvstore.get("driver") != "file":
        raise ValueError(
            f"{directory}: array {name} is in a {kvstore.get('driver')!r} TensorStore; copy the checkpoint "
            "directory to local disk first (only 'file' stores are read)"
        )
    kvstore["path"] = str(directory / kvstore["path"])
    metadata = {k: v for k, v in spec.get("metadata", {}).items() if k not in ("chunks", "compressor")}
    opened = tensorstore.open({**spec, "kvstore": kvstore, "metadata": metadata}, open=True, read=True).result()
    return np.asarray(opened.read().result())


def _attention(node: Mapping[str, Any], heads: int, where: str) -> dict[str, Any]:
    params = {}
    for name in ("query", "key", "value", "out"):
        kernel = node[name]["kernel"]
        if kernel.ndim != 2:
            raise ValueError(f"{where}/{name}/kernel has {kernel.ndim} axes; expected a flat [in, out] kernel")
        if name == "out":
            params[name] = {"kernel": kernel.reshape(heads, -1, kernel.shape[-1])}
        else:
            params[name] = {"kernel": kernel.reshape(kernel.shape[0], heads, -1)}
    return params


def _layer(node: Mapping[str, Any], stack: str, heads: int, where: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, value in node.items():
        if name in _ATTENTION[stack]:
            params[_ATTENTION[stack][name]] = _attention(value, heads, f"{where}/{name}")
        elif name in _NORMS:
            params[_NORMS[name]] = {"scale": value["scale"]}
        elif name == "mlp":
            params["mlp"] = {w: {"kernel": value[w]["kernel"]} for w in value}
        else:
            known = sorted(_ATTENTION[stack]) + sorted(_NORMS) + ["mlp"]
            raise ValueError(f"{where}/{name}: unknown T5X layer entry (known: {known})")
    return params


def _stack(node: Mapping[str, Any], stack: str, heads: int, where: str) -> tuple[dict[str, Any], int]:
    """it_jax parameters of one stack and its number of layers."""
    layers = {}
    params: dict[str, Any] = {}
    for name, value in node.items():
        match = _LAYER.fullmatch(name)
        if match:
            layers[int(match.group(1))] = _layer(value, stack, heads, f"{where}/{name}")
        elif name == "relpos_bias":
            params["relative_bias"] = {"embedding": np.ascontiguousarray(value["rel_embedding"].T)}
        elif name == _FINAL_NORM[stack]:
            params["final_norm"] = {"scale": value["scale"]}
        elif name == "logits_dense" and stack == "decoder":
            params["logits_dense"] = {"kernel": value["kernel"]}
        else:
            raise ValueError(f"{where}/{name}: unknown T5X {stack} entry (only unscanned T5 networks are read)")
    if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"{where}: layer numbers {sorted(layers)} are not 0..{len(layers) - 1}")
    params["layers"] = layers
    return params, len(layers)


def from_t5x(
    path: str | pathlib.Path, *, overrides: Mapping[str, Any] | None = None, scan_layers: bool = False
) -> tuple[t5.T5Config, tree.Params]:
    """Reads a T5X T5 checkpoint into an it_jax `T5Config` and parameters (numpy).

    The config comes from the shapes: vocabulary and width from the embedding, heads and buckets from the
    encoder's relative position table, d_kv and d_ff from the kernels, layer counts, a gated ("gelu",
    "linear") MLP when `wi_0`/`wi_1` exist else ("relu",), a tied head when there is no `logits_dense`,
    and `param_dtype` from the arrays.

    Args:
      path: the `checkpoint_<step>` directory or its `checkpoint` msgpack file.
      overrides: config fields shapes cannot tell, e.g. {"relative_attention_max_distance": 128,
        "mlp_activations": ("silu", "linear"), "dropout_rate": 0.1}.
      scan_layers: return stacked layer parameters (and `scan_layers=True`).
    """
    target = read_target(path)
    where = str(path)
    if set(target) != {"token_embedder", "encoder", "decoder"}:
        raise ValueError(f"{where}: expected token_embedder, encoder and decoder at the top level, got {_keys(target)}")
    try:
        vocab_size, d_model = target["token_embedder"]["embedding"].shape
        num_heads, num_buckets = target["encoder"]["relpos_bias"]["rel_embedding"].shape
        first = target["encoder"]["layers_0"]
        d_kv = first["attention"]["query"]["kernel"].shape[1] // num_heads
        mlp = first["mlp"]
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            f"{where}: not a T5X T5 checkpoint (needs token_embedder/embedding, encoder/relpos_bias/rel_embedding, "
            f"encoder/layers_0/attention and mlp): missing {error}"
        ) from error
    encoder, num_encoder_layers = _stack(target["encoder"], "encoder", num_heads, f"{where}:encoder")
    decoder, num_decoder_layers = _stack(target["decoder"], "decoder", num_heads, f"{where}:decoder")
    dtypes = sorted({np.dtype(a.dtype).name for a in tree.flatten(target).values()})
    if len(dtypes) != 1 and "param_dtype" not in (overrides or {}):
        raise ValueError(f"{where}: arrays have mixed dtypes {dtypes}; pass overrides={{'param_dtype': ...}}")
    gated = "wi_0" in mlp
    config = t5.T5Config(
        vocab_size=vocab_size,
        d_model=d_model,
        d_ff=(mlp["wi_0"] if gated else mlp["wi"])["kernel"].shape[1],
        d_kv=d_kv,
        num_heads=num_heads,
        num_encoder_layers=num_encoder_layers,
        num_decoder_layers=num_decoder_layers,
        relative_attention_num_buckets=num_buckets,
        mlp_activations=("gelu", "linear") if gated else ("relu",),
        param_dtype=dtypes[0],
        logits_via_embedding="logits_dense" not in decoder,
    )
    config = dataclasses.replace(config, **(overrides or {}))
    params = {"token_embedder": dict(target["token_embedder"]), "encoder": encoder, "decoder": decoder}
    dtype = jnp.dtype(config.param_dtype)
    params = tree.unflatten({p: np.asarray(a, dtype) for p, a in tree.flatten(params).items()})
    tree.check_params(config, params, source=where)
    return tree.set_scan_layers(config, params, scan=scan_layers)
