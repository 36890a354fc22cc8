"""Entry-point runs, configured by gin: train (then evaluate the held-out cluster) and evaluate.

Library functions stay plain keyword-only functions; this module is where they become gin-configurable
(`parse_config` registers them), so `gin/models/*.gin` and `gin/runs/*.gin` can bind every knob.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from typing import Any

import gin
import jax
import optax
import seqio
from flax import nnx
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from it_jax import errors, gin_paths, preference_run, settings_checks
from it_jax import sharding as sharding_lib
from it_jax.data import layout as layout_lib
from it_jax.data import context as context_lib
from it_jax.data import mixing, packed_input, pipeline, vocab
from it_jax.evaluation import evaluate, evaluator, loading, periodic
from it_jax.evaluation.predictor import Predictor
from it_jax.models import decoder, lora as lora_lib, registry, t5
from it_jax.models.spec import ModelSpec
from it_jax.run_context import RunContext
from it_jax.run_dir import RunDirectory
from it_jax.train import divergence, flops, hooks, losses, objectives, optimizers
from it_jax.train import trainer as trainer_lib

GIN_DIR = gin_paths.GIN_DIR

_CONFIGURABLES = {
    "T5Config": t5.T5Config,
    "DecoderConfig": decoder.DecoderConfig,
    "make_vocabulary": vocab.make_vocabulary,
    "make_schedule": optimizers.make_schedule,
    "make_optimizer": optimizers.make_optimizer,
    "create_mesh": sharding_lib.create_mesh,
    "causal_lm": layout_lib.causal_lm,
    "LossConfig": losses.LossConfig,
    "CrossEntropy": objectives.CrossEntropy,
    "DPO": objectives.DPO,
    "LoraConfig": lora_lib.LoraConfig,
    "preference_data": preference_run.PreferenceInput,
}


def register_configurables() -> None:
    """Makes the library's functions and classes gin-configurable (idempotent)."""
    for name, fn in _CONFIGURABLES.items():
        try:
            gin.external_configurable(fn, name=name)
        except ValueError:  # already registered in this process
            pass


def parse_config(gin_files: Sequence[str], bindings: Sequence[str] = ()) -> None:
    """Parses gin files (paths as given, else under the repository's `gin/`), then bindings. Includes and the
    input paths bound in a gin file resolve against that file, not the working directory (`gin_paths`)."""
    register_configurables()
    gin_paths.parse(gin_files, bindings)


def gin_model_config(name: str, bindings: Sequence[str] = ()) -> registry.ModelConfig:
    """The `T5Config` or `DecoderConfig` that `gin/models/{name}.gin` (plus `bindings`) describes.

    Parses the file on its own and clears gin's configuration afterwards.
    """
    gin.clear_config()
    try:
        parse_config([f"models/{name}.gin"], bindings)
        for config_class in (t5.T5Config, decoder.DecoderConfig):
            config_bindings = gin.get_bindings(config_class.__name__)
            if config_bindings:
                return config_class(**config_bindings)
    finally:
        gin.clear_config()
    raise ValueError(f"gin/models/{name}.gin binds neither T5Config nor DecoderConfig")


def model_spec(config: registry.ModelConfig) -> ModelSpec:
    """The model a config describes (`T5Config` or `DecoderConfig`)."""
    return registry.model_spec(config)


@gin.configurable("run_config")
def make_run_config(
    *,
    model_dir: str = gin.REQUIRED,
    model_config: registry.ModelConfig = gin.REQUIRED,
    vocabulary: seqio.Vocabulary = gin.REQUIRED,
    task_modules: Sequence[str] = ("mixtures.synthetic",),
    task_feature_lengths: Mapping[str, int] = gin.REQUIRED,
    data_dir: str | None = None,
    layout: layout_lib.PromptLayout | None = None,
    cap: int | None = mixing.DEFAULT_CAP,
    temperature: float = 1.0,
    extra_task_modules: Sequence[str] = (),
    chat_format: str | None = None,
) -> RunContext:
    """The run context, with the task modules' tasks registered under it.

    `data_dir` (if given) is where TFDS-backed tasks read local JSONL mirrors; the collections' mixtures mix
    examples-proportionally with each task's rate capped at `cap`, then raised to `1 / temperature`.
    `layout` (how inputs and targets become model tokens) defaults to the architecture's (see
    `it_jax.data.layout.default_layout`); a decoder fine-tuned from Hugging Face keeps `causal_lm(bos_id)`.
    `extra_task_modules` (the scripts' `--task_module` flags) are loaded after `task_modules`. `chat_format`
    renders chat tasks (see `it_jax.data.context.TaskContext`).
    Every setting is checked first (see `it_jax.settings_checks`).
    """
    settings_checks.raise_if_any(settings_checks.run_config_problems(make_run_config, locals()))
    architecture = registry.architecture(model_config)
    modules = tuple(dict.fromkeys(context_lib.module_label(m) for m in (*task_modules, *extra_task_modules)))
    run = RunContext(
        directory=RunDirectory(model_dir),
        model_config=model_config,
        vocabulary=vocabulary,
        layout=layout or layout_lib.default_layout(architecture, vocabulary),
        task_feature_lengths=dict(task_feature_lengths),
        task_modules=modules,
        data_dir=os.path.abspath(data_dir) if data_dir else None,
        cap=cap,
        temperature=temperature,
        chat_format=chat_format,
    )
    run.register_tasks()
    return run


