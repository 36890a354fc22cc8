"""The model families by name: building a module from its config, and configs to and from JSON dicts."""

from __future__ import annotations

import dataclasses
from typing import Any

from flax import nnx

from it_jax.models import decoder, t5
from it_jax.models.spec import ModelSpec

ModelConfig = t5.T5Config | decoder.DecoderConfig

FAMILIES: dict[str, tuple[type, type]] = {
    "t5": (t5.T5Config, t5.T5),
    "decoder": (decoder.DecoderConfig, decoder.Decoder),
}


def family(config: ModelConfig) -> str:
    """The family name ("t5" or "decoder") of a config."""
    for name, (config_type, _) in FAMILIES.items():
        if isinstance(config, config_type):
            return name
    raise TypeError(f"unknown model config type {type(config).__name__}; known: {sorted(FAMILIES)}")


def build(config: ModelConfig, rngs: nnx.Rngs) -> nnx.Module:
    """The model module a config describes, with parameters drawn from `rngs`."""
    return FAMILIES[family(config)][1](config, rngs=rngs)


def model_spec(config: ModelConfig) -> ModelSpec:
    """The `ModelSpec` (abstract parameters, builder) of the model a config describes."""
    return ModelSpec.create(lambda rngs: build(config, rngs))


def architecture(config: ModelConfig) -> str:
    """The feature converter a model consumes ("encoder_decoder", "decoder_only" or "prefix_lm")."""
    if isinstance(config, decoder.DecoderConfig):
        return "prefix_lm" if config.prefix_lm else "decoder_only"
    return "encoder_decoder"


def config_to_dict(config: ModelConfig) -> dict[str, Any]:
    """A JSON-serializable description: `{"family": ..., **fields}` (a decoder's `rope_scaling` as a dict)."""
    data = {"family": family(config), **dataclasses.asdict(config)}
    if data.get("rope_scaling") is not None:
        data["rope_scaling"] = dict(data["rope_scaling"])
    return data


def config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Inverse of `config_to_dict`; unknown fields raise with the family's field list."""
    data = dict(data)
    name = data.pop("family", None)
    if name not in FAMILIES:
        raise ValueError(f"model config family {name!r} unknown; expected one of {sorted(FAMILIES)}")
    config_type = FAMILIES[name][0]
    fields = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ValueError(f"unknown {config_type.__name__} fields {unknown}; known: {sorted(fields)}")
    return config_type(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
