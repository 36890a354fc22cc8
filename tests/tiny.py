"""Tiny models and batches shared by the trainer and reliability tests: a one-layer T5, and a toy LM with
stacked (scanned-shape) kernels. `tests/` is on the tests' import path (pytest.ini), so `import tiny` works."""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from it_jax.models import t5
from it_jax.models.spec import ModelSpec

TINY = t5.T5Config(
    vocab_size=64, d_model=32, d_ff=64, d_kv=8, num_heads=4, num_encoder_layers=1, num_decoder_layers=1
)


def make_batch(seed: int, batch_size: int = 8, inputs: int = 12, targets: int = 6) -> dict[str, np.ndarray]:
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


class StackedMlpLM(nnx.Module):
    """A minimal model with the trainer's interface whose layer kernels are stacked ([layers, d, f]), as
    a scanned model's are, and large enough (>= 128) for Adafactor to factor them."""

    def __init__(self, *, vocab: int = 128, d: int = 128, f: int = 256, layers: int = 2, rngs: nnx.Rngs):
        def param(shape, axes):
            init = nnx.with_partitioning(nnx.initializers.normal(shape[-2] ** -0.5), axes, eager_sharding=False)
            return nnx.Param(init(rngs.params(), shape, jnp.float32))

        self.embedding = param((vocab, d), ("vocab", "embed"))
        self.w_in = param((layers, d, f), ("layers", "embed", "mlp"))
        self.w_out = param((layers, f, d), ("layers", "mlp", "embed"))
        self.head = param((d, vocab), ("embed", "vocab"))

    def logits_from_features(self, features, *, rngs=None):
        x = self.embedding[...][features["decoder_input_tokens"]]
        for w_in, w_out in zip(self.w_in[...], self.w_out[...]):
            x = x + jnp.tanh(x @ w_in) @ w_out
        return x @ self.head[...]


def lm_batch(seed: int, batch_size: int = 8, length: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tgt = rng.integers(2, 128, (batch_size, length)).astype(np.int32)
    tgt[: batch_size // 2, -3:] = 0
    return {
        "decoder_input_tokens": np.pad(tgt, ((0, 0), (1, 0)))[:, :-1],
        "decoder_target_tokens": tgt,
        "decoder_loss_weights": (tgt > 0).astype(np.int32),
    }


def assert_bitwise_equal(a: Any, b: Any) -> None:
    """Two parameter trees have the same paths, dtypes and values, bit for bit."""
    from it_jax.convert import tree

    flat_a, flat_b = tree.flatten(a), tree.flatten(b)
    assert flat_a.keys() == flat_b.keys()
    for path, value in flat_a.items():
        other = np.asarray(flat_b[path])
        assert other.dtype == value.dtype and np.array_equal(other, value), tree.path_name(path)


def t5_trainer(
    *, learning_rate: float = 1e-2, devices: int = 1, config: t5.T5Config = TINY, **trainer_kwargs
) -> Any:
    """A `Trainer` of the tiny T5 (or `config`) with AdamW on the first `devices` devices (one data axis)."""
    from it_jax import sharding
    from it_jax.train import optimizers
    from it_jax.train import trainer as trainer_lib

    schedule = optimizers.make_schedule(base_learning_rate=learning_rate, warmup_steps=2, decay="constant")
    return trainer_lib.Trainer(
        spec=ModelSpec.create(lambda rngs: t5.T5(config, rngs=rngs)),
        optimizer=optimizers.make_optimizer(schedule, name="adamw"),
        schedule=schedule,
        mesh=sharding.create_mesh(devices=jax.devices()[:devices], data=devices),
        **trainer_kwargs,
    )


def t5_batches(position: int):
    """`trainer.train`'s input: the tiny T5's deterministic batches from `position` on."""
    while True:
        yield make_batch(position)
        position += 1


# gin bindings that shrink the demo's T5 (gin/runs/demo.gin) for the script and CLI tests.
T5_GIN_BINDINGS = [
    "T5Config.d_model = 32",
    "T5Config.d_ff = 64",
    "T5Config.d_kv = 8",
    "T5Config.num_heads = 2",
    "T5Config.num_encoder_layers = 1",
    "T5Config.num_decoder_layers = 1",
    "train_run.batch_size = 8",
]
