import jax.numpy as jnp
import numpy as np
from flax import nnx

from it_jax.models import scoring, t5
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
