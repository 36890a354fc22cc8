"""The FLAN 2022 Natural Instructions (NIv2) submix, read from a local copy of allenai/natural-instructions.

`register(context, root=None)` reads the repository's layout (`tasks/<task>.json`,
`splits/<split>/{train,test}_tasks.txt`) at `root`, else at `<context.data_dir>/natural_instructions`,
and registers, MMLU-derived tasks (ids 664-667, 685-737) left out:
- per training task `niv2_<task>` (zero-shot and inline one-example patterns) and `niv2_<task>_fs_opt`
  (two exemplars), cluster `niv2`, and `niv2_all`: `niv2_zs_opt` and `niv2_fs_opt` at 50% each, every
  task at its example count capped at 5,000 (FLAN 2022's per-task rate ceiling);
- the same two tasks per test task (cluster `niv2_test`, splits `validation` and `test`: the first 100
  instances, Super-NaturalInstructions' evaluation set) and the mixture `niv2_eval` over them, scored with
  ROUGE-L and exact match.
The task names compose with `mixtures.flan2022.compose` (variant suffixes "" and "_fs_opt").

The module is registered only when a run names it, so a missing repository is a `ConfigError` at
registration (which tasks exist is only known from the repository); a task file that goes missing later is a
`DataError` when its examples are read.
"""

from __future__ import annotations

import pathlib
import re

from it_jax import errors
from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from it_jax.evaluation import metrics
from mixtures.natural_instructions import source as source_lib
from mixtures.natural_instructions.templates import FEW_SHOT, INLINE, ZERO_SHOT, few_shot_templates

PREFIX = "niv2"
CLUSTER = "niv2"
EVAL_CLUSTER = "niv2_test"
FEW_SHOT_SUFFIX = "_fs_opt"
CAP = 5_000  # FLAN 2022's per-task cap for NIv2, a mixing-rate ceiling
MIXTURE = f"{PREFIX}_all"
EVAL_MIXTURE = f"{PREFIX}_eval"
DIR_NAME = "natural_instructions"
CLONE = "git clone https://github.com/allenai/natural-instructions"
MMLU_TASK_IDS = frozenset([*range(664, 668), *range(685, 738)])
METRICS = (metrics.rouge_l, metrics.exact_match)


def find_root(context: TaskContext, root: str | pathlib.Path | None = None) -> pathlib.Path:
    """The repository: `root`, else `<context.data_dir>/natural_instructions`; a clear error if missing."""
    if root is not None:
        path, how = pathlib.Path(root), "the root given to register(context, root=...)"
    elif context.data_dir:
        path, how = pathlib.Path(context.data_dir) / DIR_NAME, "the run's data directory"
    else:
        raise errors.ConfigError(
            "Natural Instructions: no location: the run has no data directory and no root was given; "
            f"`{CLONE} <data_dir>/{DIR_NAME}`, or register(context, root='/path/to/natural-instructions')"
        )
    if not (path / "tasks").is_dir():
        raise errors.ConfigError(
            f"Natural Instructions not found at {path} ({how}): no tasks/ directory there; "
            f"`{CLONE} {path}`, or pass register(context, root='/path/to/natural-instructions')"
        )
    return path


def is_mmlu(task: str) -> bool:
    """Whether a task (e.g. `task700_mmlu_answer_generation_...`) is one of the MMLU-derived tasks."""
    match = re.match(r"task(\d+)_", task)
    return bool(match) and int(match.group(1)) in MMLU_TASK_IDS


def task_list(root: pathlib.Path, split: str, which: str) -> list[str]:
    """The tasks of `splits/<split>/<which>_tasks.txt` (which: train or test), MMLU-derived ones dropped."""
    path = root / "splits" / split / f"{which}_tasks.txt"
    if not path.is_file():
        raise errors.ConfigError(f"Natural Instructions at {root}: no split list {path}")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    missing = [name for name in names if not (root / "tasks" / f"{name}.json").is_file()]
    if missing:
        raise errors.DataError(f"{path} lists tasks with no file in {root / 'tasks'}: {missing[:5]}")
    return [name for name in names if not is_mmlu(name)]


def _register(root: pathlib.Path, name: str, splits: dict, cluster: str, context: TaskContext) -> tasks.TaskInfo:
    """Registers `niv2_<name>` (zero-shot and inline patterns) and `niv2_<name>_fs_opt` (few-shot)."""
    path = root / "tasks" / f"{name}.json"
    common = {"cluster": cluster, "metrics": METRICS, "context": context}
    info = tasks.register_task(
        f"{PREFIX}_{name}",
        source=source_lib.NaturalInstructionsSource(path, splits),
        templates=[*ZERO_SHOT, *INLINE],
        **common,
    )
    exemplar_patterns = [exemplar for exemplar, _ in FEW_SHOT]
    tasks.register_task(
        f"{PREFIX}_{name}{FEW_SHOT_SUFFIX}",
        source=source_lib.NaturalInstructionsSource(path, splits, exemplar_patterns),
        templates=few_shot_templates(),
        **common,
    )
    return info


def register(
    context: TaskContext, root: str | pathlib.Path | None = None, split: str = "default"
) -> tuple[tasks.TaskInfo, ...]:
    """Registers the training tasks, `niv2_all`, the test tasks and `niv2_eval`; returns the zero-shot
    training tasks (their `_fs_opt` twins are registered beside them)."""
    path = find_root(context, root)
    train = [_register(path, name, source_lib.TRAIN, CLUSTER, context) for name in task_list(path, split, "train")]
    test = [_register(path, name, source_lib.EVAL, EVAL_CLUSTER, context) for name in task_list(path, split, "test")]
    rate = context.rate(cap=CAP)
    variants = []
    for suffix, variant in (("", "_zs_opt"), (FEW_SHOT_SUFFIX, FEW_SHOT_SUFFIX)):
        variants.append(mixing.register_mixture(f"{PREFIX}{variant}", [f"{i.name}{suffix}" for i in train], rate=rate))
    mixing.register_mixture(MIXTURE, [mixture.name for mixture in variants], rate=0.5)  # 50% zero-, 50% few-shot
    mixing.register_mixture(
        EVAL_MIXTURE, [f"{i.name}{suffix}" for i in test for suffix in ("", FEW_SHOT_SUFFIX)], rate=1.0
    )
    return tuple(train)
