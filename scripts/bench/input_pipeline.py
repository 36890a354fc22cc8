"""Input-pipeline benchmark: the training input path as a run reads it.

`--stream train` (default) times `it_jax.data.packed_input.packed_batches`, the training stream
`launch.train_run` reads; `--stream seqio` times the seqio pipeline (`it_jax.data.pipeline.host_batches`)
that it replaced for training (and that evaluation still reads), for comparison. Below, "the stream" is
the chosen one.

  python scripts/bench/input_pipeline.py --json /tmp/bench/input_pipeline.json
  python scripts/bench/input_pipeline.py --examples 2000 --resume_positions 0,100 --skip_hf   # quick

What is measured, each number wall-clock on this machine (run it otherwise idle):
- Throughput, per mixture, of the stream called as `launch.train_run` calls it
  (shuffled, repeated, seed 0, one shard, packed, `ENCODER_DECODER` layout, with the run's vocabulary
  the tasks are registered with; rates examples-proportional with FLAN's cap of 3,000):
  - `synthetic`: `synthetic_all` (`mixtures.synthetic`), byte vocabulary (`make_vocabulary()`, as
    gin/runs/demo.gin), inputs 128 / targets 32 tokens, batch 32;
  - `flan`: every FLAN 2021 task (`mixtures.flan2021`) whose train split has a local JSONL mirror in
    `<--data_dir>/tfds_jsonl` (the run context's data directory, as `run_config.data_dir` sets it), mixed
    as `train_run` mixes a list of tasks; the T5 SentencePiece vocabulary (`extra_ids=100`); inputs 512 /
    targets 64, batch 64. Skipped, with a note in the JSON, when the mirrors or tokenizer are absent.
  The first batch (dataset construction included) is timed on its own (`first_batch_s`); then batches are
  read untimed for `--warmup_seconds` (the rate climbs for the first 15-25 s: `warmup_examples_per_s`);
  then timed until `--examples` examples have arrived (by default: for `--seconds` seconds), also per
  5-second window (`examples_per_s_by_window`: the rate drifts along the stream). An example is one source
  example packed into a row: a segment of `decoder_segment_ids` (segment starts), counted per batch.
  Reported: examples/s, batches/s, process CPU seconds per wall second (all threads), and fill: the
  fraction of non-padding tokens (id 0 is padding) of `encoder_input_tokens` and of
  `decoder_target_tokens` over the timed batches.
- `resume_first_batch_s`: for each of `--resume_positions`, the seconds from calling the stream with
  `skip_batches=position` on `synthetic_all` to its first batch, in this process after the throughput
  runs (so one-time work such as counting the generators' examples is done): what a resumed run waits.
- `first_step_s`: a fresh `scripts/train.py` process of the demo run (gin/runs/demo.gin: t5_tiny, byte
  vocabulary, batch 32, 128/32 tokens, packed) on `synthetic_all`, stopped after one step, no evaluation:
  seconds from just before the process is started to the end of its first training step, which is the
  modification time of `metrics.jsonl` (one record, written once the step's results are ready; the
  record's own `first_step_s`, counted from the trainer's logger creation, is reported beside it). It runs
  with JAX's persistent compilation cache in a new, empty directory (cold: `first_step_s`, `first_step`),
  then once more with the cache that run filled (warm: `first_step_warm_s`, `first_step_warm`), as a rerun
  of the same shapes with the default cache directory would.
- `hf_first_step_s`: the same for Hugging Face transformers: a fresh process imports torch and
  transformers, builds `T5ForConditionalGeneration` of t5_tiny's dimensions (vocabulary 384, float32,
  untied head) and runs one step (forward with the loss, backward, AdamW) on a batch of the same shape
  (32 full rows of 128 inputs / 32 targets), with `torch.set_num_threads(os.cpu_count())`; it reuses
  scripts/bench/train_throughput.py's `make_batch` and `hf_step`. Importing those helpers also imports
  JAX and it_jax, which a transformers run would not: that import is timed in the process and left out
  (`hf_helper_import_s`).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.metadata
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
FLAN_MIXTURE = "bench_flan2021_mirrors"
DEMO_GIN = "runs/demo.gin"
WINDOW_S = 5.0  # the throughput is also reported per window of this many seconds
PACKAGES = ("jax", "flax", "tensorflow", "seqio", "numpy", "sentencepiece", "torch", "transformers")

Batch = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One mixture's input settings, as `train_run` passes them to `host_batches`."""

    mixture: str
    task_feature_lengths: Mapping[str, int]
    batch_size: int
    pack: bool = True
    seed: int = 0
    stream: str = "train"


