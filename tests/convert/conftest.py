"""Tiny random transformers models (CPU, float32) for the conversion tests, built from configs in code."""

from __future__ import annotations

import dataclasses
import pathlib

import numpy as np
import pytest
import torch
import transformers

from it_jax.convert import tree

# The models' EOS id, used by the generation comparisons.
EOS_ID = 1
# T5 v1.1 (gated GELU, untied head), original T5 (ReLU, tied and rescaled head), Llama with grouped-query
# attention (4 heads, 2 kv heads), Qwen2 (q/k/v biases, tied head).
NAMES = ("t5_v1_1", "t5_original", "llama_gqa", "qwen2_bias")


def build(name: str, *, seed: int = 0) -> transformers.PreTrainedModel:
    """One of `NAMES`, with every 1-D weight (norm scales, biases) randomized so that each one is tested."""
    if name not in NAMES:
        raise ValueError(f"unknown test model {name!r}; choose one of {NAMES}")
    torch.manual_seed(seed)
    if name.startswith("t5"):
        gated = name == "t5_v1_1"
        config = transformers.T5Config(
            vocab_size=160,
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_decoder_layers=3,
            num_heads=4,
            feed_forward_proj="gated-gelu" if gated else "relu",
            tie_word_embeddings=not gated,
            dropout_rate=0.0,
            eos_token_id=EOS_ID,
        )
        model = transformers.T5ForConditionalGeneration(config)
        if gated:  # Flan-T5's untied head (transformers 5 creates T5 v1.1 with a tied one).
            model.lm_head.weight = torch.nn.Parameter(torch.randn(160, 32) * 0.3)
    else:
        common = dict(
            vocab_size=192,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=3,
            num_attention_heads=4,
            num_key_value_heads=2,
            initializer_range=0.1,
            bos_token_id=2,
            eos_token_id=EOS_ID,
            pad_token_id=0,
        )
        if name == "llama_gqa":
            config = transformers.LlamaConfig(rope_theta=500000.0, rms_norm_eps=1e-5, **common)
            model = transformers.LlamaForCausalLM(config)
        else:
            config = transformers.Qwen2Config(rope_theta=1000000.0, tie_word_embeddings=True, **common)
            model = transformers.Qwen2ForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


@dataclasses.dataclass(frozen=True)
class HFCheckpoint:
    """A tiny transformers model and the directory its `save_pretrained` wrote."""

    name: str
    model: transformers.PreTrainedModel
    directory: pathlib.Path

    def batch(self, *, seed: int = 0) -> dict[str, np.ndarray]:
        """Random ids: T5 inputs with padding and decoder inputs starting at 0; full decoder-only sequences."""
        rng = np.random.default_rng(seed)
        vocab = self.model.config.vocab_size
        if self.model.config.is_encoder_decoder:
            inputs = rng.integers(2, vocab, (3, 40))
            inputs[1, 30:] = 0
            inputs[2, 9:] = 0
            targets = rng.integers(2, vocab, (3, 24))
            targets[:, 0] = 0
            return {"inputs": inputs, "targets": targets}
        return {"inputs": rng.integers(2, vocab, (3, 37))}

    def logits(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """transformers' float32 logits of a `batch()`."""
        return model_logits(self.model, batch)


def model_logits(model: transformers.PreTrainedModel, batch: dict[str, np.ndarray]) -> np.ndarray:
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            out = model(
                input_ids=torch.tensor(batch["inputs"]),
                attention_mask=torch.tensor(batch["inputs"] != 0),
                decoder_input_ids=torch.tensor(batch["targets"]),
            )
        else:
            out = model(input_ids=torch.tensor(batch["inputs"]))
    return out.logits.numpy()


@pytest.fixture(scope="session")
def random_params():
    """Factory: (config, seed) -> random numpy parameters of the config's shapes and dtypes.

    Drawn with numpy: compiling JAX's initializers costs seconds even for tiny models. Norm scales are
    centred on 1 so that a parameter mapped to the wrong norm shows in the logits.
    """

    def make(config, seed: int = 0):
        rng = np.random.default_rng(seed)
        flat = {}
        for path, leaf in tree.expected_params(config).items():
            values = rng.normal(0.0, 0.3, leaf.shape) + (1.0 if path[-1] == "scale" else 0.0)
            flat[path] = values.astype(leaf.dtype)
        return tree.unflatten(flat)

    return make


@pytest.fixture(scope="session")
def hf_checkpoint(tmp_path_factory):
    """Factory: name (one of NAMES) -> `HFCheckpoint`, built and saved once per session."""
    cache: dict[str, HFCheckpoint] = {}

    def get(name: str) -> HFCheckpoint:
        if name not in cache:
            model = build(name)
            directory = tmp_path_factory.mktemp(name)
            model.save_pretrained(directory, safe_serialization=True)
            cache[name] = HFCheckpoint(name, model, directory)
        return cache[name]

    return get


@pytest.fixture(scope="session")
def transformers_logits():
    """`model_logits` (transformers' float32 logits of a `HFCheckpoint.batch()`-shaped batch), for other test files."""
    return model_logits
