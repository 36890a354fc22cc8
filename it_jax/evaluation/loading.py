"""Loading any model directory for evaluation or inference: a training run or a pretrained directory.

A run directory (`checkpoints/<step>/`, written by training) records its model config, vocabulary, prompt
layout and feature lengths with every checkpoint; a pretrained directory (`model.json`, written by
`scripts/convert_checkpoint.py`) records the config, vocabulary and, for Hugging Face imports and exported
runs, the layout (and a run's feature lengths). Parameters are restored directly onto their shardings over
the mesh; they must match the config exactly. A LoRA run's checkpoints hold the base and the adapters;
loading merges them (`lora.merge`), so evaluation, inference, chat and export see one plain model. A run's
parameters are checked against the fingerprints saved with them: a damaged step raises `CorruptCheckpoint`
(one line: the step, the directory and why).
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np
import seqio
from jax.sharding import Mesh

from it_jax import errors
from it_jax import sharding as sharding_lib
from it_jax.convert import hf_tokenizer_files
from it_jax.convert import pretrained as pretrained_lib
from it_jax.convert import tree as tree_lib
from it_jax.data import layout as layout_lib
from it_jax.data import vocab as vocab_lib
from it_jax.models import lora as lora_lib
from it_jax.models import registry
from it_jax.models.spec import ModelSpec
from it_jax.run_context import RunContext, lora_config_from_dict
from it_jax.run_dir import RunDirectory
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import integrity
from it_jax.train.state import with_shardings


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """A model ready to evaluate: parameters on the mesh, and how it reads text."""

    config: registry.ModelConfig
    spec: ModelSpec
    params: Any
    vocabulary: seqio.Vocabulary
    layout: layout_lib.PromptLayout
    path: str
    step: int | None = None
    task_feature_lengths: Mapping[str, int] | None = None  # a run's training lengths


def resolve_layout(
    recorded: Mapping[str, Any] | None, config: registry.ModelConfig, vocabulary: seqio.Vocabulary
) -> layout_lib.PromptLayout:
    """The recorded layout, else the default for the config's architecture and the vocabulary."""
    if recorded:
        return layout_lib.PromptLayout.from_dict(recorded)
    return layout_lib.default_layout(registry.architecture(config), vocabulary)


def _load_pretrained(path: pathlib.Path, mesh: Mesh, vocabulary_path: str | None) -> LoadedModel:
    metadata = pretrained_lib.read_metadata(path)
    config = registry.config_from_dict(metadata["model_config"])
    spec = registry.model_spec(config)
    model = pretrained_lib.load_pretrained(path, shardings=spec.param_shardings(mesh))
    vocabulary = pretrained_lib.make_vocabulary(model, vocabulary_path)
    if vocabulary is None:
        raise ValueError(f"{path} records no vocabulary: pass the SentencePiece model it was trained with")
    layout = resolve_layout(model.layout, config, vocabulary)
    return LoadedModel(config, spec, model.params, vocabulary, layout, str(path), None, model.task_feature_lengths)


@dataclasses.dataclass(frozen=True)
class RunCheckpoint:
    """One verified step of a training run: its recorded metadata and its parameters."""

    directory: pathlib.Path  # the run's checkpoints/ directory
    step: int
    metadata: dict[str, Any]
    config: registry.ModelConfig
    spec: ModelSpec
    params: Any


def _committed_step(checkpointer: checkpoints_lib.Checkpointer, step: int | None) -> int:
    """`step`, checked to be complete; by default the latest complete step (incomplete ones are skipped)."""
    steps = sorted(checkpointer.all_steps())
    if not steps:
        raise FileNotFoundError(f"{checkpointer.directory} holds no checkpoint")
    if step is not None:
        if step not in steps:
            raise FileNotFoundError(f"{checkpointer.directory} has no step {step}; it has steps {steps}")
        checkpointer.check_committed(step)
        return step
    problems = []
    for candidate in reversed(steps):
        try:
            checkpointer.check_committed(candidate)
            return candidate
        except checkpoints_lib.CorruptCheckpoint as error:
            problems.append(error)
    raise problems[0]  # none is complete: why the latest is not


