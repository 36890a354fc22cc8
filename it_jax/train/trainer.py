"""The training loop: sharded state, a jitted step with explicit shardings, checkpoints and resumption.

The same code runs on one CPU, one GPU or a multi-host mesh: the state is created directly in its
sharding, each host feeds its own shard of the batch, and `jax.jit` is given explicit in/out shardings.
A step minimizes an objective (`objectives`) over the trainable parameters, possibly accumulating gradients
over microbatches; after each step the due hooks (`hooks`) log, evaluate and keep checkpoints (with the input
position), and on a preemption notice (SIGTERM) the run saves and stops.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import functools
import itertools
import pathlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from it_jax import errors
from it_jax import sharding as sharding_lib
from it_jax.run_dir import RunDirectory
from it_jax.models import lora
from it_jax.models.spec import ModelSpec
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import divergence as divergence_lib
from it_jax.train import hooks as hooks_lib
from it_jax.train import metrics as metrics_lib
from it_jax.train import objectives, peers, preemption, warm_start
from it_jax.train import resume as resume_lib
from it_jax.train import state as state_lib
from it_jax.train.state import TrainState

Batch = dict[str, jax.Array]
HostBatch = Mapping[str, np.ndarray]


def loss_fn(
    trainable: Any,
    frozen: Any,
    batch: Mapping[str, jax.Array],
    dropout_key: jax.Array | None,
    *,
    spec: ModelSpec,
    objective: objectives.Objective,
    normalizer: jax.Array,
    reference: Any = None,
    base_reference: bool = False,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The objective's loss and summed statistics for the parameters `trainable` and `frozen` (a partition of
    the model's, see `state.partition`); no dropout (nor LoRA dropout) when the key is None. `reference`: the
    frozen reference parameters, for an objective that needs them; with `base_reference`, the parameters with
    their LoRA adapters disabled (no second copy)."""
    rngs = None if dropout_key is None else nnx.Rngs(dropout=dropout_key)
    params = state_lib.merge(trainable, frozen)
    model = spec.bind(params)
    if base_reference:
        reference = lora.without_adapters(params)
    reference_model = None if reference is None else spec.bind(jax.lax.stop_gradient(reference))
    # LoRA adapters' input dropout (a no-op for models without adapters or without dropout).
    dropout = contextlib.nullcontext() if dropout_key is None else lora.train_dropout(dropout_key)
    with dropout:
        return objectives.loss_and_stats(
            objective, model, batch, rngs=rngs, normalizer=normalizer, reference=reference_model
        )


def split_microbatches(batch: Batch, microbatches: int) -> Batch:
    """[batch, ...] -> [microbatches, batch / microbatches, ...], microbatch i holding rows i, i + k, ...

    Strided rows keep each microbatch spread over every device of the batch axes, so the split moves no data.
    """

    def split(x):
        if x.shape[0] % microbatches:
            raise ValueError(f"batch size {x.shape[0]} is not divisible into {microbatches} microbatches")
        x = x.reshape(x.shape[0] // microbatches, microbatches, *x.shape[1:]).swapaxes(0, 1)
        return sharding_lib.constrain(x, (None, "activation_batch") + (None,) * (x.ndim - 2))

    return jax.tree.map(split, batch)


def accumulate_gradients(
    trainable: Any,
    frozen: Any,
    batch: Batch,
    dropout_key: jax.Array,
    *,
    spec: ModelSpec,
    objective: objectives.Objective,
    microbatches: int = 1,
    grad_shardings: Any = None,
    reference: Any = None,
    base_reference: bool = False,
) -> tuple[Any, dict[str, jax.Array]]:
    """Gradients (w.r.t. `trainable` only) of the whole batch's loss and its summed statistics, over
    `microbatches` sequential slices.

    Each microbatch's loss is divided by the whole batch's normalizer (`objective.denominator`), so summed
    gradients and statistics equal those of the unsplit batch. Gradients accumulate in float32 (sharded like
    the parameters).
    """
    grad_fn = jax.value_and_grad(
        functools.partial(
            loss_fn, spec=spec, objective=objective, normalizer=objective.denominator(batch), reference=reference,
            base_reference=base_reference,
        ),
        has_aux=True,
    )
    if microbatches == 1:
        (_, stats), grads = grad_fn(trainable, frozen, batch, dropout_key)
        return grads, stats

    micro = split_microbatches(batch, microbatches)

    def body(carry, xs):
        index, microbatch = xs
        (_, stats), grads = grad_fn(trainable, frozen, microbatch, jax.random.fold_in(dropout_key, index))
        grads = jax.tree.map(lambda g: g.astype(jnp.float32), grads)
        return jax.tree.map(jnp.add, carry, (grads, stats)), None

    first = jax.tree.map(lambda x: x[0], micro)
    (_, stat_shapes), grad_shapes = jax.eval_shape(grad_fn, trainable, frozen, first, dropout_key)
    zero_grads = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), grad_shapes)
    if grad_shardings is not None:
        zero_grads = jax.lax.with_sharding_constraint(zero_grads, grad_shardings)
    zero_stats = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), stat_shapes)
    (grads, stats), _ = jax.lax.scan(body, (zero_grads, zero_stats), (jnp.arange(microbatches), micro))
    grads = jax.tree.map(lambda g, p: g.astype(p.dtype), grads, trainable)
    return grads, stats


