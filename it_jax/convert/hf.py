"""Hugging Face checkpoints (`config.json` + safetensors) to and from it_jax configs and parameters.

Supported model types: "t5" (T5 v1.1 / Flan-T5 with an untied head, and the original T5 with its tied,
rescaled head), "llama" (with Llama 3.x rope scaling), "mistral", "qwen2", "qwen3" and "gemma2" (decoder-only;
their config.json mapping is in `hf_configs`). Tensors are read and written
with `safetensors.numpy`, so no torch is needed.

Every tensor maps to one parameter. torch `Linear` weights are [out, in]; it_jax kernels are [in, out]
with the head axes split out (query/key/value [d_model, heads, head_dim], out [heads, head_dim, d_model]),
so a weight is transposed and reshaped, which is exact in both directions.

Exported tensors are the set transformers' own `save_pretrained` writes: T5 stores `shared.weight` (no
`encoder.embed_tokens`/`decoder.embed_tokens` copies), `lm_head.weight` only when the head is untied, and
the relative attention bias in block 0 of each stack; Llama and Qwen store `lm_head.weight` only when
`tie_word_embeddings` is false. (transformers 5 creates T5 v1.1 models with an unscaled head tied to the
embedding; such a head imports as an untied copy and exports as `lm_head.weight`.)
"""

from __future__ import annotations

import dataclasses
import json
import math
import pathlib
import shutil
from collections.abc import Mapping
from typing import Any

import jax.numpy as jnp
import numpy as np
import sentencepiece
from safetensors import safe_open
from safetensors.numpy import save_file

from it_jax.convert import hf_configs, pretrained, tree
from it_jax.data import layout
from it_jax.models import decoder, registry, t5

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
# SentencePiece files by model family, in the names transformers' tokenizers look for.
VOCABULARY_FILES = {"t5": "spiece.model", "decoder": "tokenizer.model"}
SUPPORTED_MODEL_TYPES = ("t5", *hf_configs.DECODER_MODEL_TYPES)
DEFAULT_MAX_SHARD_BYTES = 5 * 2**30

# HF T5 feed_forward_proj <-> it_jax MLP activations. HF's "gated-gelu" is the tanh approximation, as is
# it_jax's "gelu"; HF's plain "gelu" is the exact erf form, which it_jax does not have.
_T5_FEED_FORWARD = {
    "relu": ("relu",),
    "silu": ("silu",),
    "gated-gelu": ("gelu", "linear"),
    "gated-relu": ("relu", "linear"),
    "gated-silu": ("silu", "linear"),
}
# Tensors some HF T5 checkpoints carry that the model ignores or ties to `shared.weight`.
_T5_TIED_EMBEDDINGS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")
_T5_IGNORED = ("decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight",)


@dataclasses.dataclass(frozen=True)
class _Rule:
    """One HF tensor <-> one it_jax parameter.

    kind: "same" (identical layout), "vector" (1-D on HF's side, e.g. a q/k/v bias [heads * head_dim]) or
    "linear" (torch [out, in] <-> kernel [*in_axes, *out_axes] whose first `num_in` axes are inputs).
    """

    hf: str
    path: tree.Path
    kind: str = "same"
    num_in: int = 1


def _linear(hf: str, path: tree.Path, num_in: int = 1) -> _Rule:
    return _Rule(hf, path, "linear", num_in)


def _hf_shape(rule: _Rule, shape: tuple[int, ...]) -> tuple[int, ...]:
    if rule.kind == "linear":
        return (math.prod(shape[rule.num_in :]), math.prod(shape[: rule.num_in]))
    if rule.kind == "vector":
        return (math.prod(shape),)
    return tuple(shape)


