"""Decontamination: word n-gram overlap between a training mixture and evaluation tasks.

An evaluation example is contaminated when one of its n-grams (13 words by default) occurs in the training
data. Text is lower-cased, punctuation becomes spaces (so "Poor's" and "Poor 's" agree), and words are split
on whitespace.

N-grams come from the DATA, not from rendered prompts: templates add boilerplate ("OPTIONS:", "Premise:",
...) that training and evaluation examples share. The texts are the strings of each raw source example
(also inside lists and dicts), before the task's preprocessor: preprocessors add text that is no data
either, such as static answer options or label phrases ("is on the same topic as, but does not mean the
same as" for MRPC's label 0), which would flag every example with that label. Raw strings a task's
templates do not use still count, which errs towards flagging. Each string is hashed on its own, so no
n-gram spans two fields. A string shorter than n words counts as one n-gram of its own length when it has
at least `min_words` words (8 by default): it matches only an equal whole training string, and short
answers such as "yes" never count.

N-grams are hashed to stable 64-bit values (blake2b of each word, combined by position), so a training
index does not depend on the process. Results are keyed by `TaskInfo.name`: a task's variants and
per-template tasks share its examples and their indices (`idx`, the example's position in its split).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import seqio
import tqdm

from it_jax.data import sources as sources_lib
from it_jax.data import tasks as tasks_lib

DEFAULT_NGRAM = 13
DEFAULT_MIN_WORDS = 8
_CHUNK_WORDS = 1 << 20  # words hashed per vectorized batch
_MULTIPLIER = 0x9E3779B97F4A7C15  # odd: distinct weights for the positions of an n-gram
_NON_WORD = re.compile(r"[^\w\s]+")


def normalize(text: str) -> list[str]:
    """The words of `text`: lower-cased, punctuation replaced by spaces, split on whitespace."""
    return _NON_WORD.sub(" ", text.lower()).split()


def _word_hash(word: str) -> int:
    return int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(), "little")


class _Hasher:
    """Hashes the n-grams of (owner, text) pairs in vectorized batches; caches each word's hash."""

    def __init__(self, ngram: int, min_words: int):
        if not 1 <= min_words <= ngram:
            raise ValueError(f"need 1 <= min_words <= ngram, got ngram={ngram}, min_words={min_words}")
        self.ngram, self.min_words = ngram, min_words
        self._weights = np.array([pow(_MULTIPLIER, i + 1, 1 << 64) for i in range(ngram)], dtype=np.uint64)
        self._words: dict[str, int] = {}

    def _ids(self, text: str) -> list[int]:
        cache = self._words
        return [cache.get(w) or cache.setdefault(w, _word_hash(w)) for w in normalize(text)]

    def grams(self, texts: Iterable[tuple[int, str]]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yields batches of (n-gram hashes, owner of each hash) over the texts."""
        words: list[int] = []
        lengths: list[int] = []
        owners: list[int] = []
        for owner, text in texts:
            ids = self._ids(text)
            if len(ids) < self.min_words:
                continue
            words.extend(ids)
            lengths.append(len(ids))
            owners.append(owner)
            if len(words) >= _CHUNK_WORDS:
                yield self._batch(words, lengths, owners)
                words, lengths, owners = [], [], []
        if lengths:
            yield self._batch(words, lengths, owners)

    def _batch(self, words: list[int], lengths: list[int], owners: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Hashes every n-word window inside one text, and each text shorter than n words as a whole."""
        n = self.ngram
        ids = np.array(words, dtype=np.uint64)
        sizes = np.array(lengths)
        starts = np.cumsum(sizes) - sizes
        text_of_word = np.repeat(np.arange(len(sizes)), sizes)
        count = max(len(ids) - n + 1, 0)
        windows = np.zeros(count, dtype=np.uint64)
        for i in range(n):
            windows += ids[i : i + count] * self._weights[i]
        inside = text_of_word[:count] == text_of_word[n - 1 : n - 1 + count]
        position = np.minimum(np.arange(len(ids)) - starts[text_of_word], n - 1)
        wholes = np.add.reduceat(ids * self._weights[position], starts)
        short = sizes < n
        owner_of = np.array(owners)
        return (
            np.concatenate([windows[inside], wholes[short]]),
            np.concatenate([owner_of[text_of_word[:count][inside]], owner_of[short]]),
        )


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)


def example_texts(info: tasks_lib.TaskInfo, split: str) -> Iterator[tuple[int, str]]:
    """(idx, text) for every distinct string of every raw example of `split` (also inside lists and
    dicts); the train split is trimmed to `max_train_examples` as in training."""
    try:
        total = info.num_examples(split)
    except Exception as e:  # no data here (no TFDS download, no mirror, no such split): name the task
        raise sources_lib.SourceError(f"task {info.name!r}, split {split!r}: cannot read its examples: {e}") from e
    examples = info.source_examples(split)  # the examples training reads, trimmed alike
    for j, example in enumerate(tqdm.tqdm(examples, total=total, desc=f"{info.name}:{split}", disable=None)):
        for text in dict.fromkeys(_strings(example)):
            yield j, text


