"""Tests of the T5 model: masking, packing, dropout, dtypes, sharding annotations and the gin configs."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax import launch, sharding
from it_jax.models.t5 import T5, T5Config

GIN_MODELS = pathlib.Path(__file__).resolve().parents[2] / "it_jax" / "gin" / "models"

TINY = T5Config(
    vocab_size=64, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_encoder_layers=2, num_decoder_layers=2
)


@nnx.jit
def forward(model: T5, encoder_input_tokens, decoder_input_tokens, kwargs):
    return model(encoder_input_tokens, decoder_input_tokens, **kwargs)


@nnx.jit
def encode(model: T5, encoder_input_tokens):
    return model.encode(encoder_input_tokens)


@nnx.jit
def decode(model: T5, encoded, encoder_input_tokens, decoder_input_tokens):
    return model.decode(encoded, encoder_input_tokens, decoder_input_tokens)


def run(model: T5, encoder_input_tokens, decoder_input_tokens, **kwargs) -> np.ndarray:
    enc = jnp.asarray(encoder_input_tokens, jnp.int32)
    dec = jnp.asarray(decoder_input_tokens, jnp.int32)
    return np.asarray(forward(model, enc, dec, kwargs))


@pytest.fixture(scope="module")
def model() -> T5:
    return T5(TINY, rngs=nnx.Rngs(0))


def random_tokens(seed: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(seed).integers(2, TINY.vocab_size, size=shape)


def num_params(config: T5Config) -> int:
    abstract = nnx.eval_shape(lambda: T5(config, rngs=nnx.Rngs(0)))
    return sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))


def test_output_shapes_and_encode_decode_split(model):
    enc, dec = random_tokens(0, (2, 10)), random_tokens(1, (2, 6))
    logits = run(model, enc, dec)
    assert logits.shape == (2, 6, TINY.vocab_size) and logits.dtype == np.float32
    encoded = encode(model, jnp.asarray(enc))
    assert encoded.shape == (2, 10, TINY.d_model)
    np.testing.assert_allclose(decode(model, encoded, jnp.asarray(enc), jnp.asarray(dec)), logits, atol=1e-5)


def test_model_state_is_only_annotated_parameters(model):
    assert jax.tree.structure(nnx.state(model)) == jax.tree.structure(nnx.state(model, nnx.Param))
    known = {name for name, _ in sharding.DEFAULT_RULES}
    for path, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        axes = variable.get_metadata()["out_sharding"]
        assert len(axes) == variable[...].ndim, path
        assert set(axes) <= known, path


def test_parameter_names_are_stable(model):
    names = {".".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    for name in (
        "token_embedder.embedding",
        "encoder.relative_bias.embedding",
        "encoder.layers.0.attention.query.kernel",
        "encoder.layers.1.pre_attention_norm.scale",
        "encoder.layers.0.mlp.wi_0.kernel",
        "encoder.final_norm.scale",
        "decoder.layers.1.cross_attention.out.kernel",
        "decoder.layers.0.self_attention.key.kernel",
        "decoder.final_norm.scale",
        "decoder.logits_dense.kernel",
    ):
        assert name in names


def test_decoder_is_causal(model):
    enc = random_tokens(2, (1, 8))
    dec = np.concatenate([[[0]], random_tokens(3, (1, 6))], axis=1)
    changed = dec.copy()
    changed[0, 3] = (dec[0, 3] + 1) % TINY.vocab_size or 2
    a, b = run(model, enc, dec), run(model, enc, changed)
    np.testing.assert_allclose(a[:, :3], b[:, :3], atol=1e-6)
    assert np.all(np.abs(a[:, 3:] - b[:, 3:]).max(axis=-1) > 1e-4)


def test_extra_encoder_padding_changes_nothing(model):
    enc = random_tokens(4, (2, 8))
    enc[1, 5:] = 0
    dec = np.concatenate([np.zeros((2, 1), int), random_tokens(5, (2, 4))], axis=1)
    padded = np.pad(enc, ((0, 0), (0, 5)))
    np.testing.assert_allclose(run(model, enc, dec), run(model, padded, dec), atol=1e-5)
    encoded, encoded_padded = encode(model, jnp.asarray(enc)), encode(model, jnp.asarray(padded))
    np.testing.assert_allclose(encoded[0], encoded_padded[0, :8], atol=1e-5)
    np.testing.assert_allclose(encoded[1, :5], encoded_padded[1, :5], atol=1e-5)


def test_packed_sequences_match_separate_runs(model):
    inputs_a, inputs_b = random_tokens(6, (5,)), random_tokens(7, (4,))
    targets_a, targets_b = random_tokens(8, (3,)), random_tokens(9, (4,))
    dec_a, dec_b = np.concatenate([[0], targets_a[:-1]]), np.concatenate([[0], targets_b[:-1]])
    packed = run(
        model,
        [np.concatenate([inputs_a, inputs_b, [0, 0, 0]])],
        [np.concatenate([dec_a, dec_b, [0]])],
        encoder_segment_ids=jnp.asarray([[1] * 5 + [2] * 4 + [0] * 3]),
        decoder_segment_ids=jnp.asarray([[1] * 3 + [2] * 4 + [0]]),
        encoder_positions=jnp.asarray([list(range(5)) + list(range(4)) + [0] * 3]),
        decoder_positions=jnp.asarray([list(range(3)) + list(range(4)) + [0]]),
    )
    alone_a = run(model, [np.pad(inputs_a, (0, 7))], [np.pad(dec_a, (0, 5))])
    alone_b = run(model, [np.pad(inputs_b, (0, 8))], [np.pad(dec_b, (0, 4))])
    np.testing.assert_allclose(packed[0, :3], alone_a[0, :3], atol=1e-5)
    np.testing.assert_allclose(packed[0, 3:7], alone_b[0, :4], atol=1e-5)


def test_packing_needs_both_segment_ids(model):
    with pytest.raises(ValueError, match="segment_ids"):
        model.decode(
            jnp.zeros((1, 4, TINY.d_model)),
            jnp.ones((1, 4), jnp.int32),
            jnp.ones((1, 3), jnp.int32),
            decoder_segment_ids=jnp.ones((1, 3), jnp.int32),
        )


def test_dropout_only_with_rngs():
    model = T5(T5Config(**{**TINY.__dict__, "dropout_rate": 0.1}), rngs=nnx.Rngs(0))
    enc, dec = random_tokens(10, (2, 8)), random_tokens(11, (2, 5))
    deterministic = run(model, enc, dec)
    np.testing.assert_array_equal(deterministic, run(model, enc, dec))
    key = jax.random.key(1)
    dropped = run(model, enc, dec, rngs=nnx.Rngs(dropout=key))
    assert np.abs(dropped - deterministic).max() > 1e-3
    np.testing.assert_array_equal(dropped, run(model, enc, dec, rngs=nnx.Rngs(dropout=key)))
    assert np.abs(dropped - run(model, enc, dec, rngs=nnx.Rngs(dropout=jax.random.fold_in(key, 1)))).max() > 1e-3


def test_bfloat16_compute_returns_float32_logits():
    config = T5Config(**{**TINY.__dict__, "dtype": "bfloat16"})
    model = T5(config, rngs=nnx.Rngs(0))
    assert model.token_embedder.embedding[...].dtype == jnp.float32
    enc, dec = random_tokens(12, (2, 8)), random_tokens(13, (2, 5))
    logits = run(model, enc, dec)
    assert logits.dtype == np.float32 and np.isfinite(logits).all()
    reference = run(T5(TINY, rngs=nnx.Rngs(0)), enc, dec)
    np.testing.assert_allclose(logits, reference, atol=0.1 * np.abs(reference).max())


def test_tied_logits_have_no_output_head():
    model = T5(T5Config(**{**TINY.__dict__, "logits_via_embedding": True}), rngs=nnx.Rngs(0))
    assert not hasattr(model.decoder, "logits_dense")
    assert run(model, random_tokens(14, (1, 6)), random_tokens(15, (1, 4))).shape == (1, 4, TINY.vocab_size)


def test_sharded_forward_matches_unsharded(model):
    mesh = sharding.create_mesh(data=2, fsdp=2, tensor=2)
    graphdef, state = nnx.split(model)
    state = jax.device_put(state, sharding.state_shardings(state, mesh))
    enc, dec = random_tokens(16, (4, 8)), random_tokens(17, (4, 5))
    with jax.set_mesh(mesh):
        logits = run(nnx.merge(graphdef, state), enc, dec)
    np.testing.assert_allclose(logits, run(model, enc, dec), atol=1e-5)


@pytest.mark.parametrize(
    "name, dims, params",
    [
        ("t5_tiny", (128, 256, 32, 4, 2, 2, 0.0), 9_012_992),
        ("t5_small", (512, 1024, 64, 6, 8, 8, 0.1), 76_961_152),
        ("t5_base", (768, 2048, 64, 12, 12, 12, 0.1), 247_577_856),
    ],
)
def test_gin_configs(name, dims, params):
    path = GIN_MODELS / f"{name}.gin"
    assert f"{params:,}" in path.read_text().splitlines()[0]
    config = launch.gin_model_config(name)
    overridden = launch.gin_model_config(name, ["VOCAB_SIZE = 384", "DROPOUT_RATE = 0.05"])
    assert config.vocab_size == 32128 and config.mlp_activations == ("gelu", "linear")
    fields = ("d_model", "d_ff", "d_kv", "num_heads", "num_encoder_layers", "num_decoder_layers", "dropout_rate")
    assert tuple(getattr(config, f) for f in fields) == dims
    assert (overridden.vocab_size, overridden.dropout_rate) == (384, 0.05)
    assert num_params(config) == params