def _reading(checkpointer: checkpoints_lib.Checkpointer, step: int, what: str, read: Callable[[], Any]) -> Any:
    """`read()`; a failure becomes `CorruptCheckpoint` naming what could not be read, and why."""
    try:
        return read()
    except Exception as error:
        reason = f"could not read {what} ({errors.one_line(errors.root_cause(error))})"
        raise checkpoints_lib.CorruptCheckpoint(step, checkpointer.directory, reason) from error


def _verify_params(checkpointer: checkpoints_lib.Checkpointer, step: int, params: Any) -> None:
    """Raises `CorruptCheckpoint` if the restored `params` differ from the fingerprints saved with `step`, or
    hold non-finite values (as `Checkpointer.verify` checks a whole train state)."""
    saved = _reading(checkpointer, step, "the data item", lambda: checkpointer.data(step)).get(
        checkpoints_lib.FINGERPRINTS
    ) or {}
    computed = integrity.fingerprints({"params": params})
    changed = sorted(name for name, fp in computed.items() if name in saved and list(saved[name]) != list(fp[:2]))
    if changed:
        reason = f"fingerprint mismatch (the files were damaged after saving) in {tree_lib.abbreviate(changed)}"
        raise checkpoints_lib.CorruptCheckpoint(step, checkpointer.directory, reason)
    nonfinite = sorted(name for name, (_, _, bad) in computed.items() if bad)
    if nonfinite:
        reason = f"non-finite values in {tree_lib.abbreviate(nonfinite)}"
        raise checkpoints_lib.CorruptCheckpoint(step, checkpointer.directory, reason)


def read_run(path: str | pathlib.Path, *, mesh: Mesh, step: int | None = None) -> RunCheckpoint:
    """A run directory's `step` (default: the latest complete one), its parameters restored onto `mesh` and
    verified against the fingerprints saved with them; a LoRA run's adapters merged into the base (`spec` is
    the base model's).

    Raises `FileNotFoundError` for a missing step (listing the steps there are), `CorruptCheckpoint` for a
    damaged one, `ValueError` for a checkpoint that does not record its vocabulary.
    """
    checkpointer = checkpoints_lib.Checkpointer(checkpoints_lib.checkpoint_dir(path))
    try:
        step = _committed_step(checkpointer, step)
        metadata = _reading(checkpointer, step, "the metadata item", lambda: checkpointer.metadata(step))
        if "vocabulary_spec" not in metadata or "model_config" not in metadata:
            raise ValueError(
                f"{checkpointer.directory}/{step} does not record its model and vocabulary (written by an older "
                "it_jax): evaluate it with scripts/eval.py --gin_file and the run's bindings"
            )
        config = registry.config_from_dict(metadata["model_config"])
        lora = lora_config_from_dict(metadata.get("lora"))
        spec = registry.model_spec(config)
        saved_spec = spec if lora is None else model_spec(config, lora)
        target = with_shardings(saved_spec.abstract_state.to_pure_dict(), saved_spec.param_shardings(mesh))
        params = _reading(checkpointer, step, "the parameters", lambda: checkpointer.restore_params(target, step))
        _verify_params(checkpointer, step, params)
    finally:
        checkpointer.close()
    if lora is not None:  # every consumer of a run (eval, infer, chat, export) sees the merged model
        params = jax.jit(functools.partial(lora_lib.merge, config=lora))(params)
    return RunCheckpoint(checkpointer.directory, step, metadata, config, spec, params)


def model_spec(config: registry.ModelConfig, lora: lora_lib.LoraConfig | None = None) -> ModelSpec:
    """The model a config describes, with `lora`'s adapters when given (`lora.with_lora`)."""
    if lora is None:
        return registry.model_spec(config)
    return ModelSpec.create(lora_lib.with_lora(lambda rngs: registry.build(config, rngs), lora))


