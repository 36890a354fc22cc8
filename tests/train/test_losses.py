import jax
import jax.numpy as jnp
import numpy as np

from it_jax.train import losses


def test_loss_counts_only_weighted_tokens_and_normalizes_by_them():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(2, 4, 7)), jnp.float32)
    targets = jnp.asarray([[1, 2, 3, 0], [4, 5, 0, 0]])
    weights = (targets > 0).astype(jnp.float32)
    loss, stats = losses.cross_entropy(logits, targets, weights)

    log_probs = np.asarray(jax.nn.log_softmax(logits))
    expected = -np.mean([log_probs[b, i, targets[b, i]] for b in range(2) for i in range(4) if targets[b, i] > 0])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert stats["tokens"] == 5


def test_padding_logits_do_not_change_the_loss():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(1, 3, 5)).astype(np.float32)
    targets = jnp.asarray([[1, 2, 0]])
    weights = jnp.asarray([[1.0, 1.0, 0.0]])
    changed = logits.copy()
    changed[0, 2] += 100.0
    a, _ = losses.cross_entropy(jnp.asarray(logits), targets, weights)
    b, _ = losses.cross_entropy(jnp.asarray(changed), targets, weights)
    np.testing.assert_allclose(a, b, rtol=0, atol=0)