SYNTHETIC = Setting("synthetic_all", {"inputs": 128, "targets": 32}, batch_size=32)
FLAN = Setting(FLAN_MIXTURE, {"inputs": 512, "targets": 64}, batch_size=64)


def count_examples(batch: Batch) -> int:
    """Source examples in a batch: segment starts of `decoder_segment_ids` (packed), else rows with targets."""
    import numpy as np

    segments = batch.get("decoder_segment_ids")
    if segments is None:
        return int((batch["decoder_target_tokens"] != 0).any(axis=1).sum())
    previous = np.pad(segments, ((0, 0), (1, 0)))[:, :-1]
    return int(((segments != 0) & (segments != previous)).sum())


def batches(setting: Setting, vocabulary, *, skip_batches: int = 0) -> Iterator[Batch]:
    """The stream exactly as `launch.train_run` calls it (one host): the training stream, or the seqio pipeline."""
    from it_jax.data import layout, pipeline

    common = {
        "task_feature_lengths": setting.task_feature_lengths,
        "layout": layout.ENCODER_DECODER,
        "batch_size": setting.batch_size,
        "pack": setting.pack,
        "seed": setting.seed,
        "skip_batches": skip_batches,
    }
    if setting.stream == "train":
        from it_jax.data import packed_input  # absent before the training stream existed (--stream seqio there)

        return packed_input.packed_batches(setting.mixture, vocabulary=vocabulary, **common)
    return pipeline.host_batches(setting.mixture, shuffle=True, **common)


@dataclasses.dataclass
class Tally:
    """What a stretch of batches held, how long it took, and its examples/s in consecutive windows."""

    batches: int = 0
    examples: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    windows: list[float] = dataclasses.field(default_factory=list)
    tokens: dict[str, int] = dataclasses.field(default_factory=lambda: {"encoder": 0, "decoder": 0})
    positions: dict[str, int] = dataclasses.field(default_factory=lambda: {"encoder": 0, "decoder": 0})

    def add(self, batch: Batch) -> None:
        self.batches += 1
        self.examples += count_examples(batch)
        for side, feature in (("encoder", "encoder_input_tokens"), ("decoder", "decoder_target_tokens")):
            self.tokens[side] += int((batch[feature] != 0).sum())
            self.positions[side] += int(batch[feature].size)

    def fill(self) -> dict[str, float]:
        return {side: self.tokens[side] / max(self.positions[side], 1) for side in self.tokens}


def consume(stream: Iterator[Batch], *, seconds: float, examples: int = 0) -> Tally:
    """Reads batches until `examples` examples have arrived (if given), else for `seconds` seconds (at least
    one batch), and tallies them; `windows` holds the examples/s of each `WINDOW_S` seconds (the last shorter)."""
    tally = Tally()
    start, cpu = time.perf_counter(), time.process_time()
    window_start, window_examples = start, 0

    def done() -> bool:
        if examples:
            return tally.examples >= examples
        return tally.batches > 0 and time.perf_counter() - start >= seconds

    while not done():
        before = tally.examples
        tally.add(next(stream))
        window_examples += tally.examples - before
        now = time.perf_counter()
        if now - window_start >= WINDOW_S:
            tally.windows.append(window_examples / (now - window_start))
            window_start, window_examples = now, 0
    tally.wall_s, tally.cpu_s = time.perf_counter() - start, time.process_time() - cpu
    if window_examples:
        tally.windows.append(window_examples / (start + tally.wall_s - window_start))
    return tally


def time_throughput(setting: Setting, vocabulary, *, examples: int, seconds: float, warmup: float) -> dict[str, Any]:
    """The first batch's time; `warmup` seconds of untimed batches; then examples/s, batches/s and fill over
    `examples` examples, or `seconds` seconds when `examples` is 0."""
    start = time.perf_counter()
    stream = batches(setting, vocabulary)
    first = next(stream)
    first_batch_s = time.perf_counter() - start
    warm = consume(stream, seconds=warmup) if warmup > 0 else Tally()
    timed = consume(stream, seconds=seconds, examples=examples)
    stream.close()
    return {
        "examples_per_s": timed.examples / timed.wall_s,
        "batches_per_s": timed.batches / timed.wall_s,
        "examples_per_row": timed.examples / (timed.batches * setting.batch_size),
        "fill": timed.fill(),
        "examples_timed": timed.examples,
        "batches_timed": timed.batches,
        "timed_s": timed.wall_s,
        "examples_per_s_by_window": timed.windows,
        "process_cpu_per_wall_s": timed.cpu_s / timed.wall_s,
        "first_batch_s": first_batch_s,
        "warmup_s": warm.wall_s,
        "warmup_examples_per_s": warm.examples / warm.wall_s if warm.batches else None,
        "batch_shapes": {name: list(value.shape) for name, value in sorted(first.items())},
        "settings": dataclasses.asdict(setting),
    }


