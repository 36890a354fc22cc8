"""Where raw examples come from: Python generators, JSONL files, TFDS datasets or their local JSONL mirrors.

Every source yields plain Python dicts (strings as `str`, never bytes), split by split, so the templating
step above it is ordinary Python. `locate` says where a split, or one of its records, is read from (a file and
line, a generator, a TFDS dataset) for error messages.
"""

from __future__ import annotations

import itertools
import json
import os
import pathlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from it_jax import errors


Example = dict[str, Any]


class SourceError(errors.DataError):
    """A source cannot be read: a missing file, a malformed line, an unknown split."""


class Source(Protocol):
    """The interface every source implements."""

    splits: tuple[str, ...]

    def examples(self, split: str) -> Iterator[Example]:
        """Yields the examples of `split` in a fixed order."""

    def num_examples(self, split: str) -> int:
        """The number of examples in `split`."""


def locate(source: Source, split: str, index: int | None = None) -> str:
    """Where `split` (or its record `index`) is read from, e.g. `path/train.jsonl:12`, for error messages;
    a source without a `location` method is named by its class."""
    location = getattr(source, "location", None)
    if location is not None:
        return location(split, index)
    return f"{type(source).__name__} source" + ("" if index is None else f", record {index}")


def _check_split(source_name: str, split: str, splits: Sequence[str]) -> None:
    if split not in splits:
        raise SourceError(f"{source_name} has no split {split!r}; its splits are {list(splits)}")


class GeneratorSource:
    """Examples from a Python function `split -> iterable of dicts`, e.g. a seeded synthetic generator."""

    def __init__(self, fn: Callable[[str], Iterable[Example]], *, splits: Sequence[str] = ("train", "validation")):
        self.fn = fn
        self.splits = tuple(splits)
        self._counts: dict[str, int] = {}

    def examples(self, split: str) -> Iterator[Example]:
        _check_split(f"generator {getattr(self.fn, '__name__', self.fn)!r}", split, self.splits)
        yield from self.fn(split)

    def num_examples(self, split: str) -> int:
        if split not in self._counts:
            self._counts[split] = sum(1 for _ in self.examples(split))
        return self._counts[split]

    def location(self, split: str, index: int | None = None) -> str:
        """The generator function (records are numbered by the task's messages)."""
        del split, index
        return f"generator {getattr(self.fn, '__name__', self.fn)!r}"


