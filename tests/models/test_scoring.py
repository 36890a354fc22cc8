import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from it_jax.models import decoder, scoring, t5
from it_jax.train import losses

CONFIG = t5.T5Config(vocab_size=50, d_model=16, d_ff=32, d_kv=4, num_heads=2, num_encoder_layers=1, num_decoder_layers=1)


def test_shift_right_starts_from_zero():
    np.testing.assert_array_equal(scoring.shift_right(jnp.asarray([[5, 6, 1]])), [[0, 5, 6]])


def test_score_equals_the_training_loss_on_the_same_example():
    model = t5.T5(CONFIG, rngs=nnx.Rngs(0))
    inputs = jnp.asarray([[7, 8, 9, 1, 0]])
    targets = jnp.asarray([[11, 12, 1, 0]])
    total, mean = scoring.target_log_likelihood(model, inputs, targets)
    logits = model(inputs, scoring.shift_right(targets))
    loss, _ = losses.cross_entropy(logits, targets, (targets > 0).astype(jnp.float32))
    np.testing.assert_allclose(-mean[0], loss, rtol=1e-6)
    np.testing.assert_allclose(-total[0], 3 * loss, rtol=1e-6)


def test_decoder_only_scores_count_target_tokens_after_the_prompt():
    config = decoder.DecoderConfig(vocab_size=50, d_model=16, d_ff=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=8)
    model = decoder.Decoder(config, rngs=nnx.Rngs(0))
    prompt = jnp.asarray([[7, 8, 9, 0]])
    targets = jnp.asarray([[0, 12, 1, 0]])  # id 0 is a real token here: the length says what counts
    total, mean = scoring.target_log_likelihood(
        model, prompt, targets, input_lengths=jnp.asarray([3]), target_lengths=jnp.asarray([3])
    )
    sequence = jnp.asarray([[7, 8, 9, 0, 12, 1]])
    log_probs = jax.nn.log_softmax(model(sequence))
    expected = sum(float(log_probs[0, i - 1, sequence[0, i]]) for i in (3, 4, 5))
    np.testing.assert_allclose(total[0], expected, rtol=1e-5)
    np.testing.assert_allclose(mean[0], expected / 3, rtol=1e-5)
