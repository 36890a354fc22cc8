"""Hugging Face `config.json` <-> it_jax `DecoderConfig` for the decoder-only families: Llama (with Llama 3.x
rope scaling), Qwen2 (q/k/v biases) and Qwen3 (per-head query/key RMSNorms, no biases).

A configuration it_jax cannot represent exactly (another activation, rope type, sliding windows, biases
elsewhere) is rejected with the reason, never converted approximately.
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from it_jax.models import attention, decoder

DECODER_MODEL_TYPES = ("llama", "qwen2", "qwen3")
_ARCHITECTURES = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}


def unsupported(where: Any, message: str) -> ValueError:
    """The error for a Hugging Face setting the converter cannot represent in it_jax."""
    return ValueError(f"{where}: {message}; this converter cannot represent it in it_jax")


def _rope_scaling_from_hf(rope: Mapping[str, Any], *, where: Any) -> dict[str, Any] | None:
    """The `DecoderConfig.rope_scaling` of HF rope parameters (None for the default, unscaled rope)."""
    if any(isinstance(v, Mapping) for v in rope.values()):
        raise unsupported(where, "rope parameters per layer type")
    if rope.get("partial_rotary_factor", 1.0) != 1.0:
        raise unsupported(where, f"partial_rotary_factor {rope['partial_rotary_factor']}")
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "default":
        return None
    if rope_type != "llama3":
        raise unsupported(where, f"rope type {rope_type!r} (only the default rope and Llama 3's scaling)")
    missing = [k for k in attention.LLAMA3_SCALING_KEYS if rope.get(k) is None]
    if missing:
        raise unsupported(where, f"rope type 'llama3' without {missing}")
    return {"rope_type": "llama3", **{k: rope[k] for k in attention.LLAMA3_SCALING_KEYS}}


def _check_attention(hf: Mapping[str, Any], *, where: Any) -> None:
    """Rejects the attention variants of each family that it_jax lacks (biases elsewhere, sliding windows)."""
    model_type = hf["model_type"]
    if model_type == "llama" and (hf.get("attention_bias") or hf.get("mlp_bias")):
        raise unsupported(where, "Llama attention_bias/mlp_bias (biases on all projections)")
    if model_type == "qwen3" and hf.get("attention_bias"):
        raise unsupported(where, "Qwen3 attention_bias (biases on all attention projections)")
    if model_type in ("qwen2", "qwen3") and (
        hf.get("use_sliding_window") or any(t != "full_attention" for t in hf.get("layer_types") or [])
    ):
        raise unsupported(where, "sliding-window attention")


def decoder_config_from_hf(hf: Mapping[str, Any], *, where: pathlib.Path) -> decoder.DecoderConfig:
    """The `DecoderConfig` of a Llama / Qwen2 / Qwen3 `config.json` (as a dict)."""
    model_type = hf["model_type"]
    if hf.get("hidden_act", "silu") != "silu":
        raise unsupported(where, f"hidden_act {hf['hidden_act']!r} (only silu)")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    rope_scaling = _rope_scaling_from_hf(rope, where=where)
    _check_attention(hf, where=where)
    num_heads = hf["num_attention_heads"]
    return decoder.DecoderConfig(
        vocab_size=hf["vocab_size"],
        d_model=hf["hidden_size"],
        d_ff=hf["intermediate_size"],
        num_layers=hf["num_hidden_layers"],
        num_heads=num_heads,
        num_kv_heads=hf.get("num_key_value_heads") or num_heads,
        head_dim=hf.get("head_dim") or hf["hidden_size"] // num_heads,
        rope_theta=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))),
        rope_scaling=rope_scaling,
        norm_eps=hf.get("rms_norm_eps", 1e-6),
        qkv_bias=model_type == "qwen2",
        qk_norm=model_type == "qwen3",
        tie_embeddings=bool(hf.get("tie_word_embeddings", False)),
    )


def _model_type(config: decoder.DecoderConfig) -> str:
    if config.qk_norm and config.qkv_bias:
        raise ValueError("a decoder with both q/k norms and q/k/v biases has no Hugging Face model type")
    return "qwen3" if config.qk_norm else "qwen2" if config.qkv_bias else "llama"


def decoder_config_to_hf(config: decoder.DecoderConfig) -> dict[str, Any]:
    """The transformers `config.json` fields of a decoder: Llama, Qwen2 (`qkv_bias`) or Qwen3 (`qk_norm`)."""
    if config.mlp_activations != ("silu", "linear"):
        raise ValueError(f"decoder mlp_activations {config.mlp_activations}: Llama/Qwen need ('silu', 'linear')")
    if config.prefix_lm:
        raise ValueError(
            "prefix_lm models attend bidirectionally over their inputs, which Llama/Qwen in transformers cannot "
            "express; export a causal (prefix_lm=False) model"
        )
    model_type = _model_type(config)
    rope = {"rope_type": "default", "rope_theta": config.rope_theta}
    if config.rope_scaling is not None:
        rope.update(config.rope_scaling, rope_theta=config.rope_theta)
    hf = {
        "architectures": [_ARCHITECTURES[model_type]],
        "model_type": model_type,
        "vocab_size": config.vocab_size,
        "hidden_size": config.d_model,
        "intermediate_size": config.d_ff,
        "num_hidden_layers": config.num_layers,
        "num_attention_heads": config.num_heads,
        "num_key_value_heads": config.num_kv_heads,
        "head_dim": config.head_dim,
        "hidden_act": "silu",
        "rms_norm_eps": config.norm_eps,
        "rope_parameters": rope,
        "tie_word_embeddings": config.tie_embeddings,
        "dtype": config.param_dtype,
    }
    if model_type == "llama":
        hf.update(attention_bias=False, mlp_bias=False)
    else:
        hf.update(use_sliding_window=False)
    if model_type == "qwen3":
        hf.update(attention_bias=False)
    return hf