def _to_it(rule: _Rule, tensor: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    source = tensor.T if rule.kind == "linear" else tensor
    return np.array(source, order="C").reshape(shape)


def _to_hf(rule: _Rule, value: Any) -> np.ndarray:
    array = np.asarray(value)
    if rule.kind == "linear":
        array = array.reshape(math.prod(array.shape[: rule.num_in]), -1).T
    elif rule.kind == "vector":
        array = array.reshape(-1)
    return np.ascontiguousarray(array)


def _attention_rules(hf: str, path: tree.Path, names: tuple[str, ...], *, bias: bool) -> list[_Rule]:
    """Rules of one attention block whose HF projections are `names` (query, key, value, out order)."""
    rules = []
    for hf_name, it_name in zip(names, ("query", "key", "value", "out")):
        rules.append(_linear(f"{hf}.{hf_name}.weight", path + (it_name, "kernel"), 2 if it_name == "out" else 1))
        if bias and it_name != "out":
            rules.append(_Rule(f"{hf}.{hf_name}.bias", path + (it_name, "bias"), "vector"))
    return rules


def _t5_rules(config: t5.T5Config) -> list[_Rule]:
    mlp = ["wi"] if len(config.mlp_activations) == 1 else [f"wi_{i}" for i in range(len(config.mlp_activations))]
    stacks = {
        "encoder": (
            config.num_encoder_layers,
            [("SelfAttention", "attention", "pre_attention_norm"), (None, "mlp", "pre_mlp_norm")],
        ),
        "decoder": (
            config.num_decoder_layers,
            [
                ("SelfAttention", "self_attention", "pre_self_attention_norm"),
                ("EncDecAttention", "cross_attention", "pre_cross_attention_norm"),
                (None, "mlp", "pre_mlp_norm"),
            ],
        ),
    }
    rules = [_Rule("shared.weight", ("token_embedder", "embedding"))]
    for name, (num_layers, sublayers) in stacks.items():
        relative_bias = f"{name}.block.0.layer.0.SelfAttention.relative_attention_bias.weight"
        rules.append(_Rule(relative_bias, (name, "relative_bias", "embedding")))
        rules.append(_Rule(f"{name}.final_layer_norm.weight", (name, "final_norm", "scale")))
        for i in range(num_layers):
            for j, (hf_module, it_module, norm) in enumerate(sublayers):
                hf, path = f"{name}.block.{i}.layer.{j}", (name, "layers", i)
                rules.append(_Rule(f"{hf}.layer_norm.weight", path + (norm, "scale")))
                if hf_module is None:
                    for w in mlp + ["wo"]:
                        rules.append(_linear(f"{hf}.DenseReluDense.{w}.weight", path + ("mlp", w, "kernel")))
                else:
                    names = ("q", "k", "v", "o")
                    rules += _attention_rules(f"{hf}.{hf_module}", path + (it_module,), names, bias=False)
    if not config.logits_via_embedding:
        rules.append(_linear("lm_head.weight", ("decoder", "logits_dense", "kernel")))
    return rules


def _decoder_rules(config: decoder.DecoderConfig) -> list[_Rule]:
    rules = [_Rule("model.embed_tokens.weight", ("token_embedder", "embedding"))]
    for i in range(config.num_layers):
        hf, path = f"model.layers.{i}", ("layers", i)
        rules.append(_Rule(f"{hf}.input_layernorm.weight", path + ("pre_attention_norm", "scale")))
        rules += _attention_rules(
            f"{hf}.self_attn", path + ("attention",), ("q_proj", "k_proj", "v_proj", "o_proj"), bias=config.qkv_bias
        )
        if config.qk_norm:
            for hf_name, it_name in (("q_norm", "query_norm"), ("k_norm", "key_norm")):
                rules.append(_Rule(f"{hf}.self_attn.{hf_name}.weight", path + ("attention", it_name, "scale")))
        rules += _norm_rules(config, hf, path)
        for hf_name, it_name in (("gate_proj", "wi_0"), ("up_proj", "wi_1"), ("down_proj", "wo")):
            rules.append(_linear(f"{hf}.mlp.{hf_name}.weight", path + ("mlp", it_name, "kernel")))
    rules.append(_Rule("model.norm.weight", ("final_norm", "scale")))
    if not config.tie_embeddings:
        rules.append(_linear("lm_head.weight", ("logits_dense", "kernel")))
    return rules


def _norm_rules(config: decoder.DecoderConfig, hf: str, path: tree.Path) -> list[_Rule]:
    """The norms before the MLP (Llama's `post_attention_layernorm`) or, with Gemma 2's post-norms, after the
    attention and around the MLP. Gemma 2 stores w of its (1 + w) scales, as `norm_scale_offset` 1 does."""
    if not config.post_norms:
        return [_Rule(f"{hf}.post_attention_layernorm.weight", path + ("pre_mlp_norm", "scale"))]
    names = (
        ("post_attention_layernorm", "post_attention_norm"),
        ("pre_feedforward_layernorm", "pre_mlp_norm"),
        ("post_feedforward_layernorm", "post_mlp_norm"),
    )
    return [_Rule(f"{hf}.{hf_name}.weight", path + (it_name, "scale")) for hf_name, it_name in names]


def _rules(config: registry.ModelConfig) -> list[_Rule]:
    return _t5_rules(config) if isinstance(config, t5.T5Config) else _decoder_rules(config)


def _t5_config_from_hf(
    hf: Mapping[str, Any], tensors: Mapping[str, np.ndarray], *, where: pathlib.Path
) -> t5.T5Config:
    proj = hf.get("feed_forward_proj", "relu")
    if proj not in _T5_FEED_FORWARD:
        raise hf_configs.unsupported(where, f"feed_forward_proj {proj!r} (supported: {sorted(_T5_FEED_FORWARD)})")
    if not math.isclose(hf.get("layer_norm_epsilon", 1e-6), 1e-6):
        raise hf_configs.unsupported(where, f"layer_norm_epsilon {hf['layer_norm_epsilon']} (it_jax's T5 uses 1e-6)")
    # As transformers does: configs written by transformers 5 say `scale_decoder_outputs`; older ones
    # rescale exactly when `tie_word_embeddings` is not false.
    scaled = hf.get("scale_decoder_outputs", hf.get("tie_word_embeddings", True) is not False)
    head = tensors.get("lm_head.weight")
    untied = head is not None and not np.array_equal(head, tensors.get("shared.weight"))
    if scaled and untied:
        raise hf_configs.unsupported(where, "an untied lm_head.weight with rescaled decoder outputs")
    return t5.T5Config(
        vocab_size=hf["vocab_size"],
        d_model=hf["d_model"],
        d_ff=hf["d_ff"],
        d_kv=hf["d_kv"],
        num_heads=hf["num_heads"],
        num_encoder_layers=hf["num_layers"],
        num_decoder_layers=hf.get("num_decoder_layers") or hf["num_layers"],
        dropout_rate=hf.get("dropout_rate", 0.1),
        relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
        mlp_activations=_T5_FEED_FORWARD[proj],
        logits_via_embedding=scaled,
    )


def _t5_config_to_hf(config: t5.T5Config) -> dict[str, Any]:
    proj = {v: k for k, v in _T5_FEED_FORWARD.items()}.get(config.mlp_activations)
    if proj is None:
        raise ValueError(f"T5 mlp_activations {config.mlp_activations} have no Hugging Face feed_forward_proj")
    return {
        "architectures": ["T5ForConditionalGeneration"],
        "model_type": "t5",
        "vocab_size": config.vocab_size,
        "d_model": config.d_model,
        "d_kv": config.d_kv,
        "d_ff": config.d_ff,
        "num_heads": config.num_heads,
        "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers,
        "relative_attention_num_buckets": config.relative_attention_num_buckets,
        "relative_attention_max_distance": config.relative_attention_max_distance,
        "dropout_rate": config.dropout_rate,
        "layer_norm_epsilon": 1e-6,
        "feed_forward_proj": proj,
        "tie_word_embeddings": config.logits_via_embedding,
        "is_encoder_decoder": True,
        "pad_token_id": 0,
        "eos_token_id": 1,
        "decoder_start_token_id": 0,
        "dtype": config.param_dtype,
    }


def config_to_hf(config: registry.ModelConfig) -> dict[str, Any]:
    """The transformers `config.json` fields of an it_jax config (T5, or a decoder family, see `hf_configs`)."""
    return _t5_config_to_hf(config) if isinstance(config, t5.T5Config) else hf_configs.decoder_config_to_hf(config)


def read_config(hf_dir: str | pathlib.Path) -> dict[str, Any]:
    """`config.json` of a Hugging Face model directory, with a clear error when it is missing."""
    path = pathlib.Path(hf_dir) / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: expected a Hugging Face model directory (config.json + safetensors)"
        )
    hf = json.loads(path.read_text())
    if hf.get("model_type") not in SUPPORTED_MODEL_TYPES:
        supported = ", ".join(SUPPORTED_MODEL_TYPES)
        raise ValueError(f"{path}: model_type {hf.get('model_type')!r} is not supported; supported: {supported}")
    return hf


