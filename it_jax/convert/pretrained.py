"""The pretrained model directory: what conversion writes and inference and fine-tuning read.

Layout:
  model.json   {"format": "it_jax.pretrained", "version": 1, "model_config": {...},
                "vocabulary": {"type": "sentencepiece" | "byte" | "hf_tokenizer",
                               "file": "spiece.model" / "tokenizer.json" or null, "extra_ids": N},
                "layout": {"architecture": ..., "start_id": ..., "inputs_eos": ...} (optional),
                "task_feature_lengths": {"inputs": N, "targets": N} (optional: a training run's),
                "source": {"run": "/abs/run_dir", "step": N} (optional: the run it was exported from)}
  params/      the parameters (a pure dict) as an Orbax checkpoint
  <vocabulary> a copy of the SentencePiece model, when there is one, or of a Hugging Face tokenizer's files
               (`HF_TOKENIZER_FILES` that it has, `tokenizer.json` required)

The model config is `registry.config_to_dict`'s; the layout is `it_jax.data.layout.PromptLayout.to_dict`'s
(how prompts are built: absent, the default layout of the architecture and vocabulary). The vocabulary is
`seqio.SentencePieceVocabulary(file, extra_ids)` (T5 and Flan-T5: the 32,000-piece T5 model with 100 extra
ids), or `seqio.ByteVocabulary(extra_ids)` for type "byte" (no file), or for type "hf_tokenizer"
`it_jax.data.hf_vocab.HFTokenizerVocabulary(directory)` (no extra ids). Without "type" (directories written
before byte vocabularies could be recorded) it is a SentencePiece model when "file" is set, else none.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from it_jax.convert import tree
from it_jax.models import registry

if TYPE_CHECKING:
    import seqio

FORMAT = "it_jax.pretrained"
VERSION = 1
MODEL_FILE = "model.json"
PARAMS_DIR = "params"
VOCABULARY_TYPES = ("sentencepiece", "byte", "hf_tokenizer", None)
# A Hugging Face tokenizer's files (those of `it_jax.data.hf_vocab`, which this module does not import: it
# loads TensorFlow), copied when present; the first is required.
HF_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json")


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """A loaded pretrained model directory.

    Attributes:
      config: the model config (`T5Config` or `DecoderConfig`).
      params: pure-dict parameters: numpy arrays, or jax arrays when loaded with shardings.
      vocabulary_path: the SentencePiece model inside the directory, or None (a byte vocabulary, or none).
      extra_ids: sentinel ids appended to the vocabulary.
      layout: the recorded prompt layout (a `PromptLayout` dict), or None.
      byte_vocabulary: the vocabulary is `seqio.ByteVocabulary(extra_ids)`.
      task_feature_lengths: the feature lengths of the run it was exported from, or None.
      source: {"run": directory, "step": step} of that run, or None.
      tokenizer_dir: the directory itself when it holds a Hugging Face tokenizer (type "hf_tokenizer"), or None.
    """

    config: registry.ModelConfig
    params: tree.Params
    vocabulary_path: str | None
    extra_ids: int
    layout: dict[str, Any] | None = None
    byte_vocabulary: bool = False
    task_feature_lengths: dict[str, int] | None = None
    source: dict[str, Any] | None = None
    tokenizer_dir: str | None = None


def save_pretrained(
    directory: str | pathlib.Path,
    *,
    config: registry.ModelConfig,
    params: Mapping[str | int, Any],
    vocabulary_path: str | pathlib.Path | None,
    extra_ids: int = 0,
    layout: Mapping[str, Any] | None = None,
    byte_vocabulary: bool = False,
    task_feature_lengths: Mapping[str, int] | None = None,
    source: Mapping[str, Any] | None = None,
    tokenizer_dir: str | pathlib.Path | None = None,
) -> pathlib.Path:
    """Writes `config`, `params` and a copy of the SentencePiece file into a new (or empty) `directory`.

    The parameters must match the config exactly (names, shapes, dtypes). `byte_vocabulary` records
    `seqio.ByteVocabulary(extra_ids)` instead of a SentencePiece file; `task_feature_lengths` and `source`
    (see the module docstring) are recorded when given. `tokenizer_dir` (a Hugging Face tokenizer directory,
    e.g. the one converted from) records its tokenizer files instead. Returns the directory.
    """
    if byte_vocabulary and vocabulary_path is not None:
        raise ValueError(f"a byte vocabulary has no file, but vocabulary_path {vocabulary_path} was given")
    _check_tokenizer_dir(tokenizer_dir, vocabulary_path is not None or byte_vocabulary, extra_ids)
    tree.check_params(config, params, source="save_pretrained parameters")
    if vocabulary_path is not None and not pathlib.Path(vocabulary_path).is_file():
        raise FileNotFoundError(f"vocabulary file {vocabulary_path} not found")
    if vocabulary_path is not None and pathlib.Path(vocabulary_path).name in (MODEL_FILE, PARAMS_DIR):
        raise ValueError(f"vocabulary file {vocabulary_path}: its name clashes with the directory's own files")
    if extra_ids < 0:
        raise ValueError(f"extra_ids must be >= 0, got {extra_ids}")
    directory = new_directory(directory)
    vocabulary_file = None
    if vocabulary_path is not None:
        vocabulary_file = pathlib.Path(vocabulary_path).name
        shutil.copyfile(vocabulary_path, directory / vocabulary_file)
    if tokenizer_dir is not None:
        vocabulary_file = HF_TOKENIZER_FILES[0]
        for name in HF_TOKENIZER_FILES:
            if (pathlib.Path(tokenizer_dir) / name).is_file():
                shutil.copyfile(pathlib.Path(tokenizer_dir) / name, directory / name)
    checkpointer = ocp.StandardCheckpointer()
    try:
        checkpointer.save(directory / PARAMS_DIR, dict(params))
        checkpointer.wait_until_finished()
    finally:
        checkpointer.close()
    metadata = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": registry.config_to_dict(config),
        "vocabulary": {"type": _vocabulary_type(vocabulary_file, byte_vocabulary, tokenizer_dir is not None),
                       "file": vocabulary_file, "extra_ids": extra_ids},
    }
    optional = {"layout": layout, "task_feature_lengths": task_feature_lengths, "source": source}
    metadata.update({key: dict(value) for key, value in optional.items() if value is not None})
    # Written last: a directory with model.json is complete.
    (directory / MODEL_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    return directory


def _check_tokenizer_dir(tokenizer_dir: str | pathlib.Path | None, other_vocabulary: bool, extra_ids: int) -> None:
    if tokenizer_dir is None:
        return
    if other_vocabulary or extra_ids:
        raise ValueError("a Hugging Face tokenizer_dir is the whole vocabulary: give no vocabulary_path, "
                         "byte_vocabulary or extra_ids with it")
    if not (pathlib.Path(tokenizer_dir) / HF_TOKENIZER_FILES[0]).is_file():
        raise FileNotFoundError(f"{pathlib.Path(tokenizer_dir) / HF_TOKENIZER_FILES[0]} not found")


def _vocabulary_type(vocabulary_file: str | None, byte_vocabulary: bool, hf_tokenizer: bool) -> str | None:
    if byte_vocabulary:
        return "byte"
    if hf_tokenizer:
        return "hf_tokenizer"
    return "sentencepiece" if vocabulary_file else None


def new_directory(directory: str | pathlib.Path) -> pathlib.Path:
    """Creates `directory` (absolute); raises if it exists and is not empty: nothing is ever overwritten."""
    directory = pathlib.Path(directory).absolute()
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise FileExistsError(f"{directory} exists and is not empty; choose a new output directory")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def read_metadata(directory: str | pathlib.Path) -> dict[str, Any]:
    """`model.json` of a pretrained directory, checked for the format and version."""
    path = pathlib.Path(directory) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: not an it_jax pretrained directory (write one with scripts/convert_checkpoint.py)"
        )
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise ValueError(f"{path}: format {found!r}, expected {FORMAT!r}")
    if metadata.get("version") != VERSION:
        version = metadata.get("version")
        raise ValueError(f"{path}: version {version!r} unsupported; this it_jax reads version {VERSION}")
    for key in ("model_config", "vocabulary"):
        if key not in metadata:
            raise ValueError(f"{path}: missing {key!r}")
    kind = metadata["vocabulary"].get("type")
    if kind not in VOCABULARY_TYPES:
        raise ValueError(f"{path}: vocabulary type {kind!r} unknown; known: {VOCABULARY_TYPES}")
    file = metadata["vocabulary"].get("file")
    if (kind == "byte" and file) or (kind == "sentencepiece" and not file):
        raise ValueError(f"{path}: vocabulary type {kind!r} with file {file!r}: a byte vocabulary has no file, "
                         "a SentencePiece one needs its file")
    if kind == "hf_tokenizer" and file != HF_TOKENIZER_FILES[0]:
        raise ValueError(f"{path}: vocabulary type 'hf_tokenizer' needs file {HF_TOKENIZER_FILES[0]!r}, got {file!r}")
    return metadata


def _check_stored(
    checkpointer: ocp.StandardCheckpointer, params_dir: pathlib.Path, expected: Mapping[tree.Path, jax.ShapeDtypeStruct]
) -> None:
    """Compares the checkpoint's array metadata with the config's parameters (Orbax does not check shapes)."""
    if not params_dir.is_dir():
        raise FileNotFoundError(f"{params_dir} not found: the pretrained directory has no parameters")
    stored = tree.flatten(checkpointer.metadata(params_dir).item_metadata.tree)
    stored = {tree.path_name(path): meta for path, meta in stored.items()}
    names = {tree.path_name(path): want for path, want in expected.items()}
    problems = []
    if set(stored) != set(names):
        missing, unexpected = sorted(set(names) - set(stored)), sorted(set(stored) - set(names))
        problems.append(
            f"missing {tree.abbreviate(missing) or 'none'}, unexpected {tree.abbreviate(unexpected) or 'none'}"
        )
    for name in sorted(set(stored) & set(names)):
        got, want = stored[name], names[name]
        if tuple(got.shape) != tuple(want.shape) or np.dtype(got.dtype) != np.dtype(want.dtype):
            problems.append(
                f"{name} is {np.dtype(got.dtype).name}{list(got.shape)}, the config needs "
                f"{np.dtype(want.dtype).name}{list(want.shape)}"
            )
    if problems:
        raise ValueError(f"{params_dir} does not match {MODEL_FILE}'s model_config: " + "; ".join(problems[:8]))


def _restore(
    checkpointer: ocp.StandardCheckpointer,
    params_dir: pathlib.Path,
    expected: Mapping[tree.Path, jax.ShapeDtypeStruct],
    shardings: Mapping[str | int, Any] | None,
) -> tree.Params:
    if shardings is None:
        restored = tree.flatten(checkpointer.restore(params_dir))
        by_name = {tree.path_name(path): value for path, value in restored.items()}
        return tree.unflatten({path: np.asarray(by_name[tree.path_name(path)]) for path in expected})
    by_name = {tree.path_name(path): sharding for path, sharding in tree.flatten(shardings).items()}
    missing = sorted({tree.path_name(path) for path in expected} - set(by_name))
    if missing:
        raise ValueError(f"shardings lack entries for parameters {tree.abbreviate(missing)}")
    target = {
        path: jax.ShapeDtypeStruct(want.shape, want.dtype, sharding=by_name[tree.path_name(path)])
        for path, want in expected.items()
    }
    return checkpointer.restore(params_dir, tree.unflatten(target))


def load_pretrained(directory: str | pathlib.Path, *, shardings: Mapping[str | int, Any] | None = None) -> Pretrained:
    """Reads a pretrained directory.

    Args:
      shardings: optional tree of `jax.sharding.Sharding`s shaped like the parameters (e.g.
        `registry.model_spec(config).param_shardings(mesh)`): the arrays are restored directly onto them.
        Without it the parameters are numpy arrays in host memory.
    """
    directory = pathlib.Path(directory).absolute()
    metadata = read_metadata(directory)
    config = registry.config_from_dict(metadata["model_config"])
    vocabulary = metadata["vocabulary"]
    vocabulary_path = None
    if vocabulary.get("file"):
        vocabulary_path = str(directory / vocabulary["file"])
        if not pathlib.Path(vocabulary_path).is_file():
            raise FileNotFoundError(f"{vocabulary_path}, named in {directory / MODEL_FILE}, is missing")
    hf_tokenizer = vocabulary.get("type") == "hf_tokenizer"
    if hf_tokenizer:
        vocabulary_path = None  # not a SentencePiece model: `tokenizer_dir` names it
    expected = tree.expected_params(config)
    checkpointer = ocp.StandardCheckpointer()
    try:
        _check_stored(checkpointer, directory / PARAMS_DIR, expected)
        params = _restore(checkpointer, directory / PARAMS_DIR, expected, shardings)
    finally:
        checkpointer.close()
    return Pretrained(
        config,
        params,
        vocabulary_path,
        int(vocabulary.get("extra_ids", 0)),
        metadata.get("layout"),
        byte_vocabulary=vocabulary.get("type") == "byte",
        task_feature_lengths=metadata.get("task_feature_lengths"),
        source=metadata.get("source"),
        tokenizer_dir=str(directory) if hf_tokenizer else None,
    )


def make_vocabulary(pretrained: Pretrained, override_path: str | None = None) -> seqio.Vocabulary | None:
    """The pretrained model's vocabulary: its SentencePiece model (or `override_path`'s, same extra ids),
    `seqio.ByteVocabulary` or its Hugging Face tokenizer; None if none is recorded. An `override_path` that is
    a directory is read as a Hugging Face tokenizer directory."""
    import seqio  # Imported here: it loads TensorFlow, which converting checkpoints does not need.

    tokenizer_dir = override_path if override_path and pathlib.Path(override_path).is_dir() else None
    if tokenizer_dir or (override_path is None and pretrained.tokenizer_dir):
        from it_jax.data import hf_vocab

        return hf_vocab.HFTokenizerVocabulary(tokenizer_dir or pretrained.tokenizer_dir)
    path = override_path or pretrained.vocabulary_path
    if path is None:
        return seqio.ByteVocabulary(extra_ids=pretrained.extra_ids) if pretrained.byte_vocabulary else None
    if not pathlib.Path(path).is_file():
        raise FileNotFoundError(f"SentencePiece model not found: {path}")
    return seqio.SentencePieceVocabulary(path, extra_ids=pretrained.extra_ids)
