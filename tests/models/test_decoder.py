"""Tests of the decoder-only model: causality, prefix-LM attention, packing, grouped-query shapes, gin files."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax import launch
from it_jax.convert import tree
from it_jax.models import registry
from it_jax.models.decoder import Decoder, DecoderConfig

GIN_MODELS = pathlib.Path(__file__).resolve().parents[2] / "it_jax" / "gin" / "models"

TINY = DecoderConfig(vocab_size=64, d_model=32, d_ff=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8)


@pytest.fixture(scope="module")
def model() -> Decoder:
    return Decoder(TINY, rngs=nnx.Rngs(0))


def tokens(seed: int, shape) -> jnp.ndarray:
    return jnp.asarray(np.random.default_rng(seed).integers(2, TINY.vocab_size, size=shape), jnp.int32)


def test_shapes_and_grouped_query_parameters(model):
    logits = model(tokens(0, (2, 7)))
    assert logits.shape == (2, 7, 64) and logits.dtype == jnp.float32
    params = nnx.state(model, nnx.Param).to_pure_dict()
    layer = params["layers"][0]
    assert layer["attention"]["query"]["kernel"].shape == (32, 4, 8)
    assert layer["attention"]["key"]["kernel"].shape == (32, 2, 8)
    assert "bias" not in layer["attention"]["query"]
    assert set(layer["mlp"]) == {"wi_0", "wi_1", "wo"} and "logits_dense" in params


def test_tied_embeddings_and_qkv_biases():
    config = DecoderConfig(**{**TINY.__dict__, "tie_embeddings": True, "qkv_bias": True})
    params = nnx.state(Decoder(config, rngs=nnx.Rngs(0)), nnx.Param).to_pure_dict()
    assert "logits_dense" not in params
    assert params["layers"][0]["attention"]["value"]["bias"].shape == (2, 8)
    assert "bias" not in params["layers"][0]["attention"]["out"]


def test_causal_model_ignores_the_future(model):
    x = tokens(1, (1, 8))
    changed = x.at[0, 5:].set(3)
    np.testing.assert_allclose(model(x)[0, :5], model(changed)[0, :5], atol=1e-6)
    assert not np.allclose(model(x)[0, 5:], model(changed)[0, 5:])


def test_prefix_lm_attends_bidirectionally_over_the_inputs_only():
    prefix = Decoder(DecoderConfig(**{**TINY.__dict__, "prefix_lm": True}), rngs=nnx.Rngs(0))
    x = tokens(2, (1, 8))
    inputs_mask = jnp.asarray([[1, 1, 1, 1, 0, 0, 0, 0]])
    base = prefix(x, inputs_mask=inputs_mask)
    # Changing an input token changes earlier input positions (bidirectional) ...
    later_input = prefix(x.at[0, 3].set(5), inputs_mask=inputs_mask)
    assert not np.allclose(base[0, 0], later_input[0, 0])
    # ... but a target token never influences earlier positions.
    later_target = prefix(x.at[0, 6].set(5), inputs_mask=inputs_mask)
    np.testing.assert_allclose(base[0, :6], later_target[0, :6], atol=1e-6)
    # Without inputs_mask (or without prefix_lm) the model is causal.
    np.testing.assert_allclose(prefix(x)[0, 0], prefix(x.at[0, 3].set(5))[0, 0], atol=1e-6)


def test_packed_sequences_match_separate_runs(model):
    a, b = tokens(3, (1, 5)), tokens(4, (1, 3))
    packed = jnp.concatenate([a, b, jnp.zeros((1, 2), jnp.int32)], axis=1)
    segment_ids = jnp.asarray([[1] * 5 + [2] * 3 + [0] * 2])
    positions = jnp.asarray([[0, 1, 2, 3, 4, 0, 1, 2, 0, 0]])
    logits = model(packed, segment_ids=segment_ids, positions=positions)
    np.testing.assert_allclose(logits[0, :5], model(a)[0], atol=1e-5)
    np.testing.assert_allclose(logits[0, 5:8], model(b)[0], atol=1e-5)


def test_prefill_matches_the_full_forward_for_padded_prompts(model):
    x = tokens(5, (2, 6))
    padded = x.at[1, 4:].set(0)
    logits, cache = model.prefill(padded, max_decode_length=3, input_lengths=jnp.asarray([6, 4]))
    np.testing.assert_allclose(logits[0], model(x)[0, -1], atol=1e-5)
    np.testing.assert_allclose(logits[1], model(x[1:2, :4])[0, -1], atol=1e-5)
    assert cache["kv"]["key"].shape == (2, 2, 9, 2, 8)


def test_features_boundary_reads_prefix_lm_features(model):
    x = tokens(6, (2, 6))
    features = {"decoder_input_tokens": x, "decoder_causal_attention": jnp.ones_like(x)}
    np.testing.assert_allclose(model.logits_from_features(features), model(x), atol=1e-6)


@pytest.mark.parametrize(
    "name, params",
    [("decoder_tiny", 9_012_352), ("llama3_2_1b", 1_235_814_400), ("qwen2_5_0_5b", 494_032_768)],
)
def test_gin_configs_have_the_published_parameter_counts(name, params):
    path = GIN_MODELS / f"{name}.gin"
    assert f"{params:,}" in path.read_text().splitlines()[0]
    config = launch.gin_model_config(name)
    abstract = nnx.eval_shape(lambda: Decoder(config, rngs=nnx.Rngs(0)))
    assert sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))) == params


# Gemma 2's options with a 3-position window in layers 0 and 2 (layer 1 global).
LOCAL = DecoderConfig(
    **{
        **TINY.__dict__,
        "num_layers": 3,
        "sliding_window": 3,
        "sliding_window_layers": (0, 2),
        "scale_embeddings": True,
        "norm_scale_offset": 1.0,
        "post_norms": True,
        "attn_logit_softcap": 2.0,
        "final_logit_softcap": 5.0,
        "query_pre_attn_scalar": 6.0,
        "mlp_activations": ("gelu", "linear"),
        "tie_embeddings": True,
    }
)


def random_model(config: DecoderConfig, seed: int = 0) -> Decoder:
    """A model with every parameter random (norm scales included, so that post-norms are not identities)."""
    model = Decoder(config, rngs=nnx.Rngs(seed))
    state = nnx.state(model, nnx.Param)
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(seed), len(leaves))
    noisy = [leaf + 0.3 * jax.random.normal(k, leaf.shape, leaf.dtype) for leaf, k in zip(leaves, keys)]
    nnx.update(model, jax.tree.unflatten(treedef, noisy))
    return model


def test_sliding_window_limits_each_query_to_recent_keys():
    model = random_model(DecoderConfig(**{**TINY.__dict__, "num_layers": 1, "sliding_window": 3}))
    x = tokens(7, (1, 8))
    base, changed = jax.jit(lambda t: model(t))(jnp.concatenate([x, x.at[0, 1].set(5)]))
    # Position 1 is in the window of queries 1..3 only.
    assert not np.allclose(base[1:4], changed[1:4])
    np.testing.assert_allclose(base[4:], changed[4:], atol=1e-6)
    np.testing.assert_allclose(base[0], changed[0], atol=1e-6)


def test_sliding_window_layers_are_checked():
    with pytest.raises(ValueError, match="need a sliding_window"):
        DecoderConfig(**{**TINY.__dict__, "sliding_window_layers": (0,)})
    with pytest.raises(ValueError, match="in \\[0, num_layers=2\\)"):
        DecoderConfig(**{**TINY.__dict__, "sliding_window": 4, "sliding_window_layers": (2,)})
    assert LOCAL.sliding_layers() == (True, False, True) and TINY.sliding_layers() == (False, False)


def decode_three_ways(config: DecoderConfig, params, inputs, lengths, generated):
    """Logits of `generated` after `inputs`: uncached, prefill + decode steps, and as a scored continuation."""

    def run(params):
        model = registry.model_spec(config).bind(params)
        expected = model.logits_without_cache(inputs, generated, input_lengths=lengths)
        logits, cache = model.prefill(inputs, max_decode_length=generated.shape[1], input_lengths=lengths)
        cached = [logits]
        for step in range(generated.shape[1] - 1):
            logits, cache = model.decode_step(generated[:, step], jnp.asarray(step), cache)
            cached.append(logits)
        scored = model.continuation_logits(inputs, generated[:, None], input_lengths=lengths)[:, 0]
        return expected, jnp.stack(cached, axis=1), scored

    return jax.jit(run)(params)


@pytest.mark.parametrize("scan", [False, True])
def test_cached_decoding_with_local_layers_matches_the_full_forward(scan):
    params = nnx.state(random_model(LOCAL), nnx.Param).to_pure_dict()
    config, params = tree.set_scan_layers(LOCAL, params, scan=scan)
    # Prompts of 7 and 4 tokens and 6 generated ones: windows of 3 matter in prefill, decoding and scoring.
    inputs = tokens(8, (2, 7)).at[1, 4:].set(0)
    lengths = jnp.asarray([7, 4])
    generated = tokens(9, (2, 6))
    expected, cached, scored = decode_three_ways(config, params, inputs, lengths, generated)
    np.testing.assert_allclose(cached, expected, atol=2e-5)
    np.testing.assert_allclose(scored, expected, atol=2e-5)
    if scan:
        return
    # The windows matter at these lengths, in the local layers only (so cached decoding that ignored them fails).
    for change in ({"sliding_window": None, "sliding_window_layers": None}, {"sliding_window_layers": None}):
        other = registry.model_spec(dataclasses.replace(config, **change)).bind(params)
        uncached = jax.jit(lambda: other.logits_without_cache(inputs, generated, input_lengths=lengths))()
        assert np.abs(uncached - expected).max() > 1e-3
