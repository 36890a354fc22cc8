"""One Natural Instructions task file (`tasks/<task>.json`) as an it_jax source of template fields.

Each example is one of the task's `Instances`, with the task's Definition, its first positive example
(`example_input`, `example_output`, `example_explanation`), `answer` (the first output) and `answers`
(every output, all used as references). A few-shot source also renders, for each few-shot pattern k, two
solved exemplars into `exemplars_<k>`: drawn deterministically per example from the task's first instances
(training; never the example itself) or from its positive examples (evaluation splits, as
Super-NaturalInstructions evaluates), the second, then the first, dropped if the input would exceed
`MAX_INPUT_CHARS`.
"""

from __future__ import annotations

import functools
import json
import pathlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from it_jax.data import fewshot, sources
from it_jax.data.tasks import FEW_SHOT_POOL

NUM_SHOTS = 2
MAX_INPUT_CHARS = 4_096  # about 1,000 T5 tokens: a few-shot input fits the recipe's 1,024-token inputs
TRAIN = {"train": slice(None)}
EVAL_INSTANCES = 100  # Super-NaturalInstructions evaluates the first 100 instances of each test task
EVAL = {"validation": slice(EVAL_INSTANCES), "test": slice(EVAL_INSTANCES)}


@functools.cache
def _instance_count(path: pathlib.Path) -> int:
    return len(_read(path)["Instances"])


def _read(path: pathlib.Path) -> dict[str, Any]:
    if not path.is_file():
        raise sources.SourceError(f"missing Natural Instructions task file {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise sources.SourceError(f"{path}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno})") from None


def _first(value: str | Sequence[str], where: str) -> str:
    """A positive example's output (a string) or an instance's first output (a list)."""
    if isinstance(value, str):
        return value
    if not value:
        raise sources.SourceError(f"{where} has no output")
    return value[0]


class NaturalInstructionsSource:
    """The instances of one task file, split by `splits` (split name -> slice of `Instances`).

    Attributes:
      exemplar_patterns: one `{input}`/`{output}` format per few-shot pattern; empty for zero-shot tasks.
    """

    def __init__(self, path: pathlib.Path, splits: Mapping[str, slice], exemplar_patterns: Sequence[str] = ()):
        self.path = pathlib.Path(path)
        self.slices = dict(splits)
        self.splits = tuple(self.slices)
        self.exemplar_patterns = tuple(exemplar_patterns)

    def _slice(self, split: str) -> slice:
        if split not in self.slices:
            raise sources.SourceError(f"{self.path} has no split {split!r}; its splits are {list(self.splits)}")
        return self.slices[split]

    def examples(self, split: str) -> Iterator[sources.Example]:
        instances_slice = self._slice(split)
        task = _read(self.path)
        common = self._task_fields(task)
        pool = self._pool(task, split)
        for index, instance in enumerate(task["Instances"][instances_slice]):
            where = f"{self.path}, instance {instance.get('id', index)}"
            fields = {
                **common,
                "id": instance.get("id", str(index)),
                "input": instance["input"].strip(),
                "answer": _first(instance["output"], where),
                "answers": list(instance["output"]),
            }
            if self.exemplar_patterns:
                exclude = index if split == "train" and index < len(pool) else None
                fields.update(self._exemplars(pool, split, index, exclude, fields))
            yield fields

    def _task_fields(self, task: Mapping[str, Any]) -> sources.Example:
        """The Definition and the first positive example, shared by every instance."""
        positives = task.get("Positive Examples") or []
        if not positives:
            raise sources.SourceError(f"{self.path} has no positive examples")
        example = positives[0]
        return {
            "task": self.path.stem,
            "definition": "\n".join(d.strip() for d in task["Definition"]),
            "example_input": example["input"].strip(),
            "example_output": _first(example["output"], f"{self.path}, positive example 0"),
            "example_explanation": example.get("explanation", "").strip(),
        }

    def _pool(self, task: Mapping[str, Any], split: str) -> list[dict[str, str]]:
        """Exemplars: the first training instances, or the positive examples for evaluation splits."""
        if not self.exemplar_patterns:
            return []
        if split == "train":
            chosen = task["Instances"][:FEW_SHOT_POOL]
        else:
            chosen = task["Positive Examples"]
        return [{"input": e["input"].strip(), "output": _first(e["output"], f"{self.path} exemplar")} for e in chosen]

    def _exemplars(
        self, pool: Sequence[Mapping[str, str]], split: str, index: int, exclude: int | None, fields: Mapping
    ) -> dict[str, str]:
        """`exemplars_<k>` per few-shot pattern: the same chosen exemplars, each pattern's own format."""
        key = f"{self.path.stem}:{'train' if split == 'train' else 'eval'}"  # validation == test
        chosen = fewshot.choose_exemplars(key, index, pool_size=len(pool), num_shots=NUM_SHOTS, exclude=exclude)
        budget = MAX_INPUT_CHARS - len(fields["definition"]) - len(fields["input"])
        rendered = {}
        for k, pattern in enumerate(self.exemplar_patterns):
            shots = [pattern.format(**pool[i]) + "\n\n" for i in chosen]
            while shots and sum(map(len, shots)) > budget:
                shots.pop()
            rendered[f"exemplars_{k}"] = "".join(shots)
        return rendered

    def num_examples(self, split: str) -> int:
        return len(range(_instance_count(self.path))[self._slice(split)])

    def location(self, split: str, index: int | None = None) -> str:
        """The task file (and the instance's position in the split)."""
        return f"file {self.path}" + ("" if index is None else f", instance {index} of split {split!r}")
