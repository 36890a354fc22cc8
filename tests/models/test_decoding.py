import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from it_jax.models import decoder, decoding, t5

T5_CONFIG = t5.T5Config(vocab_size=48, d_model=16, d_ff=32, d_kv=4, num_heads=2, num_encoder_layers=1, num_decoder_layers=2)
DECODER_CONFIG = decoder.DecoderConfig(
    vocab_size=48, d_model=16, d_ff=32, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=4, prefix_lm=True
)
PROMPTS = np.random.default_rng(0).integers(2, 48, (3, 6)).astype(np.int32)

FAMILIES = {
    "t5": (lambda: t5.T5(T5_CONFIG, rngs=nnx.Rngs(1)), jnp.asarray(PROMPTS).at[1, 4:].set(0), None),
    "decoder": (lambda: decoder.Decoder(DECODER_CONFIG, rngs=nnx.Rngs(1)), jnp.asarray(PROMPTS), jnp.asarray([6, 3, 1])),
}


@nnx.jit(static_argnames=("max_decode_length", "method", "use_cache", "beam_size", "top_k", "length_penalty"))
def generate(model, inputs, lengths, rng, **kwargs):
    return decoding.generate(model, inputs, input_lengths=lengths, rng=rng, eos_id=1, **kwargs)


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize(
    "method, options",
    [("greedy", {}), ("sample", {"top_k": 5}), ("beam", {"beam_size": 3})],
)
def test_cached_and_uncached_decoding_give_identical_tokens(family, method, options):
    make, inputs, lengths = FAMILIES[family]
    model = make()
    kwargs = dict(max_decode_length=8, method=method, rng=jax.random.key(4), **options)
    cached = generate(model, inputs, lengths, use_cache=True, **kwargs)
    uncached = generate(model, inputs, lengths, use_cache=False, **kwargs)
    assert cached.shape == (3, 8) and cached.dtype == jnp.int32
    np.testing.assert_array_equal(cached, uncached)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_greedy_tokens_are_the_argmax_of_a_teacher_forced_pass(family):
    make, inputs, lengths = FAMILIES[family]
    model = make()
    tokens = generate(model, inputs, lengths, jax.random.key(0), max_decode_length=8, method="greedy", use_cache=True)
    argmax = np.asarray(jnp.argmax(model.logits_without_cache(inputs, tokens, input_lengths=lengths), axis=-1))
    for row, expected in zip(np.asarray(tokens), argmax):
        ids = row.tolist()
        end = ids.index(1) + 1 if 1 in ids else len(ids)
        assert ids[:end] == expected[:end].tolist()
        assert all(i == 0 for i in ids[end:])


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_one_beam_without_length_penalty_is_greedy(family):
    make, inputs, lengths = FAMILIES[family]
    model = make()
    common = dict(max_decode_length=8, use_cache=True)
    greedy = generate(model, inputs, lengths, jax.random.key(0), method="greedy", **common)
    beam = generate(model, inputs, lengths, jax.random.key(0), method="beam", beam_size=1, length_penalty=0.0, **common)
    np.testing.assert_array_equal(beam, greedy)


def test_beam_search_finds_a_likelier_sequence_than_greedy():
    make, inputs, lengths = FAMILIES["t5"]
    model = make()
    common = dict(max_decode_length=6, use_cache=True)
    greedy = generate(model, inputs, lengths, jax.random.key(0), method="greedy", **common)
    beam = generate(model, inputs, lengths, jax.random.key(0), method="beam", beam_size=4, length_penalty=0.0, **common)

    def log_prob(tokens):
        logits = model.logits_without_cache(inputs, tokens)
        token_lp = jnp.take_along_axis(jax.nn.log_softmax(logits), tokens[..., None], -1)[..., 0]
        # Count every position up to and including EOS (tokens after it are 0 and not scored).
        after_eos = jnp.cumsum(jnp.cumsum(tokens == 1, axis=1), axis=1) > 1
        return np.asarray(jnp.where(after_eos, 0.0, token_lp).sum(-1))

    assert np.all(log_prob(beam) >= log_prob(greedy) - 1e-5)


class _Scripted(nnx.Module):
    """A stand-in model emitting token 5 until a per-example step, then EOS (1)."""

    def __init__(self, eos_step):
        self.eos_step = jnp.asarray(eos_step)

    @staticmethod
    def _logits(step, cache):
        token = jnp.where(step == cache["eos_step"][0], 1, 5)
        return 10.0 * jax.nn.one_hot(token, 8)

    def prefill(self, inputs, *, max_decode_length, input_lengths=None):
        cache = {"eos_step": self.eos_step[None]}
        return self._logits(0, cache), cache

    def decode_step(self, tokens, step, cache):
        return self._logits(step + 1, cache), cache


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_decoding_stops_at_eos_per_example(method):
    tokens = decoding.generate(
        _Scripted([1, 3]), jnp.ones((2, 3), jnp.int32), max_decode_length=5, method=method, beam_size=2
    )
    np.testing.assert_array_equal(tokens, [[5, 1, 0, 0, 0], [5, 5, 5, 1, 0]])


def test_filter_logits_top_k_top_p_and_temperature():
    logits = jnp.log(jnp.asarray([[0.5, 0.3, 0.15, 0.05]]))
    kept = lambda x: np.isfinite(np.asarray(x))[0].tolist()  # noqa: E731
    assert kept(decoding.filter_logits(logits, top_k=2)) == [True, True, False, False]
    assert kept(decoding.filter_logits(logits, top_p=0.7)) == [True, True, False, False]
    assert kept(decoding.filter_logits(logits, top_p=0.5)) == [True, False, False, False]
    assert kept(decoding.filter_logits(logits, top_p=0.9)) == [True, True, True, False]
    np.testing.assert_allclose(decoding.filter_logits(logits, temperature=2.0), logits / 2.0)


def test_sampling_follows_the_filtered_distribution():
    logits = jnp.log(jnp.asarray([[0.6, 0.3, 0.1]]))
    keys = jax.random.split(jax.random.key(0), 4000)
    draws = jax.vmap(lambda k: jax.random.categorical(k, decoding.filter_logits(logits, top_k=2)[0]))(keys)
    counts = np.bincount(np.asarray(draws), minlength=3) / 4000
    np.testing.assert_allclose(counts, [2 / 3, 1 / 3, 0.0], atol=0.03)


def test_unknown_method_and_missing_rng_are_errors():
    make, inputs, lengths = FAMILIES["t5"]
    with pytest.raises(ValueError, match="method"):
        decoding.generate(make(), inputs, max_decode_length=2, method="nucleus")
    with pytest.raises(ValueError, match="rng"):
        decoding.generate(make(), inputs, max_decode_length=2, method="sample")