def _real_tokens(batch: Batch) -> jax.Array:
    """Non-padding input and target tokens of the batch (of both sides of preference pairs)."""
    counts = [(x > 0).sum() for k, x in batch.items() if k.endswith(("encoder_input_tokens", "decoder_target_tokens"))]
    return sum(counts, jnp.zeros((), jnp.int32)).astype(jnp.float32)


def train_step(
    state: TrainState,
    batch: Batch,
    *,
    spec: ModelSpec,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule,
    dropout_seed: int,
    objective: objectives.Objective = objectives.CrossEntropy(),
    mask: state_lib.Mask = None,
    microbatches: int = 1,
    grad_shardings: Any = None,
    skip_nonfinite: bool = False,
    base_reference: bool = False,
) -> tuple[TrainState, dict[str, jax.Array]]:
    """One optimizer step of the parameters `mask` selects (None: all; the others stay as they are);
    dropout randomness is derived from (seed, step), so resuming reproduces it.

    The statistics include `nonfinite` (1.0 when a statistic, the gradient norm or an updated parameter is
    not finite). With `skip_nonfinite` such an update is dropped: parameters and optimizer state stay as they
    were, the step still advances, and the step's statistics are zeroed (`skipped` counts it).
    """
    dropout_key = jax.random.fold_in(jax.random.key(dropout_seed), state.step)
    trainable, frozen = state_lib.partition(state.params, mask)
    grads, stats = accumulate_gradients(
        trainable,
        frozen,
        batch,
        dropout_key,
        spec=spec,
        objective=objective,
        microbatches=microbatches,
        grad_shardings=grad_shardings,
        reference=state.reference,
        base_reference=base_reference,
    )
    updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
    updated = optax.apply_updates(trainable, updates)
    stats = {**stats, "grad_norm": optax.global_norm(grads), "real_tokens": _real_tokens(batch)}
    finite = divergence_lib.all_finite(stats) & divergence_lib.all_finite(updated)
    if skip_nonfinite:
        updated, opt_state = divergence_lib.keep_if(finite, (updated, opt_state), (trainable, state.opt_state))
        stats = {name: jnp.where(finite, value, 0.0).astype(value.dtype) for name, value in stats.items()}
        stats["skipped"] = 1.0 - finite.astype(jnp.float32)
    stats.update(learning_rate=schedule(state.step), nonfinite=1.0 - finite.astype(jnp.float32))
    params = state_lib.merge(updated, frozen)
    return state.replace(step=state.step + 1, params=params, opt_state=opt_state), stats


def eval_step(
    params: Any,
    batch: Batch,
    reference: Any = None,
    *,
    spec: ModelSpec,
    objective: objectives.Objective = objectives.CrossEntropy(),
    base_reference: bool = False,
) -> dict[str, jax.Array]:
    """The objective's summed statistics of a batch without dropout (e.g. `nll_sum`, `correct`, `tokens`)."""
    _, stats = loss_fn(
        params, {}, batch, None, spec=spec, objective=objective, normalizer=objective.denominator(batch),
        reference=reference, base_reference=base_reference,
    )
    return stats


