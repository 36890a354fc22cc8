"""Hugging Face `config.json` <-> it_jax `DecoderConfig` for the decoder-only families: Llama (with Llama 3.x
rope scaling), Mistral (with its sliding window), Qwen2 (q/k/v biases; `use_sliding_window` in the layers from
`max_window_layers` on), Qwen3 (per-head query/key RMSNorms, no biases) and Gemma 2 (scaled embeddings, (1 + w)
norms, pre- and post-norms, soft-capped attention and output logits, alternating local and global attention,
GeGLU).

A configuration it_jax cannot represent exactly (another activation, rope type, sliding windows where the
family has none, biases elsewhere) is rejected with the reason, never converted approximately. On export the
family follows from the config: Gemma 2's options give "gemma2", q/k norms "qwen3", q/k/v biases "qwen2", a
sliding window in every layer "mistral", and anything else "llama" (a Mistral model without a window is a Llama).
"""

from __future__ import annotations

import pathlib
from collections.abc import Mapping
from typing import Any

from it_jax.models import attention, decoder

DECODER_MODEL_TYPES = ("llama", "qwen2", "qwen3", "mistral", "gemma2")
_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
}
# Gemma 2's MLP activation (GeGLU with the tanh approximation, it_jax's "gelu").
_GEMMA_ACTIVATION = "gelu_pytorch_tanh"
# transformers' Gemma 2 builds a sliding-window mask even when every layer is global, and needs a window for it:
# one longer than any sequence, so it would not matter even if used.
_UNUSED_GEMMA_WINDOW = 2**31 - 1


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
    """Rejects the attention variants of each family that it_jax lacks (biases elsewhere, Qwen3's windows)."""
    model_type = hf["model_type"]
    if model_type in ("llama", "mistral") and (hf.get("attention_bias") or hf.get("mlp_bias")):
        raise unsupported(where, "Llama attention_bias/mlp_bias (biases on all projections)")
    if model_type in ("qwen3", "gemma2") and hf.get("attention_bias"):
        family = {"qwen3": "Qwen3", "gemma2": "Gemma 2"}[model_type]
        raise unsupported(where, f"{family} attention_bias (biases on all attention projections)")
    if model_type == "gemma2" and hf.get("use_bidirectional_attention"):
        raise unsupported(where, "Gemma 2 use_bidirectional_attention")
    if model_type == "qwen3" and (
        hf.get("use_sliding_window") or any(t != "full_attention" for t in hf.get("layer_types") or [])
    ):
        raise unsupported(where, "sliding-window attention")


def _sliding_window_from_hf(hf: Mapping[str, Any], *, where: Any) -> dict[str, Any]:
    """`sliding_window` and `sliding_window_layers` of a config, as transformers applies them per family."""
    model_type, num_layers = hf["model_type"], hf["num_hidden_layers"]
    window = hf.get("sliding_window")
    if model_type in ("llama", "qwen3"):
        return {}
    if model_type == "mistral":  # MistralModel ignores layer_types: a window applies to every layer.
        return {"sliding_window": window} if window is not None else {}
    if model_type == "qwen2":
        window = window if hf.get("use_sliding_window") else None
        default = ["sliding_attention" if window is not None and i >= hf.get("max_window_layers", 28) else
                   "full_attention" for i in range(num_layers)]
    else:  # gemma2: local attention in the even layers unless layer_types says otherwise.
        default = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(num_layers)]
    layer_types = list(hf.get("layer_types") or default)
    unknown = set(layer_types) - {"sliding_attention", "full_attention"}
    if len(layer_types) != num_layers or unknown:
        raise unsupported(where, f"layer_types {layer_types} (one of full_attention/sliding_attention per layer)")
    sliding = tuple(i for i, kind in enumerate(layer_types) if kind == "sliding_attention")
    if not sliding:
        return {}
    if window is None:
        raise unsupported(where, f"sliding_attention layers {list(sliding)} without a sliding_window")
    return {"sliding_window": window, "sliding_window_layers": None if len(sliding) == num_layers else sliding}


def _gemma2_from_hf(hf: Mapping[str, Any], *, where: Any) -> dict[str, Any]:
    """The Gemma 2 options of a `gemma2` config."""
    activation = hf.get("hidden_activation") or hf.get("hidden_act") or _GEMMA_ACTIVATION
    if activation != _GEMMA_ACTIVATION:
        raise unsupported(where, f"Gemma 2 hidden_activation {activation!r} (only {_GEMMA_ACTIVATION!r})")
    scalar = hf.get("query_pre_attn_scalar", 256)
    return {
        "scale_embeddings": True,
        "norm_scale_offset": 1.0,
        "post_norms": True,
        "mlp_activations": ("gelu", "linear"),
        "attn_logit_softcap": hf.get("attn_logit_softcapping"),
        "final_logit_softcap": hf.get("final_logit_softcapping"),
        "query_pre_attn_scalar": None if scalar is None else float(scalar),
    }


