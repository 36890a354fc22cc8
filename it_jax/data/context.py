"""What task collections take from a run, as an argument: its vocabulary, data directory and mixing rates.

A task module (a collection under `mixtures/`, or a user's own file) defines `register(context)`, which
registers its seqio tasks and mixtures with `context.vocabulary`, reads TFDS datasets through
`context.tfds(...)` (local JSONL mirrors when the run has a data directory) and mixes at `context.rate()`.
`load_task_modules` imports each module, by dotted name or `.py` path, and calls it: the one way a run,
an evaluation or an inspection brings in tasks. Registering again with another context replaces the tasks.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import os
import pathlib
import sys
import types
from collections.abc import Callable, Sequence

import seqio

from it_jax import errors
from it_jax.data import mixing, sources

RateFn = Callable[[seqio.Task], float]


@dataclasses.dataclass(frozen=True)
class TaskContext:
    """The run settings a task collection registers with.

    Attributes:
      vocabulary: tokenizes every task's inputs and targets.
      data_dir: a directory of local JSONL mirrors of TFDS datasets (`<name with / as __>/<split>.jsonl`);
        None reads TFDS itself.
      cap, temperature: examples-proportional mixing, `min(examples, cap) ** (1 / temperature)` per task.
      chat_format: how chat tasks render conversations: a built-in format name (`it_jax.data.chat.FORMATS`)
        or a tokenizer directory with a chat template; None: the vocabulary's tokenizer directory when it
        has a chat template, else ChatML (see `chat_format_name`).
    """

    vocabulary: seqio.Vocabulary = dataclasses.field(default_factory=seqio.ByteVocabulary)
    data_dir: str | None = None
    cap: int | None = mixing.DEFAULT_CAP
    temperature: float = 1.0
    chat_format: str | None = None

    def chat_format_name(self) -> str:
        """The chat format chat tasks render with (see the `chat_format` attribute)."""
        return resolve_chat_format(self.chat_format, self.vocabulary)

    def rate(self, *, cap: int | None | str = "run", split: str = "train") -> RateFn:
        """The run's examples-proportional rate (or with another `cap`, e.g. a submixture's own, or None)."""
        return mixing.capped_rate(cap=self.cap if cap == "run" else cap, temperature=self.temperature, split=split)

    def tfds(self, name: str, *, splits: Sequence[str] = ("train", "validation")) -> sources.TfdsSource:
        """The TFDS dataset `name`, read from its local mirror when the run has a data directory."""
        return sources.TfdsSource(name, splits=splits, data_dir=self.data_dir)


def resolve_chat_format(chat_format: str | None, vocabulary: seqio.Vocabulary) -> str:
    """`chat_format` if given; else the vocabulary's tokenizer directory when its tokenizer_config.json has a
    chat template (or it has a chat_template.jinja), else "chatml". Training, evaluation and chat agree on it."""
    if chat_format is not None:
        return chat_format
    tokenizer_dir = getattr(vocabulary, "tokenizer_dir", None)
    if tokenizer_dir is not None:
        directory = pathlib.Path(tokenizer_dir)
        config = directory / "tokenizer_config.json"
        if (directory / "chat_template.jinja").is_file() or (
            config.is_file() and '"chat_template"' in config.read_text(encoding="utf-8")
        ):
            return str(directory)
    return "chatml"


def module_label(module: str) -> str:
    """How a run records a task module: a dotted name as given, a `.py` path made absolute."""
    return os.path.abspath(module) if module.endswith(".py") else module


def import_task_module(module: str) -> types.ModuleType:
    """Imports a task module given by dotted name or by `.py` path (a clear `ConfigError` if missing)."""
    if module.endswith(".py"):
        path = pathlib.Path(module).resolve()
        if not path.is_file():
            raise errors.ConfigError(f"task module {module!r}: no such file ({path})")
        name = f"it_jax_task_modules.{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[name] = loaded
        spec.loader.exec_module(loaded)
        return loaded
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and not module.startswith(error.name) and error.name != module:
            raise  # the module exists but imports something missing: that error is the one to show
        raise errors.ConfigError(
            f"task module {module!r} not found on the Python path (the installed packages and PYTHONPATH; "
            "the working directory only under `python -m`): give a dotted module name or a path to a .py file"
        ) from error


def load_task_modules(modules: Sequence[str], context: TaskContext) -> list[types.ModuleType]:
    """Imports each task module and calls its `register(context)`; returns the modules."""
    loaded = []
    for module in modules:
        imported = import_task_module(module)
        register = getattr(imported, "register", None)
        if not callable(register):
            raise errors.ConfigError(
                f"task module {module!r} defines no register(context) function: put its task and mixture "
                "registrations in `def register(context):` (see the README, 'Bring your own tasks')"
            )
        register(context)
        loaded.append(imported)
    return loaded


def check_vocabularies(mixture_or_task: str, vocabulary: seqio.Vocabulary) -> None:
    """Raises a `ConfigError` when a task of `mixture_or_task` tokenizes with another vocabulary than the
    run's (e.g. a task module that registered without `context.vocabulary`): its ids would be wrong."""
    for task in seqio.get_subtasks(seqio.get_mixture_or_task(mixture_or_task)):
        for name, feature in task.output_features.items():
            if feature.vocabulary != vocabulary:
                raise errors.ConfigError(
                    f"task {task.name!r} tokenizes {name!r} with {_describe(feature.vocabulary)}, but the run "
                    f"uses {_describe(vocabulary)}: register it inside its module's register(context) with "
                    "`tasks.register_task(..., context=context)`"
                )


def _describe(vocabulary: seqio.Vocabulary) -> str:
    path = getattr(vocabulary, "sentencepiece_model_file", None)
    return f"{type(vocabulary).__name__}({path})" if path else f"{type(vocabulary).__name__}"
