import copy
import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from it_jax.convert import hf, tree
from it_jax.models import decoder, decoding, registry, t5

NAMES = ("t5_v1_1", "t5_original", "llama_gqa", "qwen2_bias")

SMALL_CONFIGS = {
    "t5_v1_1": t5.T5Config(
        vocab_size=96, d_model=16, d_ff=24, d_kv=4, num_heads=2, num_encoder_layers=2, num_decoder_layers=1
    ),
    "t5_original": t5.T5Config(
        vocab_size=96, d_model=16, d_ff=24, d_kv=4, num_heads=2, num_encoder_layers=1, num_decoder_layers=2,
        mlp_activations=("relu",), logits_via_embedding=True, dropout_rate=0.1,
    ),
    "llama_gqa": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=6, rope_theta=5e5
    ),
    "qwen2_bias": decoder.DecoderConfig(
        vocab_size=96, d_model=16, d_ff=24, num_layers=2, num_heads=2, num_kv_heads=1, head_dim=8,
        qkv_bias=True, tie_embeddings=True, norm_eps=1e-6,
    ),
}


def our_logits(config, params, batch):
    """it_jax's logits (jitted: compiling once beats dispatching every op eagerly)."""
    spec = registry.model_spec(config)
    if isinstance(config, t5.T5Config):
        forward = jax.jit(lambda p, x, y: spec.bind(p)(x, y))
        return np.asarray(forward(params, jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])))
    return np.asarray(jax.jit(lambda p, x: spec.bind(p)(x))(params, jnp.asarray(batch["inputs"])))


def until_eos(tokens, eos_id):
    tokens = [int(t) for t in tokens]
    return tokens[: tokens.index(eos_id) + 1] if eos_id in tokens else tokens


def assert_trees_equal(a, b):
    flat_a, flat_b = tree.flatten(a), tree.flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for path in flat_a:
        x, y = np.asarray(flat_a[path]), np.asarray(flat_b[path])
        assert x.dtype == y.dtype and np.array_equal(x, y), tree.path_name(path)


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_transformers(name, hf_checkpoint):
    checkpoint = hf_checkpoint(name)
    config, params = hf.from_hf(checkpoint.directory)
    batch = checkpoint.batch()
    reference = checkpoint.logits(batch)
    ours = our_logits(config, params, batch)
    if isinstance(config, t5.T5Config):
        assert config.logits_via_embedding == (name == "t5_original")
    diff = float(np.abs(ours - reference).max())
    print(f"{name}: max |logit diff| vs transformers = {diff:.3g} (logits up to {np.abs(reference).max():.3g})")
    assert ours.shape == reference.shape
    assert diff <= 1e-4


def transformers_greedy(model, inputs, lengths, *, steps, eos_id):
    """transformers' greedy continuations (generated tokens only): T5 batched, decoders one prompt at a time."""
    settings = dict(do_sample=False, num_beams=1, max_new_tokens=steps, eos_token_id=eos_id, pad_token_id=0)
    with torch.no_grad():
        if model.config.is_encoder_decoder:
            # transformers' T5 cache assumes as many decoder layers as encoder layers: decode without it.
            ids, mask = torch.tensor(inputs), torch.tensor(inputs != 0)
            out = model.generate(ids, attention_mask=mask, decoder_start_token_id=0, use_cache=False, **settings)
            return list(out[:, 1:])
        rows = [(torch.tensor(row[None, :n]), torch.ones(1, n, dtype=torch.long)) for row, n in zip(inputs, lengths)]
        return [model.generate(ids, attention_mask=mask, **settings)[0, ids.shape[1] :] for ids, mask in rows]