def read_safetensors(hf_dir: str | pathlib.Path) -> dict[str, np.ndarray]:
    """Every tensor of `model.safetensors`, or of the shards `model.safetensors.index.json` lists."""
    hf_dir = pathlib.Path(hf_dir)
    index = hf_dir / SAFETENSORS_INDEX_FILE
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (hf_dir / SAFETENSORS_FILE).is_file():
        files = [SAFETENSORS_FILE]
    else:
        raise FileNotFoundError(
            f"{hf_dir}: neither {SAFETENSORS_FILE} nor {SAFETENSORS_INDEX_FILE}; re-save the model with "
            "transformers' save_pretrained(..., safe_serialization=True)"
        )
    tensors = {}
    for name in files:
        if not (hf_dir / name).is_file():
            raise FileNotFoundError(f"{hf_dir / name}, listed in {index.name}, is missing")
        with safe_open(hf_dir / name, framework="np") as f:
            for key in f.keys():
                tensors[key] = f.get_tensor(key)
    return tensors


def _ignored_tensors(
    config: registry.ModelConfig, tensors: Mapping[str, np.ndarray], where: pathlib.Path
) -> set[str]:
    """Tensors the model does without: tied copies of the embedding (checked equal) and unused biases."""
    if isinstance(config, t5.T5Config):
        shared, copies = "shared.weight", list(_T5_TIED_EMBEDDINGS)
        ignored = {name for name in _T5_IGNORED if name in tensors}
    else:
        shared, copies = "model.embed_tokens.weight", []
        ignored = {name for name in tensors if name.endswith(".rotary_emb.inv_freq")}
    if "lm_head.weight" not in {r.hf for r in _rules(config)}:
        copies.append("lm_head.weight")
    for name in copies:
        if name in tensors:
            if shared in tensors and not np.array_equal(tensors[name], tensors[shared]):
                raise hf_configs.unsupported(where, f"{name} differs from {shared} although the config ties them")
            ignored.add(name)
    return ignored