def time_resumes(setting: Setting, vocabulary, positions: Sequence[int]) -> dict[str, float]:
    """Seconds from calling `host_batches(skip_batches=position)` to its first batch, for each position."""
    seconds = {}
    for position in positions:
        print(f"[resume] position {position} ...", file=sys.stderr, flush=True)
        start = time.perf_counter()
        stream = batches(setting, vocabulary, skip_batches=position)
        next(stream)
        seconds[str(position)] = time.perf_counter() - start
        stream.close()
    return seconds


def prepare_synthetic():
    """Registers the synthetic tasks with the demo's rates and byte vocabulary. Returns the vocabulary."""
    import mixtures.synthetic as synthetic
    from it_jax.data import context, vocab

    vocabulary = vocab.make_vocabulary(sentencepiece_model=None)
    synthetic.register(context.TaskContext(vocabulary))
    return vocabulary


def flan_inputs(data_dir: pathlib.Path) -> tuple[pathlib.Path, pathlib.Path] | str:
    """The mirrors directory and the SentencePiece model under `data_dir`, or why they cannot be used."""
    mirrors, model = data_dir / "tfds_jsonl", data_dir / "tokenizers" / "t5" / "spiece.model"
    missing = [str(path) for path in (mirrors, model) if not path.exists()]
    return f"FLAN skipped: not found: {', '.join(missing)}" if missing else (mirrors, model)


def prepare_flan(mirrors: pathlib.Path, spiece_model: pathlib.Path) -> tuple[Any, list[str]]:
    """Registers FLAN 2021 reading the mirrors, and a mixture of every task with a mirrored train split (as
    `train_run` registers a list). Returns the SentencePiece vocabulary and the task names."""
    import mixtures.flan2021 as flan
    from it_jax.data import context, mixing, sources, vocab

    vocabulary = vocab.make_vocabulary(sentencepiece_model=str(spiece_model), extra_ids=100)
    tasks = context.TaskContext(vocabulary, data_dir=str(mirrors.resolve()))
    flan.register(tasks)

    names = [
        f"{flan.PREFIX}_{spec.name}"
        for spec in flan.SPECS
        if "train" in spec.splits
        and (mirrors / sources.mirror_dir_name(spec.tfds_name) / f"{spec.splits['train']}.jsonl").is_file()
    ]
    if not names:
        raise FileNotFoundError(f"no FLAN 2021 train split is mirrored in {mirrors}")
    mixing.register_mixture(FLAN_MIXTURE, names, rate=tasks.rate())
    return vocabulary, names


def quiet_env(**extra: str) -> dict[str, str]:
    """The environment for the timed subprocesses: this one's, TensorFlow's logs off, the repository importable."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": path, **extra}


def run_timed(command: Sequence[str], timeout: float) -> tuple[float, subprocess.CompletedProcess]:
    """Starts `command` (from the repository root) and waits for it; returns the wall-clock start time."""
    started = time.time()
    result = subprocess.run(
        command, capture_output=True, text=True, env=quiet_env(), cwd=REPO, timeout=timeout, check=False
    )
    if result.returncode:
        raise RuntimeError(f"{' '.join(command[:3])} ... exited {result.returncode}:\n{result.stderr[-3000:]}")
    return started, result


def itjax_first_step(timeout: float, cache_dir: str | pathlib.Path) -> dict[str, Any]:
    """Process start to the end of the first step of the demo run on `synthetic_all` (see the docstring),
    with JAX's persistent compilation cache in `cache_dir`."""
    with tempfile.TemporaryDirectory(prefix="bench_first_step_") as model_dir:
        bindings = [
            "train_run.num_steps = 1",
            "train_run.log_every = 1",
            "train_run.eval_every = 0",
            f"train_run.mixture = '{SYNTHETIC.mixture}'",
            "main.evaluate = False",
        ]
        command = [sys.executable, str(REPO / "scripts" / "train.py"), f"--gin_file={DEMO_GIN}"]
        command += [f"--model_dir={model_dir}", *(f"--gin_bindings={b}" for b in bindings)]
        started, _ = run_timed([*command, f"--compilation_cache_dir={cache_dir}"], timeout)
        path = pathlib.Path(model_dir) / "metrics.jsonl"
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if [r.get("step") for r in records] != [1]:
            raise RuntimeError(f"expected one step-1 record in {path}, found {records}")
        return {
            "first_step_s": path.stat().st_mtime - started,
            "trainer_first_step_s": records[0]["first_step_s"],
            "process_s": time.time() - started,
            "command": " ".join(command[1:3] + [f"--gin_bindings={b}" for b in bindings]),
        }