@pytest.mark.parametrize("name", NAMES)
def test_greedy_generation_matches_transformers(name, hf_checkpoint):
    checkpoint = hf_checkpoint(name)
    config, params = hf.from_hf(checkpoint.directory)
    spec = registry.model_spec(config)
    steps = 12
    inputs = checkpoint.batch(seed=1)["inputs"][:, :10]
    lengths = np.array([10, 6, 3])
    inputs = np.where(np.arange(10)[None] < lengths[:, None], inputs, 0)
    is_t5 = isinstance(config, t5.T5Config)
    # EOS: a token the first example emits mid-way, so that examples stop at different steps.
    eos_id = checkpoint.model.config.eos_token_id
    first = transformers_greedy(checkpoint.model, inputs, lengths, steps=steps, eos_id=eos_id)
    eos_id = next(int(t) for t in first[0][4:] if t != 0)
    theirs = transformers_greedy(checkpoint.model, inputs, lengths, steps=steps, eos_id=eos_id)

    @jax.jit
    def generate(params, inputs, lengths):
        model, lengths = spec.bind(params), None if is_t5 else lengths
        return decoding.generate(model, inputs, max_decode_length=steps, eos_id=eos_id, input_lengths=lengths)

    ours = np.asarray(generate(params, jnp.asarray(inputs), jnp.asarray(lengths)))
    compared = 0
    for mine, reference in zip(ours, theirs):
        expected = until_eos(reference, eos_id)
        assert until_eos(mine, eos_id) == expected
        assert not mine[len(expected):].any()  # zeros after EOS
        compared += len(expected)
    print(f"{name}: greedy generations identical to transformers over {compared} tokens (eos {eos_id})")
    assert compared >= 3 * 3 and eos_id in ours[0]


@pytest.mark.parametrize("name", NAMES)
def test_hf_to_it_to_hf_is_exact(name, hf_checkpoint, tmp_path):
    checkpoint = hf_checkpoint(name)
    hf.to_hf(*hf.from_hf(checkpoint.directory), tmp_path)
    original = load_file(checkpoint.directory / hf.SAFETENSORS_FILE)
    exported = load_file(tmp_path / hf.SAFETENSORS_FILE)
    assert sorted(exported) == sorted(original)
    for key, value in original.items():
        assert exported[key].dtype == value.dtype and np.array_equal(exported[key], value), key


@pytest.mark.parametrize("name", NAMES)
def test_it_to_hf_to_it_is_exact_and_loads_in_transformers(name, tmp_path, random_params):
    config = SMALL_CONFIGS[name]
    params = random_params(config, 3)
    hf.to_hf(config, params, tmp_path)
    config_back, params_back = hf.from_hf(tmp_path)
    assert config_back == config
    assert_trees_equal(params_back, params)

    auto = transformers.AutoModelForSeq2SeqLM if isinstance(config, t5.T5Config) else transformers.AutoModelForCausalLM
    loaded = auto.from_pretrained(tmp_path).eval()
    assert loaded.config.model_type == ("t5" if isinstance(config, t5.T5Config) else name.split("_")[0])
    rng = np.random.default_rng(0)
    batch = {"inputs": rng.integers(1, 96, (2, 11)), "targets": rng.integers(1, 96, (2, 7))}
    batch["targets"][:, 0] = 0
    with torch.no_grad():
        if isinstance(config, t5.T5Config):
            inputs, targets = torch.tensor(batch["inputs"]), torch.tensor(batch["targets"])
            reference = loaded(input_ids=inputs, decoder_input_ids=targets)
        else:
            reference = loaded(input_ids=torch.tensor(batch["inputs"]))
    assert np.abs(our_logits(config, params, batch) - reference.logits.numpy()).max() <= 1e-4


def test_scanned_layers_export_and_import(tmp_path, random_params):
    config = SMALL_CONFIGS["llama_gqa"]
    params = random_params(config)
    scanned_config, scanned = tree.set_scan_layers(config, params, scan=True)
    assert scanned["layers"]["mlp"]["wo"]["kernel"].shape == (2, 24, 16)
    hf.to_hf(scanned_config, scanned, tmp_path)
    config_back, params_back = hf.from_hf(tmp_path, scan_layers=True)
    assert config_back == scanned_config
    assert_trees_equal(params_back, scanned)


def test_sharded_safetensors_round_trip(tmp_path, random_params):
    config = SMALL_CONFIGS["t5_v1_1"]
    params = random_params(config)
    hf.to_hf(config, params, tmp_path, max_shard_bytes=8_000)
    index = json.loads((tmp_path / hf.SAFETENSORS_INDEX_FILE).read_text())
    assert len(set(index["weight_map"].values())) > 2
    assert not (tmp_path / hf.SAFETENSORS_FILE).exists()
    assert_trees_equal(hf.from_hf(tmp_path)[1], params)
    loaded = transformers.AutoModelForSeq2SeqLM.from_pretrained(tmp_path)
    assert torch.equal(loaded.shared.weight, torch.tensor(np.asarray(params["token_embedder"]["embedding"])))