def from_hf(
    hf_dir: str | pathlib.Path, *, param_dtype: str | None = None, scan_layers: bool = False
) -> tuple[registry.ModelConfig, tree.Params]:
    """Reads a Hugging Face T5 / Llama / Mistral / Qwen2 / Qwen3 / Gemma 2 directory into an it_jax config and
    parameters (numpy).

    Args:
      hf_dir: directory with `config.json` and `model.safetensors` (or sharded safetensors with an index).
      param_dtype: cast the parameters to this dtype; by default they keep the checkpoint's (single) dtype.
      scan_layers: return the config with `scan_layers=True` and the layer parameters stacked.

    Returns:
      (config, params): a `T5Config` or a `DecoderConfig` and the pure-dict parameters (numpy arrays).
    """
    hf_dir = pathlib.Path(hf_dir)
    where = hf_dir / CONFIG_FILE
    hf = read_config(hf_dir)
    tensors = read_safetensors(hf_dir)
    if hf["model_type"] == "t5":
        config = _t5_config_from_hf(hf, tensors, where=where)
        if not config.logits_via_embedding and "lm_head.weight" not in tensors and "shared.weight" in tensors:
            # An unscaled head tied to the embedding (transformers 5 creates T5 v1.1 models so).
            tensors = {**tensors, "lm_head.weight": tensors["shared.weight"]}
    else:
        config = hf_configs.decoder_config_from_hf(hf, where=where)
    rules = _rules(config)
    missing = [r.hf for r in rules if r.hf not in tensors]
    unexpected = sorted(set(tensors) - {r.hf for r in rules} - _ignored_tensors(config, tensors, where))
    if missing or unexpected:
        raise ValueError(
            f"{hf_dir}: the safetensors do not match config.json ({hf['model_type']}, as read): "
            f"missing {tree.abbreviate(missing) or 'none'}; unexpected {tree.abbreviate(unexpected) or 'none'}"
        )
    if param_dtype is None:
        dtypes = sorted({np.dtype(tensors[r.hf].dtype).name for r in rules})
        if len(dtypes) != 1:
            raise ValueError(f"{hf_dir}: tensors have mixed dtypes {dtypes}; pass param_dtype to cast them to one")
        param_dtype = dtypes[0]
    config = dataclasses.replace(config, param_dtype=jnp.dtype(param_dtype).name)
    expected = tree.expected_params(config)
    flat = {}
    for rule in rules:
        shape = tuple(expected[rule.path].shape)
        tensor = tensors.pop(rule.hf)  # Frees each source tensor once converted.
        if tuple(tensor.shape) != _hf_shape(rule, shape):
            raise ValueError(
                f"{hf_dir}: tensor {rule.hf} has shape {tuple(tensor.shape)}, config.json implies "
                f"{_hf_shape(rule, shape)} (for {tree.path_name(rule.path)} {shape})"
            )
        flat[rule.path] = _to_it(rule, tensor, shape).astype(expected[rule.path].dtype, copy=False)
    params = tree.unflatten(flat)
    tree.check_params(config, params, source=str(hf_dir))
    return tree.set_scan_layers(config, params, scan=scan_layers)


