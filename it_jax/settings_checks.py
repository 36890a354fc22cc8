"""Checks of a run's settings (the arguments gin passes `run_config`, `train_run` and `eval_run`) before
anything runs: value types (from the functions' annotations), ranges, device divisibility, and the names of
mixtures, tasks, clusters, splits and metrics.

Each `*_problems` function returns one line per problem, naming the gin binding, the bad value and what is
expected (with close matches for a misspelt name); `raise_if_any` raises them together as one `ConfigError`.
Settings that are allowed but probably mistakes (a warmup as long as the run, a decay that ends before or after
it) are `*_warnings` instead, which `warn` prints once each.
They read no data and compile nothing, so a bad setting fails in seconds, not after a day of training.
"""

from __future__ import annotations

import collections.abc
import difflib
import fnmatch
import inspect
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import gin
import jax
import seqio

from it_jax import errors, preference_run
from it_jax import sharding as sharding_lib
from it_jax.data import fewshot, mixing
from it_jax.data import tasks as tasks_lib
from it_jax.evaluation import evaluator, periodic
from it_jax.models import registry
from it_jax.train import checkpoints, divergence, losses

Settings = Mapping[str, Any]

_SCALARS = {bool: "a bool", int: "an int", float: "a number", str: "a string", type(None): "None"}
_SEQUENCES = (collections.abc.Sequence, list, tuple)
_MAPPINGS = (collections.abc.Mapping, dict)

# The least value of each count or interval, by gin configurable (None values are left to the annotations).
_MINIMUM = {
    "train_run": {
        "num_steps": 1, "batch_size": 1, "save_every": 1, "log_every": 1, "eval_every": 0, "eval_batches": 1,
        "eval_examples": 1, "keep_checkpoints": 1, "keep_best": 0, "microbatches": 1, "max_consecutive_skips": 1,
    },
    "run_config": {"cap": 1},
    "eval_run": {"batch_size": 1, "max_examples": 1},
}
_CHOICES = {
    "train_run": {
        "loss_normalization": losses.NORMALIZATIONS,
        "best_mode": checkpoints.BEST_MODES,
        "on_nonfinite": divergence.POLICIES,
    },
}


_WARNED: set[str] = set()  # the warnings printed in this process (each is printed once)
_DECAYS_TO_TOTAL_STEPS = ("linear", "cosine")  # the decays of `optimizers.make_schedule` that end at total_steps


def warn(warnings: Sequence[str]) -> None:
    """Prints each warning not printed before in this process, on process 0, to stderr."""
    for warning in dict.fromkeys(warnings):
        if warning not in _WARNED and jax.process_index() == 0:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        _WARNED.add(warning)


def schedule_warnings(num_steps: Any, schedule: Settings) -> list[str]:
    """`make_schedule`'s settings (`schedule`: its arguments) against `train_run.num_steps`: a warmup that lasts
    the whole run, and a linear or cosine decay whose `total_steps` is not the run's length (it ends early, and
    the rest runs at the final rate; or late, and the run stops mid-decay)."""
    warnings = []
    warmup, total, decay = (schedule.get(name) for name in ("warmup_steps", "total_steps", "decay"))
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 1:
        return warnings
    if isinstance(warmup, int) and warmup >= num_steps:
        warnings.append(
            f"make_schedule.warmup_steps = {warmup} ≥ train_run.num_steps = {num_steps}: the whole run is warmup "
            "and the learning rate never reaches make_schedule.base_learning_rate"
        )
    if decay in _DECAYS_TO_TOTAL_STEPS and isinstance(total, int) and total != num_steps:
        if total < num_steps:
            effect = f"the {decay} decay ends at step {total} and the last {num_steps - total} steps keep its final rate"
        else:
            effect = f"the {decay} decay lasts {total} steps and the run stops at step {num_steps}, before its end"
        warnings.append(
            f"make_schedule.total_steps = {total} but train_run.num_steps = {num_steps}: {effect} "
            "(bind both to the same number, e.g. the TRAIN_STEPS macro)"
        )
    return warnings


