"""Tiny models and batches for the trainer tests."""

import numpy as np
import pytest

from it_jax.models import t5
from it_jax.train import optimizers
from it_jax.train.state import ModelSpec

TINY = t5.T5Config(
    vocab_size=64, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_encoder_layers=2, num_decoder_layers=2
)


def _make_batch(seed: int, batch_size: int = 8, inputs: int = 12, targets: int = 6) -> dict[str, np.ndarray]:
    """A packed-format batch as seqio's EncDecFeatureConverter produces it (one segment per row)."""
    rng = np.random.default_rng(seed)
    enc = rng.integers(2, 64, (batch_size, inputs)).astype(np.int32)
    enc[:, -3:] = 0
    tgt = rng.integers(2, 64, (batch_size, targets)).astype(np.int32)
    tgt[:, -2:] = 0
    dec_in = np.pad(tgt, ((0, 0), (1, 0)))[:, :-1]
    dec_in[tgt == 0] = 0
    return {
        "encoder_input_tokens": enc,
        "encoder_segment_ids": (enc > 0).astype(np.int32),
        "encoder_positions": np.where(enc > 0, np.arange(inputs), 0).astype(np.int32),
        "decoder_target_tokens": tgt,
        "decoder_input_tokens": dec_in,
        "decoder_loss_weights": (tgt > 0).astype(np.int32),
        "decoder_segment_ids": (tgt > 0).astype(np.int32),
        "decoder_positions": np.where(tgt > 0, np.arange(targets), 0).astype(np.int32),
    }


@pytest.fixture
def make_batch():
    return _make_batch


@pytest.fixture
def spec() -> ModelSpec:
    return ModelSpec.create(lambda rngs: t5.T5(TINY, rngs=rngs))


@pytest.fixture
def schedule():
    return optimizers.make_schedule(base_learning_rate=1e-2, warmup_steps=2, decay="constant")


@pytest.fixture
def optimizer(schedule):
    return optimizers.make_optimizer(schedule, name="adamw")
