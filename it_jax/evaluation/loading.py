"""Loading any model directory for evaluation or inference: a training run or a pretrained directory.

A run directory (`checkpoints/<step>/`, written by training) records its model config, vocabulary, prompt
layout and feature lengths with every checkpoint; a pretrained directory (`model.json`, written by
`scripts/convert_checkpoint.py`) records the config, vocabulary and, for Hugging Face imports, the layout.
Parameters are restored directly onto their shardings over the mesh; they must match the config exactly.
"""

from __future__ import annotations

import dataclasses
import pathlib
from collections.abc import Mapping
from typing import Any

import seqio
from jax.sharding import Mesh

from it_jax import sharding as sharding_lib
from it_jax.convert import pretrained as pretrained_lib
from it_jax.data import layout as layout_lib
from it_jax.data import vocab as vocab_lib
from it_jax.models import registry
from it_jax.models.spec import ModelSpec
from it_jax.train import checkpoints as checkpoints_lib
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
    return LoadedModel(config, spec, model.params, vocabulary, layout, str(path))


def _load_run(path: pathlib.Path, mesh: Mesh, step: int | None) -> LoadedModel:
    checkpointer = checkpoints_lib.Checkpointer(checkpoints_lib.checkpoint_dir(path))
    try:
        step = checkpointer.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError(f"{checkpointer.directory} holds no checkpoint")
        if step not in checkpointer.all_steps():
            raise FileNotFoundError(f"{checkpointer.directory} has no step {step}; it has {checkpointer.all_steps()}")
        metadata = checkpointer.metadata(step)
        if "vocabulary_spec" not in metadata:
            raise ValueError(
                f"{checkpointer.directory}/{step} does not record its vocabulary (written by an older it_jax): "
                "evaluate it with scripts/eval.py --gin_file and the run's bindings"
            )
        config = registry.config_from_dict(metadata["model_config"])
        spec = registry.model_spec(config)
        target = with_shardings(spec.abstract_state.to_pure_dict(), spec.param_shardings(mesh))
        params = checkpointer.restore_params(target, step)
    finally:
        checkpointer.close()
    vocabulary = vocab_lib.make_vocabulary(**metadata["vocabulary_spec"])
    layout = resolve_layout(metadata.get("layout"), config, vocabulary)
    lengths = metadata.get("task_feature_lengths")
    return LoadedModel(config, spec, params, vocabulary, layout, str(path), step, lengths)


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
    return _load_run(path, mesh, step)