def decoder_config_from_hf(hf: Mapping[str, Any], *, where: pathlib.Path) -> decoder.DecoderConfig:
    """The `DecoderConfig` of a Llama / Mistral / Qwen2 / Qwen3 / Gemma 2 `config.json` (as a dict)."""
    model_type = hf["model_type"]
    if model_type != "gemma2" and hf.get("hidden_act", "silu") != "silu":
        raise unsupported(where, f"hidden_act {hf['hidden_act']!r} (only silu)")
    rope = hf.get("rope_parameters") or hf.get("rope_scaling") or {}
    rope_scaling = _rope_scaling_from_hf(rope, where=where)
    _check_attention(hf, where=where)
    extra = _sliding_window_from_hf(hf, where=where)
    if model_type == "gemma2":
        extra.update(_gemma2_from_hf(hf, where=where))
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
        tie_embeddings=bool(hf.get("tie_word_embeddings", model_type == "gemma2")),
        **extra,
    )


def _is_gemma2(config: decoder.DecoderConfig) -> bool:
    """Whether `config` uses Gemma 2's options; raises unless it uses all those Gemma 2 always has."""
    options = {
        "scale_embeddings": config.scale_embeddings,
        "norm_scale_offset == 1": config.norm_scale_offset == 1.0,
        "post_norms": config.post_norms,
        "mlp_activations == ('gelu', 'linear')": config.mlp_activations == ("gelu", "linear"),
    }
    gemma = config.scale_embeddings or config.norm_scale_offset != 0.0 or config.post_norms
    gemma = gemma or config.attn_logit_softcap is not None or config.final_logit_softcap is not None
    if not gemma:
        return False
    missing = [name for name, present in options.items() if not present]
    if missing or config.qkv_bias or config.qk_norm:
        raise ValueError(
            f"a decoder with some of Gemma 2's options needs all of them and no q/k/v biases or q/k norms to "
            f"export as gemma2; missing {missing}, qkv_bias={config.qkv_bias}, qk_norm={config.qk_norm}"
        )
    return True


def _model_type(config: decoder.DecoderConfig) -> str:
    if _is_gemma2(config):
        return "gemma2"
    if config.query_pre_attn_scalar is not None and config.query_pre_attn_scalar != config.head_dim:
        raise ValueError("query_pre_attn_scalar other than head_dim exports only with Gemma 2's options")
    if config.mlp_activations != ("silu", "linear"):
        raise ValueError(f"decoder mlp_activations {config.mlp_activations}: Llama/Qwen/Mistral use ('silu', 'linear')")
    if config.qk_norm and config.qkv_bias:
        raise ValueError("a decoder with both q/k norms and q/k/v biases has no Hugging Face model type")
    sliding = config.sliding_layers()
    if config.qk_norm:
        if any(sliding):
            raise ValueError("a decoder with q/k norms (Qwen3) and a sliding window has no Hugging Face model type")
        return "qwen3"
    if config.qkv_bias:
        if any(sliding) and not all(sliding[sliding.index(True) :]):
            raise ValueError(
                f"sliding_window_layers {config.sliding_window_layers}: Qwen2 windows the layers from "
                "max_window_layers to the last"
            )
        return "qwen2"
    if any(sliding) and not all(sliding):
        raise ValueError(f"sliding_window_layers {config.sliding_window_layers}: Mistral windows every layer or none")
    return "mistral" if any(sliding) else "llama"


def _family_fields(config: decoder.DecoderConfig, model_type: str) -> dict[str, Any]:
    """The `config.json` fields particular to `model_type`."""
    sliding = config.sliding_layers()
    layer_types = ["sliding_attention" if s else "full_attention" for s in sliding]
    if model_type in ("llama", "mistral"):
        fields = {"attention_bias": False, "mlp_bias": False}
        return {**fields, "sliding_window": config.sliding_window} if model_type == "mistral" else fields
    if model_type == "qwen2" and any(sliding):
        window = {"sliding_window": config.sliding_window, "max_window_layers": sliding.index(True)}
        return {"use_sliding_window": True, **window, "layer_types": layer_types}
    if model_type in ("qwen2", "qwen3"):
        return {"use_sliding_window": False, **({"attention_bias": False} if model_type == "qwen3" else {})}
    scalar = config.query_pre_attn_scalar if config.query_pre_attn_scalar is not None else config.head_dim
    return {
        "hidden_activation": _GEMMA_ACTIVATION,
        "query_pre_attn_scalar": int(scalar) if float(scalar).is_integer() else scalar,
        "sliding_window": _UNUSED_GEMMA_WINDOW if config.sliding_window is None else config.sliding_window,
        "layer_types": layer_types,
        "attn_logit_softcapping": config.attn_logit_softcap,
        "final_logit_softcapping": config.final_logit_softcap,
        "attention_bias": False,
    }


def decoder_config_to_hf(config: decoder.DecoderConfig) -> dict[str, Any]:
    """The transformers `config.json` fields of a decoder: Llama, Mistral, Qwen2, Qwen3 or Gemma 2 (see above)."""
    if config.prefix_lm:
        raise ValueError(
            "prefix_lm models attend bidirectionally over their inputs, which the decoders in transformers cannot "
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
        "rms_norm_eps": config.norm_eps,
        "rope_parameters": rope,
        "tie_word_embeddings": config.tie_embeddings,
        "dtype": config.param_dtype,
    }
    if model_type != "gemma2":
        hf["hidden_act"] = "silu"
    return {**hf, **_family_fields(config, model_type)}