def _load_run(path: pathlib.Path, mesh: Mesh, step: int | None, vocabulary_path: str | None) -> LoadedModel:
    run = read_run(path, mesh=mesh, step=step)
    vocabulary_spec = dict(run.metadata["vocabulary_spec"])
    if vocabulary_path is not None:
        vocabulary_spec["sentencepiece_model"] = vocabulary_path
    vocabulary = vocab_lib.make_vocabulary(**vocabulary_spec)
    layout = resolve_layout(run.metadata.get("layout"), run.config, vocabulary)
    lengths = run.metadata.get("task_feature_lengths")
    return LoadedModel(run.config, run.spec, run.params, vocabulary, layout, str(path), run.step, lengths)


def load_model(
    path: str | pathlib.Path,
    *,
    mesh: Mesh | None = None,
    step: int | None = None,
    vocabulary_path: str | None = None,
) -> LoadedModel:
    """A run directory (its latest or given `step`) or a pretrained directory, restored over `mesh`."""
    path = pathlib.Path(path).absolute()
    mesh = mesh or sharding_lib.create_mesh(data=-1)
    if (path / pretrained_lib.MODEL_FILE).is_file():
        if step is not None:
            raise ValueError(f"{path} is a pretrained directory: it has no steps to choose from")
        return _load_pretrained(path, mesh, vocabulary_path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    return _load_run(path, mesh, step, vocabulary_path)


def run_chat_format(run_dir: str | pathlib.Path) -> str | None:
    """The chat format the run renders conversations with (`RunContext.chat_format_name`: a built-in format or
    a tokenizer directory), or None for a run without `run.json` (written by an older it_jax)."""
    if not RunDirectory(run_dir).run_json.is_file():
        return None
    return RunContext.load(run_dir).chat_format_name()


def export_run(run_dir: str | pathlib.Path, out: str | pathlib.Path, *, step: int | None = None) -> RunCheckpoint:
    """Writes a run's `step` (default: the latest complete one) as a pretrained directory at `out` (new or empty).

    The parameters are copied bit for bit; the vocabulary (a SentencePiece model's file or a Hugging Face
    tokenizer's files are copied, a byte vocabulary is recorded with its extra ids), the resolved prompt
    layout, the task feature lengths and the source (run, step) are recorded in `model.json`, and the run's
    chat template in `tokenizer_config.json` (`hf_tokenizer_files`). `out` appears complete or not at all.
    Returns the checkpoint read.
    """
    mesh = sharding_lib.create_mesh(devices=jax.devices()[:1])
    run = read_run(run_dir, mesh=mesh, step=step)
    vocabulary = vocab_lib.make_vocabulary(**run.metadata["vocabulary_spec"])
    byte_vocabulary = isinstance(vocabulary, seqio.ByteVocabulary)
    tokenizer_dir = getattr(vocabulary, "tokenizer_dir", None)  # an HFTokenizerVocabulary's
    vocabulary_path = None if byte_vocabulary or tokenizer_dir else vocabulary.sentencepiece_model_file
    chat_format = run_chat_format(run_dir)
    with hf_tokenizer_files.staged_directory(out) as staging:
        pretrained_lib.save_pretrained(
            staging,
            config=run.config,
            params=jax.tree.map(np.asarray, run.params),
            vocabulary_path=vocabulary_path,
            extra_ids=vocabulary.extra_ids,
            layout=resolve_layout(run.metadata.get("layout"), run.config, vocabulary).to_dict(),
            byte_vocabulary=byte_vocabulary,
            task_feature_lengths=run.metadata.get("task_feature_lengths"),
            source={"run": str(pathlib.Path(run_dir).absolute()), "step": run.step},
            tokenizer_dir=tokenizer_dir,
        )
        if chat_format is not None:
            hf_tokenizer_files.write_chat_template(staging, chat_format)
    return run