def hf_first_step(timeout: float) -> dict[str, Any]:
    """Process start to the end of transformers' first step on t5_tiny's shape (see the docstring)."""
    import gin
    from it_jax import launch
    from it_jax.models import registry, t5

    gin.clear_config()
    try:  # the demo run's model: gin/models/t5_tiny.gin with the byte vocabulary's VOCAB_SIZE
        launch.parse_config([DEMO_GIN])
        config = registry.config_to_dict(t5.T5Config(**gin.get_bindings("T5Config")))
    finally:
        gin.clear_config()
    lengths = SYNTHETIC.task_feature_lengths
    shape = {"batch_size": SYNTHETIC.batch_size, "input_length": lengths["inputs"], "target_length": lengths["targets"]}
    command = [sys.executable, __file__, "--child_hf", json.dumps({"config": config, **shape})]
    started, result = run_timed(command, timeout)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    excluded = report["helpers_imported"] - report["hf_imported"]
    return {
        "hf_first_step_s": report["step_done"] - started - excluded,
        "hf_import_s": report["hf_imported"] - started,
        "hf_helper_import_s": excluded,
        "hf_build_and_step_s": report["step_done"] - report["helpers_imported"],
        "hf_num_params": report["num_params"],
        "torch_threads": report["torch_threads"],
        "hf_batch_shape": shape,
    }


def hf_child(spec_json: str) -> None:
    """In a fresh process: import torch and transformers, then the helpers, build the model, take one step;
    prints the wall-clock times of each stage as JSON."""
    import torch
    import transformers  # noqa: F401 -- timed with torch: what a transformers run imports

    hf_imported = time.time()
    sys.path[:0] = [str(REPO), str(REPO / "scripts" / "bench")]
    import train_throughput  # also imports JAX and it_jax: timed apart and left out

    from it_jax.models import registry

    helpers_imported = time.time()
    torch.set_num_threads(os.cpu_count() or 1)
    spec = json.loads(spec_json)
    config = registry.config_from_dict(spec["config"])
    shape = argparse.Namespace(vocab_size=config.vocab_size, **{k: v for k, v in spec.items() if k != "config"})
    step, num_params = train_throughput.hf_step(config, train_throughput.make_batch(shape, "t5"), "sdpa", compile=False)
    step()
    stages = {"hf_imported": hf_imported, "helpers_imported": helpers_imported, "step_done": time.time()}
    print(json.dumps({**stages, "num_params": num_params, "torch_threads": torch.get_num_threads()}))


