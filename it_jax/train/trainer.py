"""The training loop: sharded state, a jitted step with explicit shardings, checkpoints and resumption.

The same code runs on one CPU, one GPU or a multi-host mesh: the state is created directly in its
sharding, each host feeds its own shard of the batch, and `jax.jit` is given explicit in/out shardings.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import sharding as sharding_lib
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import losses
from it_jax.train import metrics as metrics_lib
from it_jax.train.state import ModelSpec, TrainState, abstract_state, create_state, state_shardings

Batch = dict[str, jax.Array]


def model_logits(model: nnx.Module, batch: Mapping[str, jax.Array], rngs: nnx.Rngs | None = None) -> jax.Array:
    """Runs an encoder-decoder model on the feature converter's packed features."""
    return model(
        batch["encoder_input_tokens"],
        batch["decoder_input_tokens"],
        encoder_segment_ids=batch.get("encoder_segment_ids"),
        decoder_segment_ids=batch.get("decoder_segment_ids"),
        encoder_positions=batch.get("encoder_positions"),
        decoder_positions=batch.get("decoder_positions"),
        rngs=rngs,
    )


def loss_fn(
    params: Any, spec: ModelSpec, batch: Mapping[str, jax.Array], rngs: nnx.Rngs | None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Cross-entropy of the targets, normalized by the number of real target tokens."""
    logits = model_logits(spec.bind(params), batch, rngs)
    return losses.cross_entropy(logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"])


def train_step(
    state: TrainState,
    batch: Batch,
    *,
    spec: ModelSpec,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    dropout_seed: int,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step; dropout randomness is derived from (seed, step), so resuming reproduces it."""
    rngs = nnx.Rngs(dropout=jax.random.fold_in(jax.random.key(dropout_seed), state.step))
    (_, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, spec, batch, rngs)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    real_tokens = sum((batch[k] > 0).sum() for k in ("encoder_input_tokens", "decoder_target_tokens") if k in batch)
    stats = {
        **stats,
        "learning_rate": schedule(state.step),
        "grad_norm": optax.global_norm(grads),
        "real_tokens": real_tokens.astype(jnp.float32),
    }
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), stats


@dataclasses.dataclass
class Trainer:
    """Holds the compiled step and the state's shardings for one model, optimizer and mesh."""

    spec: ModelSpec
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    mesh: Mesh
    rules: sharding_lib.AxisRules = sharding_lib.DEFAULT_RULES
    dropout_seed: int = 0

    def __post_init__(self):
        with sharding_lib.axis_rules(self.rules):
            self.state_shardings = state_shardings(self.spec, self.optimizer, self.mesh)
            self.data_sharding = sharding_lib.data_sharding(self.mesh)
        replicated = NamedSharding(self.mesh, PartitionSpec())
        self._step = jax.jit(
            functools.partial(
                train_step,
                spec=self.spec,
                optimizer=self.optimizer,
                schedule=self.schedule,
                dropout_seed=self.dropout_seed,
            ),
            in_shardings=(self.state_shardings, self.data_sharding),
            out_shardings=(self.state_shardings, replicated),
            donate_argnums=(0,),
        )

    def init(self, seed: int) -> TrainState:
        with sharding_lib.axis_rules(self.rules):
            return create_state(self.spec, self.optimizer, self.mesh, seed=seed)

    def abstract_state(self) -> TrainState:
        with sharding_lib.axis_rules(self.rules):
            return abstract_state(self.spec, self.optimizer, self.mesh)

    def to_global(self, host_batch: Mapping[str, np.ndarray]) -> Batch:
        """Assembles each host's share of the batch into global arrays sharded over the batch axes."""
        return {k: jax.make_array_from_process_local_data(self.data_sharding, v) for k, v in host_batch.items()}

    def step(self, state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        with jax.set_mesh(self.mesh), sharding_lib.axis_rules(self.rules):
            return self._step(state, batch)


def train(
    *,
    trainer: Trainer,
    batches: Callable[[int], Iterator[Mapping[str, np.ndarray]]],
    model_dir: str | pathlib.Path,
    num_steps: int,
    seed: int = 0,
    save_every: int = 100,
    keep_checkpoints: int | None = 3,
    log_every: int = 10,
    metadata: Mapping[str, Any] | None = None,
) -> TrainState:
    """Trains to `num_steps`, resuming from the latest checkpoint in `model_dir` if there is one.

    Args:
      trainer: the compiled step for a model, optimizer and mesh.
      batches: `skip -> iterator of host batches`, starting after `skip` batches (for resumption).
      model_dir: where checkpoints and `metrics.jsonl` go.
      num_steps: the total number of steps (not the number still to run).
      save_every: checkpoint interval in steps; the final step is always saved.
      metadata: JSON-serializable description of the run stored with each checkpoint.
    """
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = checkpoints_lib.Checkpointer(model_dir / "checkpoints", save_every=save_every, max_to_keep=keep_checkpoints)
    start = checkpointer.latest_step()
    if start is None:
        state, start = trainer.init(seed), 0
    else:
        state = checkpointer.restore(trainer.abstract_state(), start)
        if jax.process_index() == 0:
            print(f"Resuming from step {start} in {checkpointer.directory}", flush=True)
    logger = metrics_lib.MetricsLogger(model_dir, start_step=start, num_steps=num_steps, log_every=log_every)
    data = batches(start)
    try:
        for step in range(start + 1, num_steps + 1):
            state, stats = trainer.step(state, trainer.to_global(next(data)))
            logger.update(step, stats)
            checkpointer.save(step, state, dict(metadata or {}), force=step == num_steps)
    finally:
        # Close the input pipeline here: a tf.data iterator left to interpreter shutdown can hang it.
        close = getattr(data, "close", None)
        if close is not None:
            close()
        logger.close()
        checkpointer.close()
    return state
