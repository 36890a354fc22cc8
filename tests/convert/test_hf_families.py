"""Parity with transformers for the decoder families beyond Llama 2 / Qwen2: Llama 3.x rope scaling, Qwen3,
Mistral's and Qwen2's sliding windows and Gemma 2.

The windows (5-6 positions) are shorter than the 37-token sequences and the prompts plus generations, so that
they matter; each family's features are also switched off one at a time to show that the logits then differ."""

import dataclasses
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from flax import nnx
from safetensors.numpy import load_file

from it_jax import launch
from it_jax.convert import hf, hf_configs, tree
from it_jax.models import attention, decoder, decoding, registry

GIN_MODELS = pathlib.Path(__file__).resolve().parents[2] / "it_jax" / "gin" / "models"
EOS_ID = 1
LLAMA3_ROPE = {
    "rope_type": "llama3",
    "factor": 8.0,
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    # Tiny, so that a 16-dimensional head has short (kept), medium (interpolated) and long (divided) wavelengths.
    "original_max_position_embeddings": 64,
}
NAMES = ("llama3_scaled", "qwen3", "mistral_sliding", "qwen2_sliding", "gemma2")
ARCHITECTURES = {
    "llama3_scaled": "LlamaForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
    "mistral_sliding": "MistralForCausalLM",
    "qwen2_sliding": "Qwen2ForCausalLM",
    "gemma2": "Gemma2ForCausalLM",
}
GEMMA2 = dict(
    scale_embeddings=True, norm_scale_offset=1.0, post_norms=True, mlp_activations=("gelu", "linear"),
    tie_embeddings=True, norm_eps=1e-6,
)
# Each family's features, switched off one at a time (config changes, parameters to drop).
ABLATIONS = {
    "llama3_scaled": [({"rope_scaling": None}, ())],
    "qwen3": [({"qk_norm": False}, ("query_norm", "key_norm"))],
    "mistral_sliding": [({"sliding_window": None}, ())],
    "qwen2_sliding": [({"sliding_window": None, "sliding_window_layers": None}, ())],
    "gemma2": [
        ({"sliding_window": None, "sliding_window_layers": None}, ()),
        ({"sliding_window_layers": None}, ()),  # Windowed global layers.
        ({"scale_embeddings": False}, ()),
        ({"attn_logit_softcap": None}, ()),
        ({"final_logit_softcap": None}, ()),
        ({"query_pre_attn_scalar": None}, ()),
        ({"norm_scale_offset": 0.0}, ()),
    ],
}

SMALL_CONFIGS = {
    "llama3_scaled": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8,
        rope_theta=1e4, rope_scaling={**LLAMA3_ROPE, "original_max_position_embeddings": 16},
    ),
    "qwen3": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=10,
        qk_norm=True, tie_embeddings=True, norm_eps=1e-6, rope_theta=1e6,
    ),
    "mistral_sliding": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8, sliding_window=4,
    ),
    "qwen2_sliding": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=8, qkv_bias=True,
        tie_embeddings=True, sliding_window=4, sliding_window_layers=(1, 2),
    ),
    "gemma2": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=3, num_heads=4, num_kv_heads=2, head_dim=12, sliding_window=4,
        sliding_window_layers=(0, 2), attn_logit_softcap=1.5, final_logit_softcap=2.5, query_pre_attn_scalar=10.0,
        **GEMMA2,
    ),
}
# Gemma 2 with global attention in every layer (transformers still needs a sliding_window in its config).
SMALL_CONFIGS["gemma2_global"] = dataclasses.replace(
    SMALL_CONFIGS["gemma2"], sliding_window=None, sliding_window_layers=None
)