def gin_schedule_warnings(num_steps: Any) -> list[str]:
    """`schedule_warnings` for the schedule gin configures (`make_schedule`'s defaults and bindings); none when
    gin does not configure `make_schedule`."""
    from it_jax.train import optimizers

    try:
        bindings = gin.get_bindings("make_schedule")
    except ValueError:  # not registered with gin in this process
        return []
    if not bindings:
        return []
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(optimizers.make_schedule).parameters.items()
        if parameter.default is not parameter.empty
    }
    return schedule_warnings(num_steps, {**defaults, **bindings})


def raise_if_any(problems: Sequence[str]) -> None:
    """Raises one `ConfigError` listing every problem (one per line, each once), if there are any."""
    problems = list(dict.fromkeys(problems))
    if len(problems) == 1:
        raise errors.ConfigError(problems[0])
    if problems:
        raise errors.ConfigError(f"{len(problems)} settings are invalid:\n  " + "\n  ".join(problems))


def bound_arguments(fn: Callable[..., Any]) -> dict[str, Any]:
    """The keyword arguments gin would pass `fn` now: its defaults overridden by its bindings (`gin.REQUIRED`
    where neither gives a value). References in the bindings are evaluated."""
    defaults = {
        name: parameter.default
        for name, parameter in inspect.signature(fn).parameters.items()
        if parameter.kind is parameter.KEYWORD_ONLY and parameter.default is not parameter.empty
    }
    return {**defaults, **gin.get_bindings(fn)}


