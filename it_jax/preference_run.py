"""What a run trains on preference pairs with: `train_run.preference = @preference_data()` (beside `launch`,
which it serves: it joins the data, the model's reference and the evaluation).

`preference_data(files=..., max_length=..., max_prompt_length=...)` (gin-configurable) names JSONL files of
pairs (paths relative to the run's `data_dir`, or absolute; forms: see `it_jax.data.preference`).
`build_input` reads them, holds out every `held_out_every`-th pair (pairs 0, 20, 40, ... of the concatenated
files, as `sources.HeldOut` holds out conversations) for periodic evaluation, renders the rest with the run's
chat format, vocabulary and prompt layout, and reports the pairs dropped by truncation.

A cached DPO reference (`reference_params`, `with_reference_logps`) is the reference parameters' summed
response log-probs, computed once before training and stored with the data: the warm-started (or initial)
parameters, with a LoRA model's adapters disabled. They are recomputed the same way on resumption (same
seed, same `init_from`), so a resumed run trains against the same reference as the first.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from it_jax import errors
from it_jax import sharding as sharding_lib
from it_jax.data import preference
from it_jax.evaluation import periodic
from it_jax.models import lora as lora_lib
from it_jax.train import objectives, warm_start

INPUT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class PreferenceInput:
    """Where the pairs are and how they are cut (gin: `preference_data`; see the module docstring).

    Attributes:
      files: JSONL files of pairs, relative to the run's `data_dir` or absolute.
      max_length: decoder row length (prompt and response together).
      max_prompt_length: prompt tokens kept when a pair does not fit (default: max_length // 2).
      held_out_every: every n-th pair is held out for evaluation (0: none).
      max_pairs: read only the first this many pairs of the concatenated files (None: all).
    """

    files: tuple[str, ...] = ()
    max_length: int = 512
    max_prompt_length: int | None = None
    held_out_every: int = 20
    max_pairs: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "files", (self.files,) if isinstance(self.files, str) else tuple(self.files))
        if not self.files:
            raise errors.ConfigError("preference_data.files is empty: name the JSONL files of preference pairs")
        if self.held_out_every < 0 or (self.max_pairs is not None and self.max_pairs < 1):
            raise errors.ConfigError(f"preference_data: need held_out_every >= 0 and max_pairs >= 1 (or None); got "
                                     f"{self.held_out_every}, {self.max_pairs}")

    def paths(self, data_dir: str | None) -> list[str]:
        """The files' paths: absolute ones as given, the others under `data_dir`."""
        paths = []
        for name in self.files:
            if not os.path.isabs(name):
                if data_dir is None:
                    raise errors.ConfigError(f"preference_data.files: {name!r} is relative and run_config.data_dir "
                                             "is not set; set it or give an absolute path")
                name = os.path.join(data_dir, name)
            if not os.path.isfile(name):
                raise errors.ConfigError(f"preference_data.files: {name} does not exist")
            paths.append(name)
        return paths

    def metadata(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "files": list(self.files), "input": INPUT_VERSION}


@dataclasses.dataclass(frozen=True)
class PreferenceSplits:
    train: preference.PreferenceData
    held_out: preference.PreferenceData | None


def build_input(config: PreferenceInput, run: Any) -> PreferenceSplits:
    """The rendered training and held-out pairs of `run` (a `RunContext`); prints what was read and dropped."""
    pairs = []
    for path in config.paths(run.data_dir):
        pairs += preference.read_pairs(path)[0]
    pairs = pairs[:config.max_pairs]
    every = config.held_out_every
    held = [p for i, p in enumerate(pairs) if every and i % every == 0]
    kept = [p for i, p in enumerate(pairs) if not (every and i % every == 0)]
    encode = dict(vocabulary=run.vocabulary, chat_format=run.chat_format_name(), layout=run.layout,
                  max_length=config.max_length, max_prompt_length=config.max_prompt_length)
    train = preference.encode_pairs(kept, **encode)
    held_out = preference.encode_pairs(held, **encode) if held else None
    if jax.process_index() == 0:
        dropped = len(train.dropped) + (len(held_out.dropped) if held_out else 0)
        print(f"Preference pairs: {len(pairs):,} read, {len(held):,} held out; {dropped:,} dropped by truncation "
              f"to max_length {config.max_length} ({len(train):,} train, {len(held_out or ()):,} held-out kept)",
              flush=True)
    return PreferenceSplits(train, held_out)


def train_batches(data: preference.PreferenceData, position: int, *, batch_size: int,
                  seed: int) -> Iterator[dict[str, np.ndarray]]:
    """This host's share of the training batches from global batch `position` on (batch b: (seed, b) only)."""
    count, index = jax.process_count(), jax.process_index()
    for batch in preference.preference_batches(data, batch_size=batch_size, seed=seed, skip_batches=position):
        yield {k: np.array_split(v, count)[index] for k, v in batch.items()}


def eval_batches(data: preference.PreferenceData, *, batch_size: int) -> list[dict[str, np.ndarray]]:
    """Every pair of `data` once, in order, in batches of `batch_size` (the last one padded with empty rows,
    which objectives count for nothing); this host's share of each."""
    n, count, index = len(data), jax.process_count(), jax.process_index()
    batches = []
    for start in range(0, n, batch_size):
        rows = {k: v[start:start + batch_size] for k, v in data.features.items()}
        pad = batch_size - len(next(iter(rows.values())))
        rows = {k: np.concatenate([v, np.zeros((pad, *v.shape[1:]), v.dtype)]) for k, v in rows.items()}
        batches.append({k: np.array_split(v, count)[index] for k, v in rows.items()})
    return batches


def num_eval_batches(data: preference.PreferenceData, batch_size: int) -> int:
    return -(-len(data) // batch_size)


def reference_params(trainer: Any, *, seed: int, init_from: str | None, lora: lora_lib.LoraConfig | None) -> Any:
    """The cached reference's parameters: the run's fresh state at `seed`, warm-started from `init_from`,
    with a LoRA model's adapters disabled (what the first step of a fresh run starts from)."""
    params = trainer.init(seed).params
    if init_from:
        params, _ = warm_start.load_matching_params(init_from, params=params)
    return lora_lib.without_adapters(params) if lora is not None else params


def with_reference_logps(data: preference.PreferenceData, trainer: Any, params: Any, *,
                         batch_size: int) -> preference.PreferenceData:
    """`data` with `reference_chosen_logps` / `reference_rejected_logps` under `params` (`add_reference_logps`)."""

    @jax.jit
    def logps(params, batch):
        model = trainer.spec.bind(params)
        return tuple(objectives.sequence_logps(model, objectives.side(batch, s), rngs=None)
                     for s in preference.SIDES)

    def logps_fn(batch):
        with jax.set_mesh(trainer.mesh), sharding_lib.axis_rules(trainer.rules):
            return jax.device_get(logps(params, trainer.to_global(batch)))

    if jax.process_count() > 1:
        raise errors.ConfigError("a cached DPO reference is computed on one process; use DPO.reference = 'live'")
    return preference.add_reference_logps(data, logps_fn, batch_size=batch_size)


def with_cached_reference(splits: PreferenceSplits, trainer: Any, *, seed: int, init_from: str | None,
                          lora: lora_lib.LoraConfig | None, batch_size: int) -> PreferenceSplits:
    """Both splits with the reference's log-probs (see `reference_params`); prints how long it took."""
    started = time.perf_counter()
    params = reference_params(trainer, seed=seed, init_from=init_from, lora=lora)
    parts: Sequence[preference.PreferenceData | None] = [
        None if data is None else with_reference_logps(data, trainer, params, batch_size=batch_size)
        for data in (splits.train, splits.held_out)
    ]
    if jax.process_index() == 0:
        print(f"Reference log-probs of {len(splits.train) + len(splits.held_out or ()):,} pairs computed in "
              f"{time.perf_counter() - started:.1f} s", flush=True)
    return PreferenceSplits(parts[0], parts[1])


@dataclasses.dataclass(frozen=True)
class TrainingInput:
    """What `train_run` needs of the pairs: the batches from a position, the held-out evaluation (or None),
    and the metadata that decides the stream (recorded with checkpoints)."""

    batches: Callable[[int], Iterator[dict[str, np.ndarray]]]
    evaluation: Callable[..., dict[str, float]] | None
    metadata: dict[str, Any]


def training_input(config: PreferenceInput, run: Any, trainer: Any, *, batch_size: int, seed: int,
                   init_from: str | None, lora: lora_lib.LoraConfig | None) -> TrainingInput:
    """Reads and renders the pairs, adds a cached reference's log-probs when the objective reads them, and
    evaluates the held-out pairs with the trainer's objective (`eval/loss`, `eval/reward_margin`, ...)."""
    splits = build_input(config, run)
    architecture = run.layout.architecture
    if "reference_chosen_logps" in trainer.objective.features(architecture):
        splits = with_cached_reference(splits, trainer, seed=seed, init_from=init_from, lora=lora,
                                       batch_size=batch_size)
    evaluation = None
    if splits.held_out is not None:
        held_out = eval_batches(splits.held_out, batch_size=batch_size)
        evaluation = periodic.PeriodicEval(evaluate=trainer.eval_host_batch, batches=lambda: iter(held_out),
                                           num_batches=len(held_out), summarize=trainer.objective.metrics).run
    metadata = {**config.metadata(), "pairs": len(splits.train), "batch_size": batch_size, "seed": seed}
    return TrainingInput(
        functools.partial(train_batches, splits.train, batch_size=batch_size, seed=seed), evaluation, metadata
    )


# Settings checks (`it_jax.settings_checks.train_run_problems`) -----------------------------------------


def settings_problems(settings: Mapping[str, Any]) -> list[str]:
    """`train_run`'s input settings (`settings_checks` calls this): exactly one training input (a mixture, or
    preference pairs), and pairs need an objective over pairs."""
    if "mixture" not in settings or "preference" not in settings:
        return []
    mixture, pairs, objective = settings["mixture"], settings["preference"], settings.get("objective")
    if (mixture is None) == (pairs is None):
        return ["set exactly one of train_run.mixture (a seqio mixture or tasks) and train_run.preference "
                "(@preference_data(): preference pairs)"]
    if pairs is not None and not any(name.startswith("chosen_") for name in _objective_features(objective)):
        return [f"train_run.preference needs an objective over pairs, e.g. train_run.objective = @DPO(); got "
                f"{getattr(objective, 'name', 'the default cross-entropy')}"]
    return []


def _objective_features(objective: Any) -> tuple[str, ...]:
    return () if objective is None else tuple(objective.features("decoder_only"))


def evaluation_problems(settings: Mapping[str, Any]) -> list[str]:
    """A preference run's evaluation: its held-out pairs, with its objective's metrics (`eval/reward_accuracy`,
    ...) as the only valid `best_metric`s."""
    pairs, every, keep_best, best = (settings[n] for n in ("preference", "eval_every", "keep_best", "best_metric"))
    problems = []
    if settings["eval_mixture"] is not None or settings["eval_tasks"]:
        problems.append("train_run.eval_mixture and eval_tasks are for mixture runs: a preference run evaluates "
                        "its held-out pairs (preference_data.held_out_every)")
    if (every > 0 or keep_best > 0) and not pairs.held_out_every:
        problems.append("train_run.eval_every / keep_best need held-out pairs: set preference_data.held_out_every")
    objective = settings.get("objective")
    if keep_best > 0 and not settings_problems(settings):
        totals = {name: 1.0 for name in ("pairs", "loss_sum", "reward_margin_sum", "reward_correct",
                                         "chosen_logps_sum", "rejected_logps_sum")}
        logged = [f"eval/{name}" for name in objective.metrics(totals)]
        if best not in logged:
            problems.append(f"train_run.best_metric = {best!r} is not logged by the held-out pairs' evaluation "
                            f"(it logs {', '.join(logged)})")
    return problems