@gin.configurable("train_run", denylist=["run"])
def train_run(
    run: RunContext,
    *,
    mixture: str | Sequence[str] | None = None,
    batch_size: int = 32,
    num_steps: int = 1000,
    pack: bool = True,
    seed: int = 0,
    schedule: optax.Schedule = gin.REQUIRED,
    optimizer: optax.GradientTransformation = gin.REQUIRED,
    mesh: Mesh | None = None,
    axis_rules: Sequence[tuple[str, Any]] = (),
    microbatches: int = 1,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    loss_normalization: str = "real_tokens",
    save_every: int = 100,
    keep_checkpoints: int = 3,
    keep_best: int = 0,
    best_metric: str = "eval/loss",
    best_mode: str = "min",
    log_every: int = 10,
    tensorboard: bool = True,
    peak_flops_per_device: float | None = None,
    eval_mixture: str | Sequence[str] | None = None,
    eval_every: int = 0,
    eval_batches: int = 10,
    eval_split: str = "validation",
    eval_tasks: Sequence[str] = (),
    eval_examples: int = 32,
    init_from: str | None = None,
    on_nonfinite: str = divergence.STOP,
    max_consecutive_skips: int = 10,
    allow_changes: Sequence[str] = (),
    objective: objectives.Objective | None = None,
    trainable: Any = None,
    lora: lora_lib.LoraConfig | None = None,
    preference: preference_run.PreferenceInput | None = None,
):
    """Trains `run.model_config` on `mixture`, resuming from `run.model_dir` if it holds checkpoints.

    `mixture` is a registered mixture or task, or a list of task names (mixed at the run's rate: see
    `make_run_config`'s `cap` and `temperature`); or, instead, `preference` pairs (`@preference_data()`, see
    `it_jax.preference_run`: batches of pairs, the held-out pairs evaluated every `eval_every` steps).

    Args (the scale-out knobs; see `trainer.train` for the rest):
      mesh: default: every device on the `data` axis (`create_mesh.replica/data/fsdp/tensor` set it).
      axis_rules: `(logical axis, mesh axes)` pairs overriding `sharding.DEFAULT_RULES`.
      microbatches: gradient accumulation: each batch runs as this many sequential microbatches.
      label_smoothing, z_loss, loss_normalization: see `losses.LossConfig` (the default objective's).
      objective: what training minimizes, e.g. `@DPO()` (default: `CrossEntropy` with the loss settings above).
      trainable: which parameters train (see `state.trainable_mask`; a regex over the "/"-joined parameter
        path, e.g. "lora"); the others stay frozen without optimizer state. Default: all, or the adapters
        when `lora` is set.
      lora: `@LoraConfig()`: the model gets LoRA adapters (`lora.with_lora`); the run records the config, writes
        `adapters.safetensors` at the end, and loaders merge the adapters into the base.
      keep_best, best_metric, best_mode: also keep the best checkpoints by an eval metric.
      peak_flops_per_device: the accelerator's peak FLOP/s (e.g. 989e12 for an H100's bf16), for MFU.
      eval_mixture, eval_every, eval_batches, eval_split: every `eval_every` steps, `eval/loss` and
        `eval/accuracy` over `eval_batches` batches of `eval_split` shared out among `eval_mixture`'s tasks
        (at least one each, tasks weighted equally), plus each task's `eval/<task>/loss` and
        `eval/<task>/accuracy`: set it to the training mixture to follow every training task.
      eval_tasks, eval_examples: also every `eval_every` steps, the evaluator's metrics (rank
        classification, generation; every answer template) on the first `eval_examples` examples of each
        task's `eval_split`: `eval/<task>/<variant>/<metric>` and `eval/mean_template`.
      init_from: a model directory of this project whose parameters initialize the matching ones
        (same path and shape) when training starts from scratch.
      on_nonfinite, max_consecutive_skips: the divergence policy (see `train.divergence`): "stop" the run
        at a non-finite step, or "skip" such updates and stop after this many in a row.
      allow_changes: on resumption, settings that may differ from the checkpoint's: "data" (mixture,
        batch, lengths, seed: the input restarts from its beginning) and/or "schedule" (optimizer, loss).

    Every setting is checked before any data is read or anything compiles (see `check_settings`).
    """
    settings_checks.raise_if_any(settings_checks.train_run_problems(train_run, run, locals()))
    settings_checks.warn(settings_checks.gin_schedule_warnings(num_steps))
    if lora is not None:
        run = dataclasses.replace(run, lora=lora)
        trainable = nnx.LoRAParam if trainable is None else trainable
    if mixture is not None and not isinstance(mixture, str):
        mixture = mixing.register_mixture("train_run_mixture", list(mixture), rate=run.tasks.rate()).name
    if eval_mixture is not None and not isinstance(eval_mixture, str):
        eval_mixture = mixing.register_mixture("train_run_eval_mixture", list(eval_mixture), rate=run.tasks.rate()).name
    if mixture is not None:
        context_lib.check_vocabularies(mixture, run.vocabulary)
    if objective is not None and (label_smoothing, z_loss, loss_normalization) != (0.0, 0.0, "real_tokens"):
        raise errors.ConfigError(
            "train_run.label_smoothing, z_loss and loss_normalization configure the default objective, and "
            f"train_run.objective is set ({objective.name}): bind them in its config instead "
            "(e.g. CrossEntropy.config = @LossConfig(), LossConfig.z_loss = 1e-4)"
        )
    mesh = mesh or sharding_lib.create_mesh(data=-1)
    spec = loading.model_spec(run.model_config, lora)
    if jax.process_index() == 0:
        source = f"mixture {mixture}" if mixture is not None else f"preference pairs {list(preference.files)}"
        print(f"Model: {spec.num_params():,} parameters; mesh {dict(mesh.shape)}; {source}", flush=True)
    trainer = trainer_lib.Trainer(
        spec=spec,
        optimizer=optimizer,
        schedule=schedule,
        mesh=mesh,
        rules=sharding_lib.with_overrides(axis_rules),
        dropout_seed=seed,
        microbatches=microbatches,
        objective=objective or objectives.CrossEntropy(
            losses.LossConfig(label_smoothing=label_smoothing, z_loss=z_loss, normalization=loss_normalization)
        ),
        trainable=trainable,
        divergence=divergence.DivergencePolicy(on_nonfinite, max_consecutive_skips),
    )

    shards = {"shard_index": jax.process_index(), "num_shards": jax.process_count()}
    stream = {"task_feature_lengths": run.task_feature_lengths, "layout": run.layout, "batch_size": batch_size}

    def mixture_batches(position: int):
        """The training stream from global batch `position` on (index-based: resuming replays nothing)."""
        return packed_input.packed_batches(
            mixture, vocabulary=run.vocabulary, pack=pack, seed=seed, skip_batches=position, **stream, **shards
        )

    train_hooks = []
    if preference is not None:
        pairs = preference_run.training_input(
            preference, run, trainer, batch_size=batch_size, seed=seed, init_from=init_from, lora=lora
        )
        if eval_every and pairs.evaluation is not None:
            train_hooks.append(hooks.Evaluate(pairs.evaluation, every=eval_every))
    if lora is not None:
        train_hooks.append(SaveAdapters(str(run.directory.adapters), lora, every=num_steps))
    if eval_every and preference is None and (eval_mixture is not None or eval_tasks):
        loss_batches, num_batches = None, eval_batches
        if eval_mixture is not None:
            # Each task's own batches, for its own loss; the `eval_batches` are shared out among the tasks.
            eval_subtasks = mixing.task_names(eval_mixture)
            loss_batches = {
                name: functools.partial(
                    pipeline.host_batches, name, split=eval_split, pack=pack, shuffle=False, **stream, **shards
                )
                for name in eval_subtasks
            }
            num_batches = -(-eval_batches // len(eval_subtasks))
        evaluation = periodic.PeriodicEval(
            evaluate=trainer.eval_host_batch,
            batches=loss_batches,
            num_batches=num_batches,
            task_metrics=_task_metrics(run, trainer, eval_tasks, eval_split, eval_examples) if eval_tasks else None,
            summarize=None if isinstance(trainer.objective, objectives.CrossEntropy) else trainer.objective.metrics,
        )
        train_hooks.append(hooks.Evaluate(evaluation.run, every=eval_every))
    metadata = {
        **run.metadata(),
        "data": {"preference": pairs.metadata} if preference is not None else _data_metadata(
            mixture, batch_size=batch_size, pack=pack, seed=seed, cap=run.cap, temperature=run.temperature,
            input=packed_input.STREAM_VERSION,
        ),
        "optimization": {
            "schedule": _gin_settings("make_schedule"),
            "optimizer": _gin_settings("make_optimizer"),
            "loss": {"label_smoothing": label_smoothing, "z_loss": z_loss, "normalization": loss_normalization},
            # Recorded only when set, so that the checkpoints of runs before these settings still resume.
            **({"objective": _objective_metadata(objective)} if objective is not None else {}),
            **({"trainable": repr(trainable)} if trainable is not None else {}),
        },
    }
    config_gin = gin.config_str()
    state = trainer_lib.train(
        trainer=trainer,
        batches=pairs.batches if preference is not None else mixture_batches,
        model_dir=run.model_dir,
        num_steps=num_steps,
        seed=seed,
        save_every=save_every,
        keep_checkpoints=keep_checkpoints,
        log_every=log_every,
        metadata=metadata,
        hooks=train_hooks,
        keep_best=keep_best,
        best_metric=best_metric,
        best_mode=best_mode,
        init_from=init_from,
        flops_per_step=functools.partial(train_flops, run.model_config, trainer.objective),
        batch_shapes=_known_batch_shapes(run, trainer.objective, batch_size=batch_size, pack=pack),
        peak_flops_per_device=peak_flops_per_device,
        tensorboard=tensorboard,
        allow_changes=allow_changes,
        on_start=lambda: run.save(config_gin) if jax.process_index() == 0 else None,
        num_tasks=len(metadata["data"].get("tasks", ())) or None,
    )
    return state, trainer


@dataclasses.dataclass
class SaveAdapters:
    """A hook: after the final step, process 0 writes the LoRA adapters alone (`lora.save_adapters`)."""

    path: str
    config: lora_lib.LoraConfig
    every: int

    def __call__(self, step: int, state: Any, context: hooks.Context) -> None:
        adapters = multihost_utils.process_allgather(lora_lib.adapter_params(state.params), tiled=True)
        if jax.process_index() == 0:
            lora_lib.save_adapters(self.path, adapters, self.config)


def check_settings(run: RunContext, *, evaluate: bool = True) -> None:
    """Checks the settings gin will pass `train_run` (and `eval_run` when `evaluate`) without running them;
    raises one `ConfigError` listing every problem. Call it before training, so that a bad evaluation
    setting fails before the run rather than after it."""
    problems = settings_checks.train_run_problems(train_run, run, settings_checks.bound_arguments(train_run))
    if evaluate:
        problems += settings_checks.eval_run_problems(eval_run, run, settings_checks.bound_arguments(eval_run))
    settings_checks.raise_if_any(problems)


def _data_metadata(mixture: str, **settings: Any) -> dict[str, Any]:
    """What decides the input stream (recorded so a resumption can tell whether its position still means the
    same data): the mixture, its tasks, and the batching and sampling settings."""
    tasks = sorted(mixing.task_names(mixture))
    return {"mixture": mixture, "tasks": tasks, **settings}


def train_flops(
    config: registry.ModelConfig, objective: objectives.Objective, batch_shapes: Mapping[str, tuple[int, ...]]
) -> float:
    """Model FLOPs of one training step (`flops.train_flops_per_step`); for preference pairs (`chosen_*` and
    `rejected_*` features) both sides' forward and backward passes, plus a live reference's forward passes."""
    if "decoder_target_tokens" in batch_shapes:
        return flops.train_flops_per_step(config, batch_shapes)
    sides = [objectives.side(batch_shapes, name) for name in ("chosen", "rejected")]
    policy = sum(flops.train_flops_per_step(config, shapes) for shapes in sides)
    reference = policy / flops.TRAIN_FACTOR if getattr(objective, "needs_reference", False) else 0
    return policy + reference


def _known_batch_shapes(
    run: RunContext, objective: objectives.Objective, *, batch_size: int, pack: bool
) -> dict[str, tuple[int, ...]] | None:
    """The training batch's feature shapes from the config, when they are the features `objective` reads
    (token features); else None, and the train step compiles at its first batch."""
    shapes = pipeline.batch_shapes(
        run.layout, task_feature_lengths=run.task_feature_lengths, batch_size=batch_size, pack=pack
    )
    needed = objective.features(registry.architecture(run.model_config))
    return shapes if set(needed) <= set(shapes) else None


def _objective_metadata(objective: objectives.Objective) -> dict[str, Any]:
    """The objective's name and plain-valued settings (a dataclass's fields), for the checkpoint metadata."""
    fields = dataclasses.asdict(objective) if dataclasses.is_dataclass(objective) else {}
    plain = (bool, int, float, str, type(None))
    return {"name": objective.name, **{k: v for k, v in fields.items() if isinstance(v, (*plain, dict))}}


def _gin_settings(configurable: str) -> dict[str, Any]:
    """The plain-valued gin bindings of `configurable` (numbers, strings, lists): e.g. the schedule's settings."""
    try:
        bindings = gin.get_bindings(configurable)
    except ValueError:  # not registered, or not configured by gin in this process
        return {}
    plain = (bool, int, float, str, type(None))
    return {
        name: list(value) if isinstance(value, (list, tuple)) else value
        for name, value in sorted(bindings.items())
        if isinstance(value, plain) or (isinstance(value, (list, tuple)) and all(isinstance(v, plain) for v in value))
    }


def _task_metrics(
    run: RunContext, trainer: trainer_lib.Trainer, names: Sequence[str], split: str, max_examples: int
) -> periodic.TaskMetrics:
    """The periodic evaluation's metrics mode: the evaluator on the trainer's mesh."""
    predictor = Predictor(
        spec=trainer.spec,
        params=None,
        layout=run.layout,
        eos_id=run.vocabulary.eos_id,
        max_decode_length=run.task_feature_lengths["targets"],
        mesh=trainer.mesh,
        rules=trainer.rules,
    )
    names = evaluate.select_tasks(tasks=names)
    job_list = evaluator.jobs_for(names)
    evaluation = evaluator.Evaluator(
        predictor, run.vocabulary, run.task_feature_lengths, split=split, max_examples=max_examples
    )
    return periodic.TaskMetrics(evaluation, job_list)


@gin.configurable("eval_run", denylist=["run", "params", "spec"])
def eval_run(
    run: RunContext,
    *,
    params: Any,
    spec: ModelSpec,
    cluster: str | None = None,
    tasks_to_eval: Sequence[str] = (),
    mixture: str | None = None,
    variants: Sequence[str] | None = None,
    split: str = "validation",
    max_examples: int | None = None,
    batch_size: int = 64,
    length_normalize: bool = False,
    mesh: Mesh | None = None,
    step: int | None = None,
    output_dir: str | None = None,
    title: str | None = None,
    checkpoint: str | None = None,
    reference_tasks: Sequence[str] = (),
    trained_on: str | Sequence[str] | None = None,
) -> str:
    """Evaluates every answer template of the held-out `cluster`'s tasks (or `tasks_to_eval`, or a
    `mixture`'s tasks), then of `reference_tasks` (e.g. a few the model trained on, to show what training
    taught), in `variants` (default: each task's own); writes `output_dir` (default `<model_dir>/eval/`).
    `checkpoint` and `step` name the evaluated model in the report; `trained_on` (the training mixture, or
    its list of mixtures and tasks) marks each task seen or held out in the report's verdict."""
    settings_checks.raise_if_any(settings_checks.eval_run_problems(eval_run, run, locals()))
    names = evaluate.select_tasks(cluster=cluster, mixture=mixture, tasks=tasks_to_eval)
    references = [name for name in reference_tasks if name not in names]
    if title is None:
        title = f"Evaluation ({split}): " + (f"held-out cluster `{cluster}`" if cluster else ", ".join(names))
        title += f"; for reference: {', '.join(references)}" if references else ""
    _, markdown = evaluate.evaluate_model(
        spec=spec,
        params=params,
        vocabulary=run.vocabulary,
        layout=run.layout,
        task_names=[*names, *references],
        task_feature_lengths=run.task_feature_lengths,
        output_dir=output_dir or run.directory.eval,
        title=title,
        variants=variants,
        split=split,
        max_examples=max_examples,
        batch_size=batch_size,
        length_normalize=length_normalize,
        mesh=mesh,
        checkpoint=checkpoint or run.model_dir,
        step=step,
        trained_tasks=None if trained_on is None else evaluate.trained_task_names(trained_on),
    )
    return markdown