def _suggest(name: str, candidates: Iterable[str]) -> str:
    """"; did you mean 'x'?" for the closest candidate, if one is close (ends a message)."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _show(value: Any) -> str:
    text = repr(value)
    return f"{text if len(text) <= 80 else text[:77] + '...'} ({type(value).__name__})"


# Types -------------------------------------------------------------------------------------------------


def _all_fit(pairs: Iterable[tuple[Any, Any]]) -> bool | None:
    fits = [_fits(value, hint) for value, hint in pairs]
    return False if False in fits else (None if None in fits else True)


def _fits(value: Any, hint: Any) -> bool | None:
    """Whether `value` fits the annotation `hint`; None when the hint is not one this checker reads."""
    if hint is Any:
        return True
    if hint in _SCALARS:
        if hint is bool or hint is str or hint is type(None):
            return isinstance(value, hint)
        numbers = int if hint is int else (int, float)
        return isinstance(value, numbers) and not isinstance(value, bool)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        fits = [_fits(value, arg) for arg in args]
        return True if True in fits else (None if None in fits else False)
    if origin in _SEQUENCES:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and _all_fit(zip(value, args))
        return _all_fit((item, args[0]) for item in value) if args else True
    if origin in _MAPPINGS:
        if not isinstance(value, collections.abc.Mapping):
            return False
        return _all_fit([(k, args[0]) for k in value] + [(v, args[1]) for v in value.values()]) if args else True
    if origin is collections.abc.Callable:
        return callable(value)
    if isinstance(hint, type):
        return isinstance(value, hint)
    return None


def _describe(hint: Any) -> str:
    """`hint` in words: "an int or None", "a list of string", "a T5Config or DecoderConfig"."""
    if hint is Any:
        return "anything"
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return "a (" + ", ".join(_bare(arg) for arg in args) + ") tuple"
    if origin in _SEQUENCES:
        return f"a list of {_bare(args[0])}" if args else "a list"
    if origin in _MAPPINGS:
        return f"a dict of {_bare(args[0])} to {_bare(args[1])}" if args else "a dict"
    if origin is collections.abc.Callable:
        return "a callable"
    return f"a {getattr(hint, '__name__', hint)}"


def _bare(hint: Any) -> str:
    text = _describe(hint)
    return text.split(" ", 1)[1] if text.startswith(("a ", "an ")) else text


def type_problems(fn: Callable[..., Any], binding: str, settings: Settings) -> dict[str, str]:
    """Setting name -> problem, for the settings whose value does not fit `fn`'s annotation of it and those
    that are required but unbound."""
    hints = typing.get_type_hints(inspect.unwrap(fn))
    problems = {}
    for name, value in settings.items():
        if value is gin.REQUIRED:
            problems[name] = f"{binding}.{name} is required: bind it in a gin file or with --gin_bindings"
        elif name in hints and _fits(value, hints[name]) is False:
            problems[name] = f"{binding}.{name} must be {_describe(hints[name])}, got {_show(value)}"
    return problems


def _typed(fn: Callable[..., Any], binding: str, settings: Settings) -> tuple[list[str], dict[str, Any]]:
    """The type problems, and the settings of a fitting type (the ones later checks may read)."""
    problems = type_problems(fn, binding, settings)
    return list(problems.values()), {name: value for name, value in settings.items() if name not in problems}


# Ranges ------------------------------------------------------------------------------------------------


def range_problems(binding: str, settings: Settings) -> list[str]:
    """Counts and intervals below their least value, unknown choices, and out-of-range rates and weights."""
    problems = []
    for name, least in _MINIMUM.get(binding, {}).items():
        value = settings.get(name)
        if isinstance(value, int) and value < least:
            problems.append(f"{binding}.{name} must be ≥ {least}, got {value}")
    for name, choices in _CHOICES.get(binding, {}).items():
        value = settings.get(name)
        if isinstance(value, str) and value not in choices:
            problems.append(f"{binding}.{name} must be one of {choices}, got {value!r}{_suggest(value, choices)}")
    for name, test, expected in (
        ("temperature", lambda v: v > 0, "> 0"),
        ("label_smoothing", lambda v: 0 <= v < 1, "in [0, 1)"),
        ("z_loss", lambda v: v >= 0, "≥ 0"),
        ("peak_flops_per_device", lambda v: v > 0, "> 0 (or None)"),
    ):
        value = settings.get(name)
        if binding in ("train_run", "run_config") and isinstance(value, (int, float)) and not (math.isfinite(value) and test(value)):
            problems.append(f"{binding}.{name} must be {expected}, got {value}")
    return problems


# Names -------------------------------------------------------------------------------------------------


def _provider_problems(binding: str, value: str | Sequence[str], modules: Sequence[str]) -> list[str]:
    """Each name of a mixture setting (one mixture or task, or a list of tasks) must be registered in seqio."""
    names = _names(value)
    if not names:
        return [f"{binding} is an empty list: name at least one task"]
    registered = {*seqio.MixtureRegistry.names(), *seqio.TaskRegistry.names()}
    return [
        f"{binding}: {name!r} is not a registered seqio mixture or task (tasks are registered by "
        f"run_config.task_modules {list(modules)}){_suggest(name, registered)}"
        for name in names
        if name not in registered
    ]


def _instruction_task_problems(binding: str, names: Sequence[str]) -> list[str]:
    known = tasks_lib.instruction_task_names()
    return [
        f"{binding}: {name!r} is not a registered instruction task{_suggest(name, known)}"
        for name in names
        if name not in known
    ]


def _split_problems(subject: str, split: str, names: Iterable[str]) -> list[str]:
    """Every task of the mixtures or tasks `names` must have `split` (seqio would silently leave it out)."""
    lacking = {}
    known = set(tasks_lib.instruction_task_names())  # other seqio tasks may need I/O to list their splits
    for name in names:
        for task in seqio.get_subtasks(seqio.get_mixture_or_task(name)):
            splits = tasks_lib.task_info(task.name).source.splits if task.name in known else (split,)
            if split not in splits:
                lacking[task.name] = list(splits)
    if not lacking:
        return []
    first, splits = next(iter(lacking.items()))
    more = f" (and {len(lacking) - 1} more)" if len(lacking) > 1 else ""
    return [f"{subject}: task {first!r}{more} has no split {split!r}; its splits: {splits}{_suggest(split, splits)}"]


def _names(value: str | Sequence[str] | None) -> list[str]:
    return [] if value is None else [value] if isinstance(value, str) else list(value)


# run_config --------------------------------------------------------------------------------------------


def run_config_problems(fn: Callable[..., Any], settings: Settings) -> list[str]:
    """`run_config`'s settings: types, the feature lengths, the data directory, the task modules, the
    vocabulary's fit in the model, and the layout's fit to the architecture."""
    problems, ok = _typed(fn, "run_config", settings)
    lengths = ok.get("task_feature_lengths")
    if lengths is not None:
        for feature in ("inputs", "targets"):
            if feature not in lengths:
                problems.append(f"run_config.task_feature_lengths needs {feature!r}, got {dict(lengths)}")
            elif lengths[feature] < 1:
                problems.append(f"run_config.task_feature_lengths[{feature!r}] must be ≥ 1, got {lengths[feature]}")
    data_dir = ok.get("data_dir")
    if data_dir and not os.path.isdir(data_dir):
        problems.append(f"run_config.data_dir = {data_dir!r} is not a directory (it holds local JSONL mirrors)")
    if ok.get("model_dir") == "":
        problems.append("run_config.model_dir is empty: give a directory for checkpoints (e.g. --model_dir)")
    return problems + range_problems("run_config", ok) + _model_fit_problems(ok)


def _model_fit_problems(settings: Settings) -> list[str]:
    config, vocabulary, layout = (settings.get(name) for name in ("model_config", "vocabulary", "layout"))
    problems = []
    if config is not None and vocabulary is not None and config.vocab_size < vocabulary.vocab_size:
        problems.append(
            f"run_config.model_config.vocab_size = {config.vocab_size} is less than the vocabulary's "
            f"{vocabulary.vocab_size} ids; bind VOCAB_SIZE to at least that (rounded up to a multiple of 128)"
        )
    if config is not None and layout is not None and layout.architecture != registry.architecture(config):
        problems.append(
            f"run_config.layout is for {layout.architecture!r}, but the model's architecture is "
            f"{registry.architecture(config)!r}"
        )
    return problems


# train_run ---------------------------------------------------------------------------------------------


def train_run_problems(fn: Callable[..., Any], run: Any, settings: Settings) -> list[str]:
    """`train_run`'s settings (`run` is the `RunContext`): types, ranges, the mixtures and tasks, the batch's
    fit to the devices, and the periodic evaluation's settings."""
    problems, ok = _typed(fn, "train_run", settings)
    problems += range_problems("train_run", ok) + preference_run.settings_problems(ok)
    if ok.get("mixture") is not None:
        mixture_problems = _provider_problems("train_run.mixture", ok["mixture"], run.task_modules)
        problems += mixture_problems or _split_problems("train_run.mixture", "train", _names(ok["mixture"]))
    init_from = ok.get("init_from")
    if init_from and "://" not in init_from and not os.path.exists(init_from):
        problems.append(f"train_run.init_from = {init_from!r} does not exist")
    return problems + _batch_problems(ok) + _evaluation_problems(run, ok)