@dataclasses.dataclass
class Trainer:
    """Holds the compiled train and eval steps and the state's shardings for one model, optimizer and mesh.

    Attributes:
      microbatches: each step's batch is split into this many sequential microbatches whose gradients are
        summed (gradient accumulation: the same update in less activation memory).
      objective: what a step minimizes (`objectives.CrossEntropy` by default: next-token cross-entropy).
      trainable: which parameters train (see `state.trainable_mask`: a Variable type such as `nnx.LoRAParam`,
        a path regex, a callable on (path, variable); None: all). The others stay bitwise as they are and
        carry no optimizer state.
      divergence: what a non-finite step does (stop the run, or skip the update).

    An objective with a live reference (`needs_reference`) gets a frozen copy of the initial parameters in the
    state (`needs_reference` then stays True here), except on a LoRA model, whose reference is its base with the
    adapters disabled, computed from the parameters themselves (`base_reference`).
    """

    spec: ModelSpec
    optimizer: optax.GradientTransformation
    schedule: optax.Schedule
    mesh: Mesh
    rules: sharding_lib.AxisRules = sharding_lib.DEFAULT_RULES
    dropout_seed: int = 0
    microbatches: int = 1
    objective: objectives.Objective = objectives.CrossEntropy()
    trainable: Any = None
    divergence: divergence_lib.DivergencePolicy = divergence_lib.DivergencePolicy()

    def __post_init__(self):
        if self.microbatches < 1:
            raise ValueError(f"microbatches must be at least 1, got {self.microbatches}")
        self.mask = state_lib.trainable_mask(self.spec.abstract_state, self.trainable)
        needs_reference = bool(getattr(self.objective, "needs_reference", False))
        # A LoRA model's reference is its base (adapters disabled); any other model keeps a frozen copy.
        self.base_reference = needs_reference and lora.has_adapters(self.spec.abstract_state.to_pure_dict())
        self.needs_reference = needs_reference and not self.base_reference
        layout = (self.spec, self.optimizer, self.mesh, self.mask, self.needs_reference)
        with sharding_lib.axis_rules(self.rules):
            self.state_shardings = state_lib.state_shardings(*layout)
            # The leading axis over the batch axes, whatever a feature's rank (e.g. [batch] reference log-probs).
            self.data_sharding = sharding_lib.data_sharding(self.mesh, ndim=1)
            self._init = state_lib.state_initializer(*layout)
        replicated = NamedSharding(self.mesh, PartitionSpec())
        self._step = jax.jit(
            functools.partial(
                train_step,
                spec=self.spec,
                optimizer=self.optimizer,
                schedule=self.schedule,
                dropout_seed=self.dropout_seed,
                objective=self.objective,
                mask=self.mask,
                microbatches=self.microbatches,
                grad_shardings=state_lib.partition(self.state_shardings.params, self.mask)[0],
                skip_nonfinite=self.divergence.skip,
                base_reference=self.base_reference,
            ),
            in_shardings=(self.state_shardings, self.data_sharding),
            out_shardings=(self.state_shardings, replicated),
            donate_argnums=(0,),
        )
        self._eval = jax.jit(
            functools.partial(eval_step, spec=self.spec, objective=self.objective, base_reference=self.base_reference),
            in_shardings=(self.state_shardings.params, self.data_sharding, self.state_shardings.reference),
            out_shardings=replicated,
        )

    def init(self, seed: int) -> TrainState:
        with sharding_lib.axis_rules(self.rules):
            return self._init(seed)

    def with_params(self, state: TrainState, params: Any) -> TrainState:
        """`state` with other initial parameters (a warm start): its reference, if any, becomes a copy of them."""
        reference = jax.tree.map(lambda x: x.copy(), params) if state.reference is not None else None
        return state.replace(params=params, reference=reference)

    def abstract_state(self) -> TrainState:
        with sharding_lib.axis_rules(self.rules):
            return state_lib.abstract_state(self.spec, self.optimizer, self.mesh, self.mask, self.needs_reference)

    def to_global(self, host_batch: HostBatch) -> Batch:
        """Assembles each host's share of the batch into global arrays sharded over the batch axes."""
        return {k: jax.make_array_from_process_local_data(self.data_sharding, v) for k, v in host_batch.items()}

    def step(self, state: TrainState, batch: Batch) -> tuple[TrainState, dict[str, jax.Array]]:
        with jax.set_mesh(self.mesh), sharding_lib.axis_rules(self.rules):
            return self._step(state, batch)

    def lower(self, state: Any, batch: Mapping[str, Any]) -> jax.stages.Lowered:
        """The train step lowered (traced, not compiled) for `state` and `batch`, given as arrays or as
        `jax.ShapeDtypeStruct`s (e.g. `abstract_state()`): for AOT compilation and cost or memory analysis."""
        with jax.set_mesh(self.mesh), sharding_lib.axis_rules(self.rules):
            return self._step.lower(state, batch)

    def eval(self, params: Any, batch: Batch, reference: Any = None) -> dict[str, jax.Array]:
        """The objective's summed statistics (`nll_sum`, `correct`, `tokens` ...) of `batch` under `params`
        (and the frozen `reference` parameters, for an objective that needs them)."""
        if self.needs_reference and reference is None:
            raise ValueError(f"the {self.objective.name} objective evaluates with the reference parameters too")
        with jax.set_mesh(self.mesh), sharding_lib.axis_rules(self.rules):
            return self._eval(params, batch, reference if self.needs_reference else None)

    def eval_host_batch(self, params: Any, host_batch: HostBatch, reference: Any = None) -> dict[str, jax.Array]:
        """`eval` of this host's share of a batch (see `to_global`)."""
        return self.eval(params, self.to_global(host_batch), reference)