def machine_info() -> dict[str, Any]:
    """CPU count, load average, platform and package versions (read from metadata, nothing imported)."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu_count": os.cpu_count(),
        "load_average": list(os.getloadavg()),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": versions,
    }


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_report(results: Mapping[str, Any]) -> str:
    """Tables of the throughput per mixture and the startup times."""
    m = results["machine"]
    load_start, load_end = (" ".join(f"{x:.2f}" for x in v) for v in (m["load_average"], results["load_average_end"]))
    machine = f"{m['cpu_count']} CPUs, load average {load_start} (at the end: {load_end}); {m['platform']}"
    lines = [
        machine,
        "",
        "| mixture | examples/s | by window | warm-up ex/s | batches/s | examples/row | fill enc | fill dec | "
        + "first batch (s) | CPU/wall |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in ("synthetic", "flan"):
        r = results["mixtures"].get(name)
        if r is None:
            lines.append(f"| {name} | n/a ({results['notes'].get(name, 'skipped')}) |||||||||")
            continue
        lines.append(
            f"| {name} | {r['examples_per_s']:,.0f} | {' '.join(f'{x:.0f}' for x in r['examples_per_s_by_window'])} "
            f"| {_fmt(r['warmup_examples_per_s'], ',.0f')} | {r['batches_per_s']:.2f} | {r['examples_per_row']:.2f} "
            f"| {r['fill']['encoder']:.3f} | {r['fill']['decoder']:.3f} | {r['first_batch_s']:.2f} "
            f"| {r['process_cpu_per_wall_s']:.2f} |"
        )
    lines += ["", "| resume position | first batch (s) |", "|---|---|"]
    lines += [f"| {p} | {s:.2f} |" for p, s in results["resume_first_batch_s"].items()]
    first_steps = (
        f"first step from process start: it_jax {_fmt(results['first_step_s'], '.1f')} s cold (empty compilation "
        f"cache), {_fmt(results['first_step_warm_s'], '.1f')} s warm (rerun); "
        f"HF transformers {_fmt(results['hf_first_step_s'], '.1f')} s"
    )
    lines += ["", first_steps]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the results here")
    parser.add_argument("--stream", choices=("train", "seqio"), default="train", help="which input to time")
    parser.add_argument("--examples", type=int, default=0, help="examples to time per mixture (0: --seconds)")
    parser.add_argument("--seconds", type=float, default=20.0, help="timed seconds per mixture without --examples")
    parser.add_argument("--warmup_seconds", type=float, default=15.0, help="untimed reading after the first batch")
    parser.add_argument("--resume_positions", default="0,1000,10000", help="skip_batches positions to time")
    parser.add_argument("--data_dir", type=pathlib.Path, default=DEFAULT_DATA_DIR, help="the shared data directory")
    parser.add_argument("--skip_flan", action="store_true", help="time the synthetic mixture only")
    parser.add_argument("--skip_hf", action="store_true", help="no transformers first step")
    parser.add_argument("--subprocess_timeout", type=float, default=900.0, help="seconds per timed subprocess")
    parser.add_argument("--child_hf", help=argparse.SUPPRESS)  # internal: the transformers first-step process
    return parser.parse_args(argv)


def measure_mixtures(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, str], Any]:
    """Throughput of each mixture; notes on what was skipped; the synthetic vocabulary (for the resumes)."""
    timing = {"examples": args.examples, "seconds": args.seconds, "warmup": args.warmup_seconds}
    results, notes = {}, {}
    byte_vocabulary = prepare_synthetic()
    print("[synthetic] timing ...", file=sys.stderr, flush=True)
    synthetic = dataclasses.replace(SYNTHETIC, stream=args.stream)
    results["synthetic"] = time_throughput(synthetic, byte_vocabulary, **timing)
    found = "FLAN skipped: --skip_flan" if args.skip_flan else flan_inputs(args.data_dir)
    if isinstance(found, str):
        notes["flan"] = found
    else:
        spiece, names = prepare_flan(*found)
        print(f"[flan] timing {len(names)} mirrored tasks ...", file=sys.stderr, flush=True)
        flan = dataclasses.replace(FLAN, stream=args.stream)
        results["flan"] = {**time_throughput(flan, spiece, **timing), "tasks": names, "data_dir": str(found[0])}
    return results, notes, byte_vocabulary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.child_hf:
        return hf_child(args.child_hf)
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    machine = machine_info()
    mixtures, notes, byte_vocabulary = measure_mixtures(args)
    positions = [int(p) for p in args.resume_positions.split(",") if p.strip()]
    resumes = time_resumes(dataclasses.replace(SYNTHETIC, stream=args.stream), byte_vocabulary, positions)
    with tempfile.TemporaryDirectory(prefix="bench_compilation_cache_") as cache_dir:
        print("[first step] it_jax (scripts/train.py), empty compilation cache ...", file=sys.stderr, flush=True)
        itjax = itjax_first_step(args.subprocess_timeout, cache_dir)
        print("[first step] it_jax again, the cache filled ...", file=sys.stderr, flush=True)
        itjax_warm = itjax_first_step(args.subprocess_timeout, cache_dir)
    hf = {}
    if args.skip_hf:
        notes["hf"] = "HF skipped: --skip_hf"
    else:
        print("[first step] transformers ...", file=sys.stderr, flush=True)
        hf = hf_first_step(args.subprocess_timeout)
    results = {
        "synthetic_examples_per_s": mixtures["synthetic"]["examples_per_s"],
        "flan_examples_per_s": mixtures["flan"]["examples_per_s"] if "flan" in mixtures else None,
        "resume_first_batch_s": resumes,
        "first_step_s": itjax["first_step_s"],
        "first_step_warm_s": itjax_warm["first_step_s"],
        "hf_first_step_s": hf.get("hf_first_step_s"),
        "mixtures": mixtures,
        "first_step": itjax,
        "first_step_warm": itjax_warm,
        "hf_first_step": hf or None,
        "notes": notes,
        "machine": machine,
        "load_average_end": list(os.getloadavg()),
        "args": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items() if k != "child_hf"},
    }
    print(markdown_report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