def resolve_tasks(names: Sequence[str]) -> tuple[tasks_lib.TaskInfo, ...]:
    """The distinct `TaskInfo`s behind seqio task or mixture names (a mixture contributes its leaf tasks)."""
    infos: dict[str, tasks_lib.TaskInfo] = {}
    for name in names:
        try:
            task_or_mixture = seqio.get_mixture_or_task(name)
        except ValueError:
            known = [*seqio.MixtureRegistry.names(), *seqio.TaskRegistry.names()]
            hint = difflib.get_close_matches(name, known, n=5) or sorted(known)[:5]
            raise ValueError(f"unknown task or mixture {name!r}; known names include {hint}") from None
        leaves = task_or_mixture.tasks if isinstance(task_or_mixture, seqio.Mixture) else [task_or_mixture]
        for task in leaves:
            try:
                info = tasks_lib.task_info(task.name)
            except KeyError as e:
                raise ValueError(f"{name!r}: task {task.name!r} is not an it_jax instruction task ({e})") from None
            infos.setdefault(info.name, info)
    return tuple(infos.values())


@dataclasses.dataclass(frozen=True)
class TrainIndex:
    """The sorted distinct n-gram hashes of a training set."""

    ngram: int
    min_words: int
    tasks: tuple[str, ...]
    hashes: np.ndarray

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """A boolean mask: which of `hashes` occur in the training set."""
        if not len(self.hashes):
            return np.zeros(len(hashes), dtype=bool)
        at = np.minimum(np.searchsorted(self.hashes, hashes), len(self.hashes) - 1)
        return self.hashes[at] == hashes


def build_train_index(
    infos: Sequence[tasks_lib.TaskInfo], *, split: str = "train", ngram: int = DEFAULT_NGRAM,
    min_words: int = DEFAULT_MIN_WORDS,
) -> TrainIndex:
    """Hashes the n-grams of every string of every raw example of `split` of each training task."""
    hasher = _Hasher(ngram, min_words)
    batches = [hashes for info in infos for hashes, _ in hasher.grams(example_texts(info, split))]
    hashes = np.unique(np.concatenate(batches)) if batches else np.zeros(0, dtype=np.uint64)
    return TrainIndex(ngram=ngram, min_words=min_words, tasks=tuple(info.name for info in infos), hashes=hashes)


@dataclasses.dataclass(frozen=True)
class TaskContamination:
    """The overlap of one evaluation task's split with the training set."""

    task: str
    split: str
    total: int
    contaminated: tuple[int, ...]  # example indices (`idx`) that share an n-gram with the training set

    @property
    def share(self) -> float:
        """Contaminated examples, in percent of the split."""
        return 100.0 * len(self.contaminated) / self.total if self.total else 0.0

    @property
    def clean(self) -> tuple[int, ...]:
        """Indices of the examples with no n-gram in the training set."""
        dirty = set(self.contaminated)
        return tuple(i for i in range(self.total) if i not in dirty)


def check_task(index: TrainIndex, info: tasks_lib.TaskInfo, split: str = "validation") -> TaskContamination:
    """Flags the examples of `info`'s `split` that share an n-gram with the training index."""
    hasher = _Hasher(index.ngram, index.min_words)
    dirty: set[int] = set()
    for hashes, owners in hasher.grams(example_texts(info, split)):
        dirty.update(owners[index.contains(hashes)].tolist())
    total = info.num_examples(split)
    return TaskContamination(task=info.name, split=split, total=total, contaminated=tuple(sorted(dirty)))


def write_report(
    path: str | os.PathLike, index: TrainIndex, results: Sequence[TaskContamination], *, train: str
) -> None:
    """Writes the contaminated indices of each evaluation task as JSON (read back by `load_excluded`);
    `train` names the training mixture or tasks."""
    splits = {r.split for r in results}
    if len(splits) > 1:
        raise ValueError(f"one report covers one split; got {sorted(splits)}")
    report = {
        "ngram": index.ngram,
        "min_words": index.min_words,
        "train": train,
        "split": splits.pop() if splits else None,
        "tasks": {r.task: {"total": r.total, "contaminated": list(r.contaminated)} for r in results},
    }
    with open(path, "w", encoding="utf-8") as f:
        json.dump(report, f, indent=1)
        f.write("\n")


def load_excluded(path: str | os.PathLike) -> dict[str, set[int]]:
    """Task name (`TaskInfo.name`) -> indices of its contaminated examples, from a `write_report` file."""
    with open(path, encoding="utf-8") as f:
        report = json.load(f)
    try:
        return {name: {int(i) for i in entry["contaminated"]} for name, entry in report["tasks"].items()}
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(f"{path}: not a decontamination report ({type(e).__name__}: {e})") from None