def read_jsonl(path: str | os.PathLike) -> Iterator[Example]:
    """Yields one dict per non-empty line; a malformed line raises an error naming the file and line."""
    path = pathlib.Path(path)
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SourceError(f"{path}:{line_number}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(record, dict):
                raise SourceError(f"{path}:{line_number}: expected a JSON object, got {type(record).__name__}")
            yield record


def _count_lines(path: pathlib.Path) -> int:
    with path.open("rb") as f:
        return sum(1 for line in f if line.strip())


def _line_of_record(path: pathlib.Path, index: int) -> int | None:
    """The 1-based line of the `index`-th record (non-empty line) of a JSONL file, None past its end."""
    with path.open("rb") as f:
        records = (number for number, line in enumerate(f, start=1) if line.strip())
        return next(itertools.islice(records, index, None), None)


class JsonlSource:
    """Examples from JSONL files, one per split."""

    def __init__(self, paths: Mapping[str, str | os.PathLike], *, description: str = ""):
        self.paths = {split: pathlib.Path(p) for split, p in paths.items()}
        self.splits = tuple(self.paths)
        self.description = description
        self._counts: dict[str, int] = {}

    def _path(self, split: str) -> pathlib.Path:
        _check_split(f"JSONL source {self.description or list(self.paths.values())}", split, self.splits)
        path = self.paths[split]
        if not path.is_file():
            hint = f" ({self.description})" if self.description else ""
            raise SourceError(f"missing JSONL file {path} for split {split!r}{hint}")
        return path

    def examples(self, split: str) -> Iterator[Example]:
        yield from read_jsonl(self._path(split))

    def num_examples(self, split: str) -> int:
        if split not in self._counts:
            self._counts[split] = _count_lines(self._path(split))
        return self._counts[split]

    def location(self, split: str, index: int | None = None) -> str:
        """`file PATH` for a split, `PATH:LINE` for its record `index`."""
        path = self.paths.get(split)
        if path is None:
            return f"JSONL source {self.description or list(self.paths.values())}, no split {split!r}"
        line = _line_of_record(path, index) if index is not None and path.is_file() else None
        return f"file {path}" if line is None else f"{path}:{line}"


HUGGINGFACE_NAMESPACE = "huggingface:"


def mirror_dir_name(tfds_name: str) -> str:
    """The directory of a TFDS dataset's local mirror: the name with "/" replaced by "__" (no version);
    a Hugging Face dataset read through TFDS (`huggingface:cos_e/v1.11`) gets the prefix `hf__`."""
    if tfds_name.startswith(HUGGINGFACE_NAMESPACE):
        return "hf__" + tfds_name[len(HUGGINGFACE_NAMESPACE):].replace("/", "__")
    return tfds_name.split(":")[0].replace("/", "__")


def _to_python(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_to_python(v) for v in value.tolist()] if value.dtype == object else _to_python(value.tolist())
    if isinstance(value, list):
        return [_to_python(v) for v in value]
    if isinstance(value, dict):
        return {k: _to_python(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


class TfdsSource:
    """A TFDS dataset, or its local JSONL mirror when a data directory is configured.

    The mirror lives at `<data_dir>/<tfds name with "/" -> "__">/<split>.jsonl` and its records carry exactly
    the TFDS features (a run passes its data directory through its `TaskContext`).
    """

    def __init__(self, tfds_name: str, *, splits: Sequence[str] = ("train", "validation"), data_dir: str | None = None):
        self.tfds_name = tfds_name
        self.splits = tuple(splits)
        self.data_dir = data_dir

    def mirror(self) -> JsonlSource | None:
        """The local JSONL mirror, when a data directory is configured."""
        if not self.data_dir:
            return None
        root = pathlib.Path(self.data_dir) / mirror_dir_name(self.tfds_name)
        return JsonlSource(
            {split: root / f"{split}.jsonl" for split in self.splits},
            description=f"local mirror of TFDS {self.tfds_name!r}",
        )

    def examples(self, split: str) -> Iterator[Example]:
        _check_split(f"TFDS {self.tfds_name!r}", split, self.splits)
        mirror = self.mirror()
        if mirror is not None:
            yield from mirror.examples(split)
            return
        import tensorflow_datasets as tfds

        for record in tfds.as_numpy(tfds.load(self.tfds_name, split=split, shuffle_files=False)):
            yield _to_python(record)

    def num_examples(self, split: str) -> int:
        mirror = self.mirror()
        if mirror is not None:
            return mirror.num_examples(split)
        import tensorflow_datasets as tfds

        return tfds.builder(self.tfds_name).info.splits[split].num_examples

    def location(self, split: str, index: int | None = None) -> str:
        """The local mirror's file (and line), else the TFDS dataset."""
        mirror = self.mirror()
        return mirror.location(split, index) if mirror is not None else f"TFDS {self.tfds_name!r} split {split!r}"


class RenamedSplits:
    """Exposes another source's splits under new names, e.g. "validation" for MNLI's "validation_matched"."""

    def __init__(self, source: Source, names: Mapping[str, str]):
        self.source = source
        self.names = dict(names)
        self.splits = tuple(self.names)

    def _inner(self, split: str) -> str:
        _check_split(f"source with splits {self.names}", split, self.splits)
        return self.names[split]

    def examples(self, split: str) -> Iterator[Example]:
        yield from self.source.examples(self._inner(split))

    def num_examples(self, split: str) -> int:
        return self.source.num_examples(self._inner(split))

    def location(self, split: str, index: int | None = None) -> str:
        return locate(self.source, self.names.get(split, split), index)


class HeldOut:
    """One split of `source` divided in two: every `every`-th record (index 0, every, 2·every, ...) is the
    held-out split, the others the kept one; e.g. a validation split of a dataset published with only a
    train split. Both keep the order and the file locations of the records."""

    def __init__(self, source: Source, *, split: str = "train", every: int = 20,
                 kept: str = "train", held_out: str = "validation"):
        if every < 2:
            raise ValueError(f"every must be at least 2, got {every}")
        self.source, self.split, self.every = source, split, every
        self.kept, self.held_out = kept, held_out
        self.splits = (kept, held_out)

    def _source_index(self, split: str, index: int) -> int:
        if split == self.held_out:
            return index * self.every
        return (index // (self.every - 1)) * self.every + index % (self.every - 1) + 1

    def examples(self, split: str) -> Iterator[Example]:
        _check_split(f"held-out split of {locate(self.source, self.split)}", split, self.splits)
        held = split == self.held_out
        for index, example in enumerate(self.source.examples(self.split)):
            if (index % self.every == 0) == held:
                yield example

    def num_examples(self, split: str) -> int:
        _check_split(f"held-out split of {locate(self.source, self.split)}", split, self.splits)
        total = self.source.num_examples(self.split)
        held = -(-total // self.every)
        return held if split == self.held_out else total - held

    def location(self, split: str, index: int | None = None) -> str:
        source_index = None if index is None else self._source_index(split, index)
        return locate(self.source, self.split, source_index)
