import jax.numpy as jnp
import numpy as np
from flax import nnx

from it_jax.models import decoding, scoring, t5

CONFIG = t5.T5Config(vocab_size=40, d_model=16, d_ff=32, d_kv=4, num_heads=2, num_encoder_layers=1, num_decoder_layers=2)


def test_greedy_tokens_are_the_argmax_of_a_teacher_forced_pass():
    model = t5.T5(CONFIG, rngs=nnx.Rngs(1))
    inputs = jnp.asarray([[3, 4, 5, 1, 0], [6, 7, 1, 0, 0]])
    tokens = decoding.greedy_decode(model, inputs, max_length=6, eos_id=1)
    assert tokens.shape == (2, 6)
    logits = model(inputs, scoring.shift_right(tokens))
    argmax = np.asarray(jnp.argmax(logits, axis=-1))
    for row, expected in zip(np.asarray(tokens), argmax):
        ids = row.tolist()
        end = ids.index(1) + 1 if 1 in ids else len(ids)
        assert ids[:end] == expected[:end].tolist()
        assert all(i == 0 for i in ids[end:])


class _Scripted:
    """A stand-in model whose next token is scripted per example (EOS at a chosen step)."""

    def __init__(self, eos_step):
        self.eos_step = jnp.asarray(eos_step)

    def encode(self, tokens):
        return tokens

    def decode(self, encoded, encoder_tokens, decoder_inputs):
        length = decoder_inputs.shape[1]
        step = jnp.arange(length)[None, :]
        token = jnp.where(step == self.eos_step[:, None], 1, 5)
        return jnp.eye(8)[token]


def test_decoding_stops_at_eos_per_example():
    tokens = decoding.greedy_decode(_Scripted([1, 3]), jnp.ones((2, 3), jnp.int32), max_length=5, eos_id=1)
    np.testing.assert_array_equal(tokens, [[5, 1, 0, 0, 0], [5, 5, 5, 1, 0]])