def _batch_problems(settings: Settings) -> list[str]:
    """The global batch must split evenly over the batch's devices, the processes and the microbatches."""
    if any(name not in settings for name in ("batch_size", "microbatches", "mesh", "axis_rules")):
        return []
    batch, micro = settings["batch_size"], settings["microbatches"]
    if batch < 1 or micro < 1:
        return []
    mesh = settings["mesh"] or sharding_lib.create_mesh(data=-1)
    # The leading axis of `sharding.data_sharding(mesh, rules=...)`, without building the sharding (which
    # would fail on a mesh axis the mesh lacks).
    rules = sharding_lib.with_overrides(settings["axis_rules"])
    axes = sharding_lib.axes_of(sharding_lib.logical_to_spec(("activation_batch", None), rules)[0])
    missing = [axis for axis in axes if axis not in mesh.shape]
    if missing:
        return [f"train_run.axis_rules shard the batch over mesh axes {missing}, not in the mesh {dict(mesh.shape)}"]
    devices = math.prod(mesh.shape[axis] for axis in axes)
    over = " × ".join(f"{axis} {mesh.shape[axis]}" for axis in axes) or "no axis"
    if batch % devices:
        return [
            (
                f"train_run.batch_size = {batch} is not divisible by the {devices} devices the batch is sharded "
                f"over (mesh {over}); use a multiple of {devices}"
            )
        ]
    if micro > 1 and batch % (micro * devices):
        return [
            (
                f"train_run.batch_size = {batch} is not divisible by train_run.microbatches × batch devices = "
                f"{micro} × {devices} = {micro * devices} (every microbatch is split over the devices)"
            )
        ]
    if batch % jax.process_count():
        return [f"train_run.batch_size = {batch} is not divisible by the {jax.process_count()} processes"]
    return []