def _start_while_compiling(
    trainer: Trainer,
    state: TrainState,
    batches: Callable[[int], Iterator[HostBatch]],
    position: int,
    batch_shapes: Mapping[str, Any] | None,
    num_tasks: int | None = None,
) -> tuple[Iterator[HostBatch], HostBatch]:
    """The input stream from `position` and its first host batch, both built in a background thread while the
    train step compiles ahead of time for the global `batch_shapes` (shapes of int32 features, or
    `jax.ShapeDtypeStruct`s; None: it compiles at the first step instead, after the read). Each phase is announced in one line (`metrics.phase`)."""

    def start() -> tuple[Iterator[HostBatch], HostBatch]:
        data = batches(position)
        try:
            return data, next(data)
        except BaseException:
            _close(data)
            raise

    tasks = f" for {num_tasks} task{'s' if num_tasks != 1 else ''}" if num_tasks is not None else ""
    metrics_lib.phase(f"building the input pipeline{tasks}")
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="input-start") as pool:
        started = pool.submit(start)
        metrics_lib.phase("compiling the train step" + ("" if batch_shapes is not None else " (at the first step)"))
        if batch_shapes is not None:
            specs = {
                name: jax.ShapeDtypeStruct(
                    tuple(getattr(shape, "shape", shape)), getattr(shape, "dtype", jnp.int32),
                    sharding=trainer.data_sharding,
                )
                for name, shape in batch_shapes.items()
            }
            trainer.lower(state, specs).compile()
        return started.result()


def _close(data: Iterator[HostBatch]) -> None:
    """Closes an input stream (a tf.data iterator left to interpreter shutdown can hang it)."""
    close = getattr(data, "close", None)
    if close is not None:
        close()


def _global_shapes(host_batch: HostBatch) -> dict[str, tuple[int, ...]]:
    return {k: (v.shape[0] * jax.process_count(), *v.shape[1:]) for k, v in host_batch.items()}


def _initial_state(
    trainer: Trainer,
    checkpointer: checkpoints_lib.Checkpointer,
    *,
    seed: int,
    init_from: str | None,
    metadata: Mapping[str, Any],
    allow_changes: Sequence[str],
) -> tuple[TrainState, int, int]:
    """(state, step, input position): the newest readable checkpoint's that fits this run (see `resume`),
    else a fresh (or warm-started) state at 0."""
    try:
        target = trainer.abstract_state()
        resumed = resume_lib.resume(checkpointer, target, metadata=metadata, allow_changes=allow_changes)
    except BaseException:  # the run does not start: release the checkpointer before reporting why
        checkpointer.close()
        raise
    if resumed is not None:
        return resumed.state, resumed.step, resumed.position
    state = trainer.init(seed)
    if init_from:
        params, report = warm_start.load_matching_params(init_from, params=state.params)
        state = trainer.with_params(state, params)
        if jax.process_index() == 0:
            print(report.summary(), flush=True)
    return state, 0, 0