def test_bfloat16_checkpoint_keeps_its_dtype(hf_checkpoint, tmp_path):
    checkpoint = hf_checkpoint("llama_gqa")
    copy.deepcopy(checkpoint.model).to(torch.bfloat16).save_pretrained(tmp_path / "bf16")
    config, params = hf.from_hf(tmp_path / "bf16")
    assert config.param_dtype == "bfloat16"
    assert params["layers"][0]["attention"]["query"]["kernel"].dtype == jnp.bfloat16
    hf.to_hf(config, params, tmp_path / "again")
    original = load_file(tmp_path / "bf16" / hf.SAFETENSORS_FILE)
    exported = load_file(tmp_path / "again" / hf.SAFETENSORS_FILE)
    assert all(np.array_equal(exported[k].view(np.uint16), v.view(np.uint16)) for k, v in original.items())
    assert hf.from_hf(tmp_path / "bf16", param_dtype="float32")[0].param_dtype == "float32"


def test_vocabulary_files_are_found_and_copied(shared_data, tmp_path, random_params):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    config = SMALL_CONFIGS["t5_v1_1"]
    hf.to_hf(config, random_params(config), tmp_path / "t5", vocabulary_path=spiece)
    assert (tmp_path / "t5" / "spiece.model").read_bytes() == spiece.read_bytes()
    assert hf.find_vocabulary(tmp_path / "t5") == tmp_path / "t5" / "spiece.model"
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "tokenizer.model").write_bytes(b"not a sentencepiece model")
    assert hf.find_vocabulary(tmp_path / "other") is None


def test_missing_config_json_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"config\.json not found: expected a Hugging Face model directory"):
        hf.from_hf(tmp_path)


def test_unsupported_model_type_is_a_clear_error(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type 'bert' is not supported; supported: t5, llama, qwen2"):
        hf.from_hf(tmp_path)


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("llama_gqa", {"rope_parameters": {"rope_type": "llama3", "rope_theta": 5e5}}, "rope type 'llama3'"),
        ("llama_gqa", {"hidden_act": "gelu"}, "hidden_act 'gelu'"),
        ("qwen2_bias", {"use_sliding_window": True, "sliding_window": 4, "layer_types": ["full_attention"]}, "layer_"),
        ("t5_v1_1", {"feed_forward_proj": "gelu"}, "feed_forward_proj 'gelu'"),
    ],
)
def test_unsupported_configs_are_rejected(name, change, message, hf_checkpoint, tmp_path):
    source = hf_checkpoint(name).directory
    config = {**json.loads((source / "config.json").read_text()), **change}
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / hf.SAFETENSORS_FILE).symlink_to(source / hf.SAFETENSORS_FILE)
    with pytest.raises(ValueError, match=f"config.json: {message}"):
        hf.from_hf(tmp_path)


def test_missing_tensor_and_wrong_shape_are_named(hf_checkpoint, tmp_path):
    source = hf_checkpoint("llama_gqa").directory
    tensors = load_file(source / hf.SAFETENSORS_FILE)
    (tmp_path / "config.json").write_text((source / "config.json").read_text())
    dropped = {k: v for k, v in tensors.items() if k != "model.layers.1.mlp.up_proj.weight"}
    save_file(dropped, tmp_path / hf.SAFETENSORS_FILE)
    with pytest.raises(ValueError, match=r"missing model\.layers\.1\.mlp\.up_proj\.weight; unexpected none"):
        hf.from_hf(tmp_path)
    tensors["model.norm.weight"] = np.ones(65, np.float32)
    save_file(tensors, tmp_path / hf.SAFETENSORS_FILE)
    with pytest.raises(ValueError, match=r"tensor model\.norm\.weight has shape \(65,\), config\.json implies \(64,\)"):
        hf.from_hf(tmp_path)


def test_export_refuses_a_non_empty_directory(tmp_path, random_params):
    (tmp_path / "keep.txt").write_text("x")
    config = SMALL_CONFIGS["qwen2_bias"]
    with pytest.raises(FileExistsError, match="not empty"):
        hf.to_hf(config, random_params(config), tmp_path)
    prefix_lm = dataclasses.replace(config, prefix_lm=True)
    with pytest.raises(ValueError, match="prefix_lm"):
        hf.to_hf(prefix_lm, random_params(prefix_lm), tmp_path / "new")