def _write_safetensors(tensors: Mapping[str, np.ndarray], out_dir: pathlib.Path, *, max_shard_bytes: int) -> None:
    """One `model.safetensors`, or shards of at most `max_shard_bytes` (unless one tensor is larger) + index."""
    shards: list[dict[str, np.ndarray]] = [{}]
    size = 0
    for name, array in tensors.items():
        if shards[-1] and size + array.nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = array
        size += array.nbytes
    metadata = {"format": "pt"}
    if len(shards) == 1:
        save_file(shards[0], out_dir / SAFETENSORS_FILE, metadata=metadata)
        return
    weight_map = {}
    for i, shard in enumerate(shards):
        filename = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, out_dir / filename, metadata=metadata)
        weight_map.update({name: filename for name in shard})
    index = {"metadata": {"total_size": sum(a.nbytes for a in tensors.values())}, "weight_map": weight_map}
    (out_dir / SAFETENSORS_INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def to_hf(
    config: registry.ModelConfig,
    params: Mapping[str | int, Any],
    out_dir: str | pathlib.Path,
    *,
    vocabulary_path: str | pathlib.Path | None = None,
    byte_vocabulary_extra_ids: int | None = None,
    max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
) -> None:
    """Writes a directory transformers' `from_pretrained` loads: config.json, safetensors (, tokenizer file).

    T5 configs become `T5ForConditionalGeneration`; decoder configs `LlamaForCausalLM`, `MistralForCausalLM`
    (a sliding window in every layer), `Qwen2ForCausalLM` (q/k/v biases), `Qwen3ForCausalLM` (q/k norms) or
    `Gemma2ForCausalLM` (Gemma 2's options; see `hf_configs`). `vocabulary_path` (a SentencePiece model) is copied as
    `spiece.model` (T5) or `tokenizer.model` (decoders); `byte_vocabulary_extra_ids` (a byte vocabulary's
    extra ids) writes a `ByT5Tokenizer` config instead. `out_dir` must be new or empty.
    """
    if vocabulary_path is not None and byte_vocabulary_extra_ids is not None:
        raise ValueError("give a SentencePiece vocabulary_path or a byte vocabulary, not both")
    tree.check_params(config, params, source="to_hf parameters")
    hf_config = config_to_hf(config)
    config, params = tree.set_scan_layers(config, params, scan=False)
    flat = {tree.path_name(path): value for path, value in tree.flatten(params).items()}
    tensors = {rule.hf: _to_hf(rule, flat[tree.path_name(rule.path)]) for rule in _rules(config)}
    out_dir = pretrained.new_directory(out_dir)
    (out_dir / CONFIG_FILE).write_text(json.dumps(hf_config, indent=2) + "\n")
    if isinstance(config, t5.T5Config):
        generation = {"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0}
        (out_dir / GENERATION_CONFIG_FILE).write_text(json.dumps(generation, indent=2) + "\n")
    _write_safetensors(tensors, out_dir, max_shard_bytes=max_shard_bytes)
    if vocabulary_path is not None:
        shutil.copyfile(vocabulary_path, out_dir / VOCABULARY_FILES[registry.family(config)])
    if byte_vocabulary_extra_ids is not None:
        _write_byte_tokenizer(out_dir, byte_vocabulary_extra_ids)


def _write_byte_tokenizer(out_dir: pathlib.Path, extra_ids: int) -> None:
    """A `ByT5Tokenizer` config whose ids are `seqio.ByteVocabulary(extra_ids)`'s: pad 0, EOS 1, UNK 2, byte b
    -> b + 3, and the extra ids after the 259 byte ids, `<extra_id_0>` last (T5's sentinel order, which
    ByT5Tokenizer would otherwise reverse)."""
    names = [f"<extra_id_{i}>" for i in range(extra_ids)]
    sentinels = {str(259 + extra_ids - 1 - i): {"content": name, "special": True} for i, name in enumerate(names)}
    config = {
        "tokenizer_class": "ByT5Tokenizer",
        "pad_token": "<pad>",
        "eos_token": "</s>",
        "unk_token": "<unk>",
        "extra_ids": extra_ids,
        "additional_special_tokens": names,
        "added_tokens_decoder": sentinels,
    }
    (out_dir / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")


def layout_from_hf(hf_dir: str | pathlib.Path) -> dict[str, Any]:
    """The prompt layout (a `PromptLayout` dict) a Hugging Face model was trained with: T5's, or a causal
    LM's (its `bos_token_id`, if any, then inputs and targets back to back)."""
    hf = read_config(hf_dir)
    if hf.get("model_type") in ("t5", "mt5", "umt5"):
        return layout.ENCODER_DECODER.to_dict()
    return layout.causal_lm(hf.get("bos_token_id")).to_dict()


def find_vocabulary(hf_dir: str | pathlib.Path) -> pathlib.Path | None:
    """The directory's SentencePiece model (`spiece.model` or `tokenizer.model`), if it has a loadable one.

    Tokenizers of other kinds (e.g. Llama 3's tiktoken `tokenizer.model`, `tokenizer.json` only) give None.
    """
    for name in sorted(set(VOCABULARY_FILES.values())):
        path = pathlib.Path(hf_dir) / name
        if path.is_file():
            try:
                sentencepiece.SentencePieceProcessor(model_file=str(path))
            except (RuntimeError, OSError):
                continue
            return path
    return None