def train(
    *,
    trainer: Trainer,
    batches: Callable[[int], Iterator[HostBatch]],
    model_dir: str | pathlib.Path,
    num_steps: int,
    seed: int = 0,
    save_every: int = 100,
    keep_checkpoints: int | None = 3,
    log_every: int = 10,
    metadata: Mapping[str, Any] | None = None,
    hooks: Sequence[hooks_lib.Hook] = (),
    keep_best: int = 0,
    best_metric: str = "eval/loss",
    best_mode: str = "min",
    init_from: str | None = None,
    flops_per_step: Callable[[Mapping[str, tuple[int, ...]]], float] | None = None,
    batch_shapes: Mapping[str, Any] | None = None,
    peak_flops_per_device: float | None = None,
    tensorboard: bool = True,
    allow_changes: Sequence[str] = (),
    on_start: Callable[[], None] | None = None,
    num_tasks: int | None = None,
) -> TrainState:
    """Trains to `num_steps`, resuming from the latest checkpoint in `model_dir` if there is one.

    Args:
      trainer: the compiled step for a model, optimizer and mesh.
      batches: `position -> iterator of host batches`, starting after `position` batches; the position
        saved with the checkpoint being resumed is passed (one batch is consumed per step).
      model_dir: where checkpoints, `metrics.jsonl` and `tensorboard/` go.
      num_steps: the total number of steps (not the number still to run).
      save_every: checkpoint interval in steps; the final step is always saved.
      keep_checkpoints: how many of the latest checkpoints to keep (None: all).
      metadata: JSON-serializable description of the run stored with each checkpoint.
      hooks: run after the steps they are due at (see `hooks`), between the logging of the step's statistics
        and the checkpoint: e.g. `hooks.Evaluate`, whose metrics are logged and stored with a checkpoint saved
        at the same step (set its `every` to divide `save_every` for the "best" bookkeeping).
      keep_best: also keep this many checkpoints with the best `best_metric` ("min" or "max" `best_mode`).
      init_from: when starting from scratch, a model directory (or its `checkpoints/`) whose parameters
        initialize every parameter of the same path and shape (see `warm_start`).
      flops_per_step: global batch shapes -> model FLOPs of one training step (for MFU).
      batch_shapes: the global shape of each batch feature (int32; or a `jax.ShapeDtypeStruct`, e.g. for
        float32 reference log-probs), when known from the config: the step then compiles while the input
        pipeline starts, instead of after its first batch.
      peak_flops_per_device: the accelerator's peak FLOP/s, for model FLOPs utilization.
      tensorboard: also write TensorBoard event files (process 0).
      allow_changes: settings that may differ from the resumed checkpoint's metadata: "data" (the input
        restarts at position 0) and/or "schedule" (optimizer, schedule, loss); see `resume`.
      on_start: called once the state is initialized or restored (the run is accepted), before any step:
        e.g. to record the run's settings beside its checkpoints.
      num_tasks: how many tasks the input mixes, for the start-up line ("building the input pipeline for N tasks").

    Raises:
      preemption.Preempted: on a preemption notice (SIGTERM), after saving a checkpoint of the step.
      divergence.Diverged: on a non-finite step, under `trainer.divergence`'s policy (nothing non-finite is saved).
    """
    for name, interval in (("save_every", save_every), ("log_every", log_every)):
        if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
            raise errors.ConfigError(f"{name} must be an int ≥ 1, got {interval!r}")
    model_dir = pathlib.Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    checkpointer = checkpoints_lib.Checkpointer(
        RunDirectory(model_dir).checkpoints,
        save_every=save_every,
        max_to_keep=keep_checkpoints,
        keep_best=keep_best,
        best_metric=best_metric,
        best_mode=best_mode,
    )
    state, start, position = _initial_state(
        trainer,
        checkpointer,
        seed=seed,
        init_from=init_from,
        metadata=dict(metadata or {}),
        allow_changes=allow_changes,
    )
    if on_start is not None:
        on_start()
    logger = metrics_lib.MetricsLogger(
        model_dir,
        start_step=start,
        num_steps=num_steps,
        log_every=log_every,
        peak_flops_per_device=peak_flops_per_device,
        tensorboard=tensorboard,
        summarize=trainer.objective.metrics,
    )
    peers.report_progress(step=start, saved_step=checkpointer.last_committed)
    stream: Iterator[HostBatch] = iter(())
    try:
        with preemption.PreemptionWatcher() as watcher:
            monitor = divergence_lib.DivergenceMonitor(
                trainer.divergence, checkpoints=str(checkpointer.directory), last_saved=start or None
            )
            save = hooks_lib.SaveCheckpoint(checkpointer, monitor, dict(metadata or {}), every=save_every)
            loop = hooks_lib.Loop(
                step=lambda state, host_batch: trainer.step(state, trainer.to_global(host_batch)),
                checkpointer=checkpointer,
                logger=logger,
                monitor=monitor,
                watcher=watcher,
                hooks=[hooks_lib.LogMetrics(), *hooks, save],
                num_steps=num_steps,
            )
            if start < num_steps:
                stream, first = _start_while_compiling(trainer, state, batches, position, batch_shapes, num_tasks)
                if flops_per_step is not None:
                    logger.flops_per_step = flops_per_step(_global_shapes(first))
                data = itertools.chain([first], stream)
            for step in range(start + 1, num_steps + 1):
                position += 1
                state = loop.run_step(state, next(data), step=step, position=position)
    finally:
        _close(stream)
        logger.close()
        checkpointer.close()
    return state
