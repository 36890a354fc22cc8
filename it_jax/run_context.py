"""The run context: the settings every part of a run shares, passed to them as an argument.

Training, evaluation, inference and export read the model, its vocabulary and prompt layout, the feature
lengths, the task modules with their data directory and mixing rates, and the run directory from one
`RunContext`. A training run writes it as `run.json` (with the code version) beside its `config.gin`, so
that `scripts/eval.py --checkpoint RUN_DIR` and export need no gin bindings (`RunContext.load`).
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import os
import pathlib
import subprocess
from collections.abc import Mapping
from typing import Any

import seqio

from it_jax import errors
from it_jax.data import context as context_lib
from it_jax.data import layout as layout_lib
from it_jax.data import mixing, vocab
from it_jax.models import lora as lora_lib
from it_jax.models import registry
from it_jax.run_dir import RunDirectory

RUN_JSON_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What a run's training, evaluation and task collections share.

    Attributes:
      directory: the run directory's layout (`run.json`, `config.gin`, `checkpoints/`, ...).
      model_config: a `T5Config` or `DecoderConfig`.
      vocabulary: tokenizes every task; `layout` turns inputs and targets into model tokens.
      task_feature_lengths: `inputs` and `targets` lengths in tokens.
      task_modules: the modules (dotted names or absolute `.py` paths) that register the run's tasks.
      data_dir: local JSONL mirrors of TFDS datasets (None: TFDS itself).
      cap, temperature: examples-proportional mixing of the collections' mixtures.
      chat_format: how chat tasks and `it-jax-chat` render conversations (see `TaskContext.chat_format`).
      lora: the LoRA adapters the run trains (`train_run.lora`), or None; loaders merge them into the base.
    """

    directory: RunDirectory
    model_config: registry.ModelConfig
    vocabulary: seqio.Vocabulary
    layout: layout_lib.PromptLayout
    task_feature_lengths: Mapping[str, int]
    task_modules: tuple[str, ...] = ()
    data_dir: str | None = None
    cap: int | None = mixing.DEFAULT_CAP
    temperature: float = 1.0
    chat_format: str | None = None
    lora: lora_lib.LoraConfig | None = None

    @property
    def model_dir(self) -> str:
        return str(self.directory.root)

    @property
    def tasks(self) -> context_lib.TaskContext:
        """What the task modules register with: the vocabulary, the data directory and the mixing rates."""
        return context_lib.TaskContext(self.vocabulary, self.data_dir, self.cap, self.temperature, self.chat_format)

    def chat_format_name(self) -> str:
        """The chat format (built-in name or tokenizer directory) this run's conversations are rendered with."""
        return self.tasks.chat_format_name()

    def register_tasks(self) -> None:
        """Imports the task modules and registers their tasks and mixtures with this run's settings."""
        context_lib.load_task_modules(self.task_modules, self.tasks)

    def metadata(self) -> dict[str, Any]:
        """Recorded with every checkpoint: enough to evaluate or serve the run without its gin files."""
        return {
            "architecture": registry.architecture(self.model_config),
            "model_config": registry.config_to_dict(self.model_config),
            "vocabulary": type(self.vocabulary).__name__,
            "vocabulary_spec": vocab.describe(self.vocabulary),
            "layout": self.layout.to_dict(),
            "task_feature_lengths": dict(self.task_feature_lengths),
            # Recorded only when set, so that the checkpoints of runs before LoRA still resume.
            **({"lora": lora_config_to_dict(self.lora)} if self.lora is not None else {}),
        }

    def to_json(self) -> dict[str, Any]:
        """`run.json`'s content: the metadata, the task modules and data, the mixing, the code version."""
        return {
            "version": RUN_JSON_VERSION,
            **self.metadata(),
            "task_modules": list(self.task_modules),
            "data_dir": self.data_dir,
            "mixing": {"cap": self.cap, "temperature": self.temperature},
            "chat_format": self.chat_format,
            "code": code_version(),
            "written": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        }

    def save(self, config_gin: str) -> None:
        """Writes `run.json` and `config.gin` into the run directory (each atomically)."""
        self.directory.root.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.directory.run_json, json.dumps(self.to_json(), indent=2) + "\n")
        _write_atomically(self.directory.config_gin, config_gin)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], directory: str | pathlib.Path) -> RunContext:
        """The context `to_json` described, for the run in `directory`."""
        mixing_settings = data.get("mixing", {})
        return cls(
            directory=RunDirectory(directory),
            model_config=registry.config_from_dict(data["model_config"]),
            vocabulary=vocab.make_vocabulary(**data["vocabulary_spec"]),
            layout=layout_lib.PromptLayout.from_dict(data["layout"]),
            task_feature_lengths=dict(data["task_feature_lengths"]),
            task_modules=tuple(data.get("task_modules", ())),
            data_dir=data.get("data_dir"),
            cap=mixing_settings.get("cap", mixing.DEFAULT_CAP),
            temperature=mixing_settings.get("temperature", 1.0),
            chat_format=data.get("chat_format"),
            lora=lora_config_from_dict(data.get("lora")),
        )

    @classmethod
    def load(cls, directory: str | pathlib.Path) -> RunContext:
        """The context a training run saved in `directory` (its `run.json`)."""
        path = RunDirectory(directory).run_json
        if not path.is_file():
            raise errors.ConfigError(
                f"{directory} has no run.json (runs write it when training starts): pass the run's task "
                "modules and settings explicitly"
            )
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")), directory)
        except (ValueError, KeyError, TypeError) as error:
            raise errors.ConfigError(f"{path} is not a readable run context ({errors.one_line(error)})") from error


def lora_config_to_dict(config: lora_lib.LoraConfig) -> dict[str, Any]:
    """A `LoraConfig` as recorded in run.json and checkpoint metadata."""
    return {**dataclasses.asdict(config), "targets": list(config.targets)}


def lora_config_from_dict(data: Mapping[str, Any] | None) -> lora_lib.LoraConfig | None:
    """The recorded `LoraConfig` (None when the run has none)."""
    return None if data is None else lora_lib.LoraConfig(**{**data, "targets": tuple(data["targets"])})


def code_version() -> dict[str, Any]:
    """The installed it_jax version and, in a git checkout, its commit and whether files were modified."""
    try:
        version = importlib.metadata.version("it_jax")
    except importlib.metadata.PackageNotFoundError:
        version = None
    repository = pathlib.Path(__file__).resolve().parent.parent
    commit = _git(repository, "rev-parse", "HEAD")
    status = _git(repository, "status", "--porcelain", "--untracked-files=no") if commit else None
    return {"it_jax": version, "git_commit": commit, "git_modified": bool(status) if commit else None}


def _git(repository: pathlib.Path, *args: str) -> str | None:
    if not (repository / ".git").exists():
        return None
    try:
        result = subprocess.run(
            ["git", "-C", str(repository), *args], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _write_atomically(path: pathlib.Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