def _evaluation_problems(run: Any, settings: Settings) -> list[str]:
    """The periodic evaluation's mixture and tasks exist and have `eval_split`; `eval_every` has something
    to evaluate; `keep_best` has an evaluation to rank by, and `best_metric` is one it logs."""
    needed = ("eval_mixture", "eval_tasks", "eval_every", "keep_best", "eval_split", "best_metric")
    if any(name not in settings for name in needed):
        return []
    mixture, tasks, every, keep_best = (settings[name] for name in needed[:4])
    if settings.get("preference") is not None:
        return preference_run.evaluation_problems(settings)
    problems = _instruction_task_problems("train_run.eval_tasks", tasks)
    if mixture is not None:
        problems += _provider_problems("train_run.eval_mixture", mixture, run.task_modules)
    evaluated = mixture is not None or bool(tasks)
    if every > 0 and not evaluated:
        problems.append(
            f"train_run.eval_every = {every} but nothing is evaluated: set train_run.eval_mixture (loss) "
            "and/or train_run.eval_tasks (task metrics)"
        )
    if keep_best > 0 and not (every > 0 and evaluated):
        problems.append(
            f"train_run.keep_best = {keep_best} needs periodic evaluation to rank checkpoints: set "
            "train_run.eval_every ≥ 1 and train_run.eval_mixture or train_run.eval_tasks"
        )
    if problems:
        return problems
    problems += _split_problems("train_run.eval_split", settings["eval_split"], [*_names(mixture), *tasks])
    if keep_best > 0:
        loss_tasks = [task for name in _names(mixture) for task in mixing.task_names(name)]
        jobs = evaluator.jobs_for(tasks)
        logged = periodic.metric_names(loss=mixture is not None, jobs=jobs, loss_tasks=loss_tasks)
        best = settings["best_metric"]
        if not any(fnmatch.fnmatchcase(best, pattern) for pattern in logged):
            shown = ", ".join(logged[:8]) + (", ..." if len(logged) > 8 else "")
            problems.append(
                f"train_run.best_metric = {best!r} is not logged by the configured evaluation (it logs "
                f"{shown}){_suggest(best, logged)}"
            )
    return problems


# eval_run ----------------------------------------------------------------------------------------------


def eval_run_problems(fn: Callable[..., Any], run: Any, settings: Settings) -> list[str]:
    """`eval_run`'s settings: types, ranges, the prompt variants, and the tasks it selects (tasks, mixture or
    held-out cluster, as `evaluate.select_tasks` chooses) with the split."""
    problems, ok = _typed(fn, "eval_run", settings)
    problems += range_problems("eval_run", ok)
    variant_names = [variant.name for variant in fewshot.VARIANTS]
    for name in ok.get("variants") or ():
        if name not in variant_names:
            problems.append(f"eval_run.variants: {name!r} is not a prompt variant; choose from {variant_names}")
    if all(name in ok for name in ("tasks_to_eval", "mixture", "cluster")):
        selection_problems, names = _selection(ok["tasks_to_eval"], ok["mixture"], ok["cluster"], run.task_modules)
        problems += selection_problems
        if names and not selection_problems and "split" in ok:
            problems += _split_problems("eval_run.split", ok["split"], names)
    problems += _instruction_task_problems("eval_run.reference_tasks", ok.get("reference_tasks") or ())
    if ok.get("trained_on") is not None:
        problems += _provider_problems("eval_run.trained_on", ok["trained_on"], run.task_modules)
    return problems


def _selection(
    tasks: Sequence[str], mixture: str | None, cluster: str | None, modules: Sequence[str]
) -> tuple[list[str], list[str]]:
    """(problems, task names) of eval_run's choice: explicit tasks, else a mixture's tasks, else a cluster's."""
    if tasks:
        return _instruction_task_problems("eval_run.tasks_to_eval", tasks), list(tasks)
    if mixture:
        problems = _provider_problems("eval_run.mixture", mixture, modules)
        if problems:
            return problems, []
        names = mixing.task_names(mixture)
        return _instruction_task_problems(f"eval_run.mixture {mixture!r}", names), names
    if cluster is None:
        return ["nothing to evaluate: set eval_run.cluster, eval_run.tasks_to_eval or eval_run.mixture"], []
    clusters = sorted({info.cluster for info in tasks_lib.registered_tasks()})
    if cluster not in clusters:
        known = f"(clusters: {clusters}){_suggest(cluster, clusters)}"
        return [f"eval_run.cluster: {cluster!r} is not a task cluster {known}"], []
    return [], [info.name for info in tasks_lib.registered_tasks(cluster)]
