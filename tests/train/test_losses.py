import jax
import jax.numpy as jnp
import numpy as np
import pytest

from it_jax.train import losses


def _log_probs(logits):
    return np.asarray(jax.nn.log_softmax(jnp.asarray(logits)))


def _setup(seed=0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(2, 4, 7)).astype(np.float32)
    targets = np.asarray([[1, 2, 3, 0], [4, 5, 0, 0]])
    return logits, targets, (targets > 0).astype(np.float32)


def test_loss_counts_only_weighted_tokens_and_normalizes_by_them():
    logits, targets, weights = _setup()
    loss, stats = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))

    log_probs = _log_probs(logits)
    expected = -np.mean([log_probs[b, i, targets[b, i]] for b in range(2) for i in range(4) if targets[b, i] > 0])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    assert stats["tokens"] == 5
    np.testing.assert_allclose(stats["nll_sum"], 5 * expected, rtol=1e-6)


def test_correct_counts_weighted_tokens_whose_target_is_the_argmax():
    logits, _, weights = _setup(3)
    argmax = logits.argmax(-1)
    targets = np.where(np.arange(4) % 2 == 0, argmax, (argmax + 1) % 7)  # right at even positions only
    _, stats = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))
    assert stats["correct"] == ((targets == argmax) * weights).sum() == 3


def test_loss_is_finite_for_large_logits():
    logits = jnp.asarray([[[1e4, 0.0, -1e4]]])
    loss, stats = losses.cross_entropy(logits, jnp.asarray([[1]]), jnp.ones((1, 1)))
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)
    assert stats["correct"] == 0


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


def test_all_tokens_normalization_divides_by_every_target_position():
    logits, targets, weights = _setup()
    config = losses.LossConfig(normalization="all_tokens")
    loss, stats = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), config=config)
    np.testing.assert_allclose(loss, stats["nll_sum"] / 8, rtol=1e-6)


def test_per_sequence_normalization_averages_within_then_over_packed_sequences():
    logits, _, _ = _setup(2)
    # Row 0 packs two sequences (3 and 1 tokens); row 1 holds one of 2 tokens and padding.
    targets = np.asarray([[1, 2, 3, 4], [5, 6, 0, 0]])
    segments = np.asarray([[1, 1, 1, 2], [1, 1, 0, 0]])
    weights = (targets > 0).astype(np.float32)
    config = losses.LossConfig(normalization="per_sequence")
    loss, _ = losses.cross_entropy(
        jnp.asarray(logits),
        jnp.asarray(targets),
        jnp.asarray(weights),
        segment_ids=jnp.asarray(segments),
        config=config,
    )
    nll = -np.take_along_axis(_log_probs(logits), targets[..., None], axis=-1)[..., 0]
    expected = np.mean([nll[0, :3].mean(), nll[0, 3], nll[1, :2].mean()])
    np.testing.assert_allclose(loss, expected, rtol=1e-6)
    # Without segment ids each row is one sequence.
    unpacked, _ = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), config=config)
    np.testing.assert_allclose(unpacked, np.mean([nll[0].mean(), nll[1, :2].mean()]), rtol=1e-6)


def test_z_loss_adds_the_mean_squared_log_normalizer():
    logits, targets, weights = _setup(3)
    base, _ = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))
    config = losses.LossConfig(z_loss=1e-2)
    loss, stats = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), config=config)
    log_z = np.log(np.exp(logits.astype(np.float64)).sum(-1))
    expected_z = 1e-2 * (log_z**2 * weights).sum() / weights.sum()
    np.testing.assert_allclose(loss - base, expected_z, rtol=1e-5)
    np.testing.assert_allclose(stats["z_loss_sum"] / stats["tokens"], expected_z, rtol=1e-5)


def test_label_smoothing_is_cross_entropy_with_soft_targets_minus_their_entropy():
    logits, targets, weights = _setup(4)
    smoothing, vocab = 0.1, logits.shape[-1]
    config = losses.LossConfig(label_smoothing=smoothing)
    loss, stats = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), config=config)
    soft = np.full(logits.shape, smoothing / (vocab - 1))
    np.put_along_axis(soft, targets[..., None], 1 - smoothing, axis=-1)
    entropy = -(soft[0, 0] * np.log(soft[0, 0])).sum()
    per_token = -(soft * _log_probs(logits)).sum(-1) - entropy
    np.testing.assert_allclose(loss, (per_token * weights).sum() / weights.sum(), rtol=1e-5)
    # The logged cross-entropy stays the plain one.
    plain, _ = losses.cross_entropy(jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights))
    np.testing.assert_allclose(stats["nll_sum"] / stats["tokens"], plain, rtol=1e-6)


def test_a_given_normalizer_replaces_the_batch_s_own():
    logits, targets, weights = _setup()
    loss, stats = losses.cross_entropy(
        jnp.asarray(logits), jnp.asarray(targets), jnp.asarray(weights), normalizer=jnp.asarray(20.0)
    )
    np.testing.assert_allclose(loss, stats["loss_sum"] / 20.0, rtol=1e-6)


def test_invalid_settings_are_rejected():
    with pytest.raises(ValueError, match="unknown loss normalization"):
        losses.LossConfig(normalization="tokens")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.LossConfig(label_smoothing=1.0)