def build(name: str) -> transformers.PreTrainedModel:
    """A tiny random transformers model with every 1-D weight (norm scales) randomized."""
    torch.manual_seed(0)
    common = dict(
        vocab_size=192, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
        num_key_value_heads=2, initializer_range=0.1, bos_token_id=2, eos_token_id=EOS_ID, pad_token_id=0,
    )
    if name == "llama3_scaled":
        rope = {**LLAMA3_ROPE, "rope_theta": 10000.0}
        config = transformers.LlamaConfig(rope_parameters=rope, max_position_embeddings=256, rms_norm_eps=1e-5, **common)
        model = transformers.LlamaForCausalLM(config)
    elif name == "qwen3":  # head_dim 24, not hidden_size / heads = 16.
        config = transformers.Qwen3Config(head_dim=24, rope_theta=1e6, tie_word_embeddings=True, **common)
        model = transformers.Qwen3ForCausalLM(config)
    elif name == "mistral_sliding":
        model = transformers.MistralForCausalLM(transformers.MistralConfig(sliding_window=6, **common))
    elif name == "qwen2_sliding":  # Windows in layers 1 and 2 (from max_window_layers on).
        config = transformers.Qwen2Config(
            use_sliding_window=True, sliding_window=5, max_window_layers=1, tie_word_embeddings=True, **common
        )
        model = transformers.Qwen2ForCausalLM(config)
    else:  # Gemma 2: local layers 0 and 2, global layer 1; soft caps small enough to bite.
        config = transformers.Gemma2Config(
            head_dim=24, query_pre_attn_scalar=20, sliding_window=6, attn_logit_softcapping=2.0,
            final_logit_softcapping=3.0, attn_implementation="eager", **common,
        )
        model = transformers.Gemma2ForCausalLM(config)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.ndim == 1:
                parameter.add_(0.2 * torch.randn_like(parameter))
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Factory: name -> (transformers model, directory of its safetensors), saved once per module."""
    cache = {}

    def get(name):
        if name not in cache:
            model = build(name)
            directory = tmp_path_factory.mktemp(name)
            model.save_pretrained(directory, safe_serialization=True)
            cache[name] = (model, directory)
        return cache[name]

    return get


def our_logits(config, params, inputs):
    spec = registry.model_spec(config)
    return np.asarray(jax.jit(lambda p, x: spec.bind(p)(x))(params, jnp.asarray(inputs)))


def their_logits(model, inputs):
    with torch.no_grad():
        return model(input_ids=torch.tensor(inputs)).logits.numpy()


def until_eos(tokens):
    tokens = [int(t) for t in tokens]
    return tokens[: tokens.index(EOS_ID) + 1] if EOS_ID in tokens else tokens


def test_llama3_frequencies_match_transformers():
    config = transformers.LlamaConfig(
        hidden_size=256, num_attention_heads=2, rope_parameters={**LLAMA3_ROPE, "rope_theta": 10000.0}
    )
    theirs, _ = transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS["llama3"](config)
    scaling = decoder.DecoderConfig(
        vocab_size=8, d_model=8, d_ff=8, num_layers=1, num_heads=1, num_kv_heads=1, head_dim=128,
        rope_scaling=LLAMA3_ROPE,
    ).rope_scaling
    ours = np.asarray(attention.rope_frequencies(128, 10000.0, scaling))
    unscaled = np.asarray(attention.rope_frequencies(128, 10000.0))
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-6)
    # All three regimes occur: kept, interpolated, divided by the factor.
    ratio = unscaled / ours
    assert np.any(np.isclose(ratio, 1.0)) and np.any(np.isclose(ratio, 8.0))
    assert np.any((ratio > 1.01) & (ratio < 7.99))


@pytest.mark.parametrize("name", NAMES)
def test_logits_and_greedy_tokens_match_transformers(name, checkpoint):
    model, directory = checkpoint(name)
    config, params = hf.from_hf(directory)
    inputs = np.random.default_rng(0).integers(2, 192, (3, 37))
    reference = their_logits(model, inputs)
    diff = float(np.abs(our_logits(config, params, inputs) - reference).max())
    print(f"{name}: max |logit diff| vs transformers = {diff:.3g} (logits up to {np.abs(reference).max():.3g})")
    assert diff <= 1e-4
    # Each of the family's features matters: without it the logits are far off.
    for change, dropped in ABLATIONS[name]:
        plain = dataclasses.replace(config, **change)
        plain_params = tree.unflatten({p: v for p, v in tree.flatten(params).items() if p[-2] not in dropped})
        assert np.abs(our_logits(plain, plain_params, inputs) - reference).max() > 1e-2, change
    # Scanned layers (the per-layer windows carried through the scan) give the same logits.
    scanned = hf.from_hf(directory, scan_layers=True)
    np.testing.assert_allclose(our_logits(*scanned, inputs), reference, atol=1e-4)

    steps, lengths = 10, np.array([9, 5, 3])
    prompts = np.where(np.arange(9)[None] < lengths[:, None], inputs[:, :9], 0)
    settings = dict(do_sample=False, num_beams=1, max_new_tokens=steps, eos_token_id=EOS_ID, pad_token_id=0)
    with torch.no_grad():
        theirs = [
            model.generate(torch.tensor(row[None, :n]), attention_mask=torch.ones(1, n, dtype=torch.long), **settings)[0, n:]
            for row, n in zip(prompts, lengths)
        ]
    spec = registry.model_spec(config)
    generate = jax.jit(
        lambda p, x, n: decoding.generate(spec.bind(p), x, max_decode_length=steps, eos_id=EOS_ID, input_lengths=n)
    )
    ours = np.asarray(generate(params, jnp.asarray(prompts), jnp.asarray(lengths)))
    compared = 0
    for mine, reference_tokens in zip(ours, theirs):
        assert until_eos(mine) == until_eos(reference_tokens)
        compared += len(until_eos(reference_tokens))
    print(f"{name}: greedy tokens identical to transformers over {compared} tokens")
    assert compared >= 9


@pytest.mark.parametrize("name", NAMES)
def test_hf_to_it_to_hf_is_exact(name, checkpoint, tmp_path):
    _, directory = checkpoint(name)
    hf.to_hf(*hf.from_hf(directory), tmp_path)
    original = load_file(directory / hf.SAFETENSORS_FILE)
    exported = load_file(tmp_path / hf.SAFETENSORS_FILE)
    assert sorted(exported) == sorted(original)
    assert all(np.array_equal(exported[k], v) for k, v in original.items())
    assert hf.from_hf(tmp_path)[0] == hf.from_hf(directory)[0]


@pytest.mark.parametrize("name", [*NAMES, "gemma2_global"])
def test_it_to_hf_loads_in_transformers_with_the_same_logits(name, tmp_path, random_params):
    config = SMALL_CONFIGS[name]
    params = random_params(config, 3)
    hf.to_hf(config, params, tmp_path)
    config_back, params_back = hf.from_hf(tmp_path)
    assert config_back == config
    flat, flat_back = tree.flatten(params), tree.flatten(params_back)
    assert flat.keys() == flat_back.keys() and all(np.array_equal(flat[p], flat_back[p]) for p in flat)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert type(loaded).__name__ == ARCHITECTURES[name.replace("_global", "")]
    inputs = np.random.default_rng(0).integers(1, 96, (2, 29))
    diff = np.abs(our_logits(config, params, inputs) - their_logits(loaded, inputs)).max()
    print(f"{name}: exported model, max |logit diff| = {diff:.3g}")
    assert diff <= 1e-4


def test_config_json_round_trip_keeps_the_new_fields():
    for config in SMALL_CONFIGS.values():
        data = json.loads(json.dumps(registry.config_to_dict(config)))
        assert registry.config_from_dict(data) == config
    assert json.loads(json.dumps(registry.config_to_dict(SMALL_CONFIGS["llama3_scaled"])))["rope_scaling"]["factor"] == 8.0
    old = registry.config_to_dict(dataclasses.replace(SMALL_CONFIGS["qwen3"], qk_norm=False))
    new_fields = (
        "sliding_window", "sliding_window_layers", "scale_embeddings", "norm_scale_offset", "post_norms",
        "attn_logit_softcap", "final_logit_softcap", "query_pre_attn_scalar",
    )
    for field in ("rope_scaling", "qk_norm", *new_fields):
        del old[field]  # A model.json written before these fields existed.
    assert registry.config_from_dict(old) == dataclasses.replace(SMALL_CONFIGS["qwen3"], qk_norm=False)
    with pytest.raises(ValueError, match="rope_scaling must be"):
        dataclasses.replace(SMALL_CONFIGS["qwen3"], rope_scaling={"rope_type": "yarn", "factor": 4.0})


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("llama3_scaled", {"rope_parameters": {"rope_type": "yarn", "rope_theta": 1e4, "factor": 4.0}}, "rope type 'yarn'"),
        ("qwen3", {"attention_bias": True}, "Qwen3 attention_bias"),
        ("qwen3", {"use_sliding_window": True}, "sliding-window attention"),
        ("mistral_sliding", {"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ("gemma2", {"hidden_activation": "gelu"}, "Gemma 2 hidden_activation 'gelu'"),
        ("gemma2", {"attention_bias": True}, "Gemma 2 attention_bias"),
        ("gemma2", {"sliding_window": None}, r"sliding_attention layers \[0, 2\] without a sliding_window"),
        ("qwen2_sliding", {"layer_types": ["full_attention", "chunked_attention", "full_attention"]}, "layer_types"),
    ],
)
def test_unsupported_variants_are_rejected(name, change, message, checkpoint, tmp_path):
    _, source = checkpoint(name)
    config = {**json.loads((source / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / hf.SAFETENSORS_FILE).symlink_to(source / hf.SAFETENSORS_FILE)
    with pytest.raises(ValueError, match=f"config.json: {message}"):
        hf.from_hf(tmp_path)


@pytest.mark.parametrize(
    "name, params",
    [
        ("llama3_2_1b", 1_235_814_400),
        ("llama3_2_3b", 3_212_749_824),
        ("qwen3_0_6b", 596_049_920),
        ("qwen2_5_1_5b", 1_543_714_304),
        ("mistral_7b", 7_241_732_096),
        ("gemma2_2b", 2_614_341_888),
    ],
)
def test_gin_configs_have_the_published_parameter_counts(name, params):
    assert f"{params:,}" in (GIN_MODELS / f"{name}.gin").read_text().splitlines()[0]
    config = launch.gin_model_config(name)
    abstract = nnx.eval_shape(lambda: decoder.Decoder(config, rngs=nnx.Rngs(0)))
    assert sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))) == params
    assert (config.rope_scaling is not None) == name.startswith("llama") and config.qk_norm == name.startswith("qwen3")


# The published configs (config.json of Mistral-7B-v0.1, Gemma-2-2B, Qwen2.5-1.5B), in the fields that matter.
PUBLISHED = {
    "mistral_7b": dict(
        model_type="mistral", vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, head_dim=128, rms_norm_eps=1e-5, sliding_window=4096,
        tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    ),
    "gemma2_2b": dict(
        model_type="gemma2", vocab_size=256000, hidden_size=2304, intermediate_size=9216, num_hidden_layers=26,
        num_attention_heads=8, num_key_value_heads=4, head_dim=256, rms_norm_eps=1e-6, sliding_window=4096,
        query_pre_attn_scalar=256, attn_logit_softcapping=50.0, final_logit_softcapping=30.0,
        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    ),
    "qwen2_5_1_5b": dict(
        model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
        num_attention_heads=12, num_key_value_heads=2, head_dim=128, rms_norm_eps=1e-6, use_sliding_window=False,
        tie_word_embeddings=True, rope_parameters={"rope_type": "default", "rope_theta": 1000000.0},
    ),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_gin_configs_export_the_published_configs_whose_transformers_models_have_their_sizes(name):
    exported = hf_configs.decoder_config_to_hf(launch.gin_model_config(name))
    assert {k: exported[k] for k in PUBLISHED[name]} == PUBLISHED[name]
    if name == "gemma2_2b":  # transformers' default alternation: local attention in the even layers.
        assert exported["layer_types"] == transformers.Gemma2Config(num_hidden_layers=26).layer_types
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(transformers.AutoConfig.for_model(**exported))
    count = sum(p.numel() for p in model.parameters())
    assert f"{count:,}" in (GIN_MODELS / f"{name}.gin").read_text().splitlines()[0]


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("gemma2", {"post_norms": False}, r"needs all of them .* missing \['post_norms'\]"),
        ("llama3_scaled", {"final_logit_softcap": 30.0}, "Gemma 2's options"),
        ("mistral_sliding", {"sliding_window_layers": (1,)}, "Mistral windows every layer or none"),
        ("qwen2_sliding", {"sliding_window_layers": (0, 2)}, "Qwen2 windows the layers from max_window_layers"),
        ("qwen3", {"sliding_window": 4}, r"q/k norms \(Qwen3\) and a sliding window"),
    ],
)
def test_configs_without_a_transformers_family_are_refused_on_export(name, change, message):
    with pytest.raises(ValueError, match=message):
        hf_configs.decoder_config_to_hf(dataclasses.replace(SMALL_CONFIGS[name], **change))
