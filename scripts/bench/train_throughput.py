"""Training throughput of it_jax against Hugging Face transformers (PyTorch) on the same model and batch.

  python scripts/bench/train_throughput.py                       # both models, default sizes
  python scripts/bench/train_throughput.py --model decoder --num_layers 4 --json /tmp/bench.json
  python scripts/bench/train_throughput.py --no-hf_compile --compile_layers ''   # quick: no torch.compile

Each model kind (T5 v1.1, a Llama-style decoder) is trained for a fixed number of steps by it_jax's `Trainer`
and by transformers (`T5ForConditionalGeneration` with its head untied as in T5 v1.1, `LlamaForCausalLM`;
attention `--hf_attention`), eager and under `torch.compile` (its caches off, so it compiles from scratch
as it_jax does; n/a, with the reason, where it fails): float32, no dropout, AdamW with equal
hyperparameters (`torch.optim.AdamW(foreach=True)`), the same batch of full rows (no padding: real ==
padded tokens) every step, `torch.set_num_threads(os.cpu_count())`.
HF computes its loss from `labels` (mean token cross-entropy; the causal LM shifts its labels, so its loss
skips the last position, the logits computed are the same). Parameter counts are recorded (they match).

Timing: the first step (compile included) is the compile time; `--warmup_steps` untimed steps follow, then
`--steps` timed rounds in which the frameworks take turns (so background load hits all alike), each step
timed to completion (`jax.block_until_ready` on state and metrics; PyTorch on CPU is synchronous).
Tokens/s = real tokens per step (T5: inputs + targets) / median step time.

Model FLOPs (`it_jax.train.flops`, as the trainer logs MFU): 3x the forward pass, which counts 2 FLOPs per
multiply-add of every non-embedding matmul per token through it (attention projections, MLP, and the
d_model x vocab head for target tokens) plus attention, 4 x key length x heads x head_dim per query token
and layer, in full for causal attention too (as computed; PaLM's convention). T5 encoder tokens go through
the encoder and the cross-attention keys/values, decoder tokens through the decoder and the head.
MFU = model FLOPs/s / peak, the peak being the best jitted float32 2048^3 matmul of samples taken before,
between and after the models. Also timed: the AOT compile of it_jax's train step at two layer counts,
scanned and unrolled (`--compile_layers`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import pathlib
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping, Set
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from it_jax import sharding as sharding_lib  # noqa: E402
from it_jax.convert import hf as hf_lib  # noqa: E402
from it_jax.models import stack  # noqa: E402
from it_jax.models.decoder import Decoder, DecoderConfig  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402
from it_jax.models.t5 import T5, T5Config  # noqa: E402
from it_jax.train import flops as flops_lib  # noqa: E402
from it_jax.train.trainer import Trainer  # noqa: E402

ModelConfig = T5Config | DecoderConfig
HostBatch = dict[str, np.ndarray]
Step = Callable[[], None]

LEARNING_RATE, BETAS, EPS, WEIGHT_DECAY = 1e-4, (0.9, 0.999), 1e-8, 0.01
# A step's real (non-padding) tokens are those of these features: T5's inputs and targets, a decoder's sequence.
TOKEN_FEATURES = ("encoder_input_tokens", "decoder_target_tokens")


@dataclasses.dataclass
class Run:
    """One framework's measurement: the first step's time and the timed steps' times, or why it failed."""

    first_step_s: float = 0.0
    step_times_s: list[float] = dataclasses.field(default_factory=list)
    error: str | None = None

    def summary(self, prefix: str, tokens_per_step: int, flops_per_step: float, peak: float) -> dict[str, Any]:
        """Flat `{prefix}_*` metrics; None values when the run failed."""
        keys = ("tokens_per_s", "step_time_median_s", "step_time_p90_s", "compile_s", "mfu")
        if self.error is not None:
            return {**{f"{prefix}_{k}": None for k in keys}, f"{prefix}_error": self.error}
        median = statistics.median(self.step_times_s)
        p90 = float(np.percentile(self.step_times_s, 90))
        values = (tokens_per_step / median, median, p90, self.first_step_s, flops_per_step / median / peak)
        return {f"{prefix}_{k}": v for k, v in zip(keys, values)}


def time_interleaved(
    steps: Mapping[str, Step], *, warmup: int, count: int, may_fail: Set[str] = frozenset()
) -> dict[str, Run]:
    """Times each step's first (compiling) call and, after `warmup` more, `count` rounds of one call of each.

    Taking turns exposes every framework to the same background load. Each step must wait for its results.
    An exception from a step named in `may_fail` (e.g. `torch.compile` unsupported here) marks its run
    failed with the reason, and the others go on.
    """
    runs = {name: Run() for name in steps}

    def call(name: str) -> float | None:
        start = time.perf_counter()
        try:
            steps[name]()
        except Exception as error:  # noqa: BLE001 -- reported in the results, not fatal
            if name not in may_fail:
                raise
            runs[name].error = " ".join(f"{type(error).__name__}: {error}".split())[:300]
            return None
        return time.perf_counter() - start

    for name in steps:
        runs[name].first_step_s = call(name) or 0.0
        for _ in range(warmup if runs[name].error is None else 0):
            call(name)
    for _ in range(count):
        for name in [n for n in steps if runs[n].error is None]:
            seconds = call(name)
            if seconds is not None:
                runs[name].step_times_s.append(seconds)
    return runs


def matmul_peak_flops(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of the fastest of `repeats` jitted float32 `size`^3 matmuls on the first JAX device."""
    a, b = (jax.random.normal(jax.random.key(i), (size, size), jnp.float32) for i in range(2))
    matmul = jax.jit(jnp.matmul)
    run = time_interleaved({"matmul": lambda: matmul(a, b).block_until_ready()}, warmup=0, count=repeats)["matmul"]
    return 2 * size**3 / min(run.step_times_s)


def model_config(args: argparse.Namespace, kind: str, **overrides: Any) -> ModelConfig:
    """The it_jax config of `kind` ("t5" or "decoder") from the flags; `overrides` replace fields."""
    common = dict(
        vocab_size=args.vocab_size,
        d_model=args.d_model,
        d_ff=args.d_ff,
        num_heads=args.num_heads,
        dropout_rate=0.0,
        dtype="float32",
        param_dtype="float32",
        remat_policy=args.remat_policy,
        scan_layers=args.scan_layers,
    )
    if kind == "t5":
        config = T5Config(
            d_kv=args.head_dim, num_encoder_layers=args.num_layers, num_decoder_layers=args.num_layers, **common
        )
        layers = overrides.pop("num_layers", None)
        if layers is not None:
            overrides.update(num_encoder_layers=layers, num_decoder_layers=layers)
    else:
        config = DecoderConfig(
            head_dim=args.head_dim,
            num_kv_heads=args.num_kv_heads or args.num_heads,
            num_layers=args.num_layers,
            **common,
        )
    return dataclasses.replace(config, **overrides)


def make_batch(args: argparse.Namespace, kind: str, seed: int = 0) -> HostBatch:
    """Seqio-style features of full rows: random non-padding ids (1 .. vocab - 1), every loss weight 1."""
    rng = np.random.default_rng(seed)
    ids = lambda length: rng.integers(1, args.vocab_size, (args.batch_size, length), dtype=np.int32)  # noqa: E731
    if kind == "t5":
        targets = ids(args.target_length)
        inputs = np.pad(targets[:, :-1], ((0, 0), (1, 0)))  # shifted right, start id 0
        batch = {"encoder_input_tokens": ids(args.input_length), "decoder_input_tokens": inputs}
    else:
        sequence = ids(args.seq_length + 1)
        targets = sequence[:, 1:]
        batch = {"decoder_input_tokens": sequence[:, :-1]}
    return {**batch, "decoder_target_tokens": targets, "decoder_loss_weights": np.ones_like(targets)}


def make_trainer(config: ModelConfig) -> Trainer:
    """A one-device trainer with AdamW at a constant learning rate."""
    model_cls = T5 if isinstance(config, T5Config) else Decoder
    schedule = optax.constant_schedule(LEARNING_RATE)
    optimizer = optax.adamw(schedule, b1=BETAS[0], b2=BETAS[1], eps=EPS, weight_decay=WEIGHT_DECAY)
    return Trainer(
        spec=ModelSpec.create(lambda rngs: model_cls(config, rngs=rngs)),
        optimizer=optimizer,
        schedule=schedule,
        mesh=sharding_lib.create_mesh(data=1, devices=jax.devices()[:1]),
    )


def itjax_step(config: ModelConfig, batch: HostBatch) -> tuple[Step, int]:
    """it_jax's train step on `batch` (the state carried from call to call), and the parameter count."""
    trainer = make_trainer(config)
    state = trainer.init(seed=0)
    device_batch = trainer.to_global(batch)

    def step():
        nonlocal state
        state, stats = trainer.step(state, device_batch)
        jax.block_until_ready((state, stats))

    return step, trainer.spec.num_params()


def compile_seconds(config: ModelConfig, batch: HostBatch) -> dict[str, float]:
    """Seconds to trace/lower and to compile (AOT, nothing runs) the trainer's step for abstract inputs."""
    trainer = make_trainer(config)
    state = trainer.abstract_state()
    shapes = {k: jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=trainer.data_sharding) for k, v in batch.items()}
    start = time.perf_counter()
    lowered = trainer.lower(state, shapes)
    lowered_at = time.perf_counter()
    lowered.compile()
    end = time.perf_counter()
    return {"lower_s": lowered_at - start, "compile_s": end - lowered_at, "total_s": end - start}


def compile_time_section(args: argparse.Namespace, kind: str, layer_counts: list[int]) -> dict[str, Any]:
    """AOT compile times of the train step at each layer count, scanned and unrolled, and the large/small ratios.

    Each time is the fastest of `args.compile_repeats` rounds over all the variants (every round traces
    and compiles anew), so a burst of load on the machine does not skew one variant.
    """
    batch = make_batch(args, kind)
    variants = [(str(n), name, scan) for n in layer_counts for name, scan in (("scanned", True), ("unrolled", False))]
    times: dict[str, dict[str, dict[str, float]]] = {str(n): {} for n in layer_counts}
    for _ in range(args.compile_repeats):
        for layers, name, scan in variants:
            seconds = compile_seconds(model_config(args, kind, num_layers=int(layers), scan_layers=scan), batch)
            best = times[layers].get(name)
            if best is None or seconds["total_s"] < best["total_s"]:
                times[layers][name] = seconds
    small, large = str(min(layer_counts)), str(max(layer_counts))
    ratio = lambda name: times[large][name]["total_s"] / times[small][name]["total_s"]  # noqa: E731
    return {
        "model": kind,
        "layers": times,
        "ratio_scanned": ratio("scanned"),
        "ratio_unrolled": ratio("unrolled"),
        "ratio_layers": f"{large}/{small}",
    }


def hf_model(config: ModelConfig, attn_implementation: str):
    """The transformers model matching an it_jax config (float32, no dropout, untied head)."""
    import torch
    import transformers

    fields = hf_lib.config_to_hf(config)
    hf_config = transformers.AutoConfig.for_model(**fields, attn_implementation=attn_implementation)
    if isinstance(config, T5Config):
        model = transformers.T5ForConditionalGeneration(hf_config)
        if model.lm_head.weight is model.shared.weight:
            # transformers 5 ties T5's head to the embedding even for v1.1 configs; T5 v1.1 is untied.
            model.lm_head.weight = torch.nn.Parameter(model.shared.weight.detach().clone())
    else:
        model = transformers.LlamaForCausalLM(hf_config)
    return model.float().train()


def hf_inputs(batch: HostBatch) -> dict[str, Any]:
    """The model's keyword arguments for a feature batch; labels make the model compute the mean token loss.

    A causal LM shifts its labels by one inside the loss, so it gets the input ids as labels (the loss
    then covers all but the last position; the same logits are computed).
    """
    import torch

    tensor = lambda name: torch.from_numpy(batch[name].astype(np.int64))  # noqa: E731
    if "encoder_input_tokens" in batch:
        return {
            "input_ids": tensor("encoder_input_tokens"),
            "decoder_input_ids": tensor("decoder_input_tokens"),
            "labels": tensor("decoder_target_tokens"),
        }
    return {"input_ids": tensor("decoder_input_tokens"), "labels": tensor("decoder_input_tokens")}


def hf_step(config: ModelConfig, batch: HostBatch, attention: str, *, compile: bool) -> tuple[Step, int]:
    """A transformers train step (forward with the loss, backward, AdamW) on `batch`, and the parameter count."""
    import torch

    torch.manual_seed(0)
    model = hf_model(config, attention)
    num_params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=LEARNING_RATE, betas=BETAS, eps=EPS, weight_decay=WEIGHT_DECAY, foreach=True
    )
    forward = torch.compile(model) if compile else model
    inputs = hf_inputs(batch)

    def step():
        loss = forward(**inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, num_params


@dataclasses.dataclass
class ModelBenchmark:
    """One model kind's config, batch shape, work per step, and each framework's `Run` (by JSON prefix)."""

    kind: str
    config: ModelConfig
    batch_shapes: dict[str, tuple[int, ...]]
    tokens_per_step: int
    flops_per_step: float
    num_params: dict[str, int] = dataclasses.field(default_factory=dict)
    runs: dict[str, Run] = dataclasses.field(default_factory=dict)

    def results(self, peak: float, hf_attention: str) -> dict[str, Any]:
        """The flat JSON entry (see the module docstring), MFU against `peak`."""
        result: dict[str, Any] = {
            "config": dataclasses.asdict(self.config),
            "batch_shapes": {k: list(v) for k, v in self.batch_shapes.items()},
            "tokens_per_step": self.tokens_per_step,
            "model_flops_per_step": self.flops_per_step,
            "matmul_peak_flops": peak,
            **{f"{name}_num_params": n for name, n in self.num_params.items()},
        }
        for name, run in self.runs.items():
            result.update(run.summary(name, self.tokens_per_step, self.flops_per_step, peak))
        result["mfu"] = result["itjax_mfu"]
        if len(self.runs) > 1:
            result["hf_attn_implementation"] = hf_attention
        for name in [n for n in self.runs if n != "itjax"]:
            theirs = result[f"{name}_tokens_per_s"]
            result[f"ratio_vs_{name}"] = result["itjax_tokens_per_s"] / theirs if theirs else None
        return result


def benchmark_model(args: argparse.Namespace, kind: str) -> ModelBenchmark:
    """Times it_jax and transformers eager and compiled (unless skipped) on one model kind, taking turns."""
    config = model_config(args, kind)
    batch = make_batch(args, kind)
    shapes = {k: v.shape for k, v in batch.items()}
    bench = ModelBenchmark(
        kind=kind,
        config=config,
        batch_shapes=shapes,
        tokens_per_step=sum(int((batch[k] > 0).sum()) for k in TOKEN_FEATURES if k in batch),
        flops_per_step=float(flops_lib.train_flops_per_step(config, shapes)),
    )
    steps: dict[str, Step] = {}
    steps["itjax"], bench.num_params["itjax"] = itjax_step(config, batch)
    hf_variants = [] if args.skip_hf else [("hf_eager", False), ("hf_compile", True)][: 2 if args.hf_compile else 1]
    for name, compile in hf_variants:
        steps[name], bench.num_params["hf"] = hf_step(config, batch, args.hf_attention, compile=compile)
    may_fail = {name for name, _ in hf_variants}
    print(f"[{kind}] timing {', '.join(steps)} ...", file=sys.stderr, flush=True)
    bench.runs = time_interleaved(steps, warmup=args.warmup_steps, count=args.steps, may_fail=may_fail)
    return bench


def _fmt(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_report(results: Mapping[str, Any]) -> str:
    """Markdown tables of throughput, MFU and compile times."""
    lines = [
        f"matmul peak (f32, JAX, best of {len(results['matmul_peak_samples'])} samples): "
        f"{results['matmul_peak_flops'] / 1e9:.1f} GFLOP/s; "
        f"{results['machine']['cpu_count']} CPUs, {results['machine']['platform']}",
        "",
        "| model | framework | tokens/s | step median (s) | step p90 (s) | first step (s) | it_jax ÷ this "
        "| GFLOP/step | MFU |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for kind in [k for k in ("t5", "decoder") if k in results]:
        r = results[kind]
        attn = r.get("hf_attn_implementation")
        labels = {"itjax": "it_jax", "hf_eager": f"HF eager ({attn})", "hf_compile": f"HF torch.compile ({attn})"}
        for prefix, label in [(p, label) for p, label in labels.items() if f"{p}_tokens_per_s" in r]:
            ratio = 1.0 if prefix == "itjax" else r[f"ratio_vs_{prefix}"]
            lines.append(
                f"| {kind} | {label} | {_fmt(r[f'{prefix}_tokens_per_s'], ',.0f')} "
                f"| {_fmt(r[f'{prefix}_step_time_median_s'], '.3f')} | {_fmt(r[f'{prefix}_step_time_p90_s'], '.3f')} "
                f"| {_fmt(r[f'{prefix}_compile_s'], '.1f')} | {_fmt(ratio, '.2f')} "
                f"| {r['model_flops_per_step'] / 1e9:,.1f} | {_fmt(r[f'{prefix}_mfu'], '.1%')} |"
            )
            if r.get(f"{prefix}_error"):
                notes.append(f"- {kind} {label}: n/a ({r[f'{prefix}_error']})")
    lines += ["", *notes] if notes else []
    compile_times = results.get("compile_time")
    if compile_times:
        lines += [
            "",
            f"it_jax train-step AOT compile time ({compile_times['model']}; trace+lower / XLA compile / total, s):",
            "",
            "| layers | scanned | unrolled |",
            "|---|---|---|",
        ]
        for layers, by_mode in compile_times["layers"].items():
            cells = [" / ".join(f"{by_mode[m][k]:.1f}" for k in ("lower_s", "compile_s", "total_s")) for m in by_mode]
            lines.append(f"| {layers} | {' | '.join(cells)} |")
        lines += [
            "",
            f"ratio {compile_times['ratio_layers']} layers: scanned {compile_times['ratio_scanned']:.2f}x, "
            f"unrolled {compile_times['ratio_unrolled']:.2f}x",
        ]
    return "\n".join(lines)


def machine_info(with_torch: bool) -> dict[str, Any]:
    info = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    if with_torch:
        import torch
        import transformers

        info.update(torch=torch.__version__, transformers=transformers.__version__)
        info["torch_threads"] = torch.get_num_threads()
    return info


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("t5", "decoder", "both"), default="both")
    parser.add_argument("--d_model", type=int, default=512)
    parser.add_argument("--d_ff", type=int, default=1024, help="hidden units of the gated MLP")
    parser.add_argument("--num_heads", type=int, default=8)
    parser.add_argument("--head_dim", type=int, default=64)
    parser.add_argument("--num_kv_heads", type=int, default=None, help="decoder only; default num_heads")
    parser.add_argument("--num_layers", type=int, default=2, help="T5: layers of each stack")
    parser.add_argument("--vocab_size", type=int, default=32128)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--input_length", type=int, default=256, help="T5 encoder tokens per row")
    parser.add_argument("--target_length", type=int, default=128, help="T5 decoder tokens per row")
    parser.add_argument("--seq_length", type=int, default=256, help="decoder tokens per row")
    parser.add_argument("--steps", type=int, default=10, help="timed steps")
    parser.add_argument("--warmup_steps", type=int, default=2, help="untimed steps after the first")
    parser.add_argument("--scan_layers", action="store_true", help="it_jax: scan over layers")
    parser.add_argument("--remat_policy", default="none", choices=sorted(stack.REMAT_POLICIES), help="it_jax only")
    parser.add_argument("--hf_attention", default="sdpa", choices=("sdpa", "eager"), help="transformers attention")
    parser.add_argument("--compile_layers", default="4,24", help="layer counts to compile ('' skips)")
    parser.add_argument("--compile_repeats", type=int, default=2, help="compile-time rounds (the fastest is kept)")
    parser.add_argument("--skip_hf", action="store_true", help="time it_jax only")
    parser.add_argument("--hf_compile", action=argparse.BooleanOptionalAction, default=True, help="torch.compile too")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if not args.skip_hf:
        import torch

        torch.set_num_threads(os.cpu_count() or 1)
        torch.compiler.config.force_disable_caches = True  # its first step compiles from scratch, as it_jax's does
    kinds = ["t5", "decoder"] if args.model == "both" else [args.model]
    # The peak is sampled before, between and after the models and the best kept: a busy machine lowers
    # single samples, which would inflate MFU.
    print("matmul peak ...", file=sys.stderr, flush=True)
    peaks = [matmul_peak_flops()]
    benchmarks = []
    for kind in kinds:
        benchmarks.append(benchmark_model(args, kind))
        peaks.append(matmul_peak_flops())
    peak = max(peaks)
    results: dict[str, Any] = {
        "machine": machine_info(with_torch=not args.skip_hf),
        "matmul_peak_flops": peak,
        "matmul_peak_samples": peaks,
        "args": vars(args),
        **{b.kind: b.results(peak, args.hf_attention) for b in benchmarks},
    }
    layer_counts = [int(n) for n in args.compile_layers.split(",") if n.strip()]
    if layer_counts:
        kind = "decoder" if "decoder" in kinds else "t5"
        print(f"[{kind}] compile times for {layer_counts} layers ...", file=sys.stderr, flush=True)
        results["compile_time"] = compile_time_section(args, kind, layer_counts)
    print(markdown_report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
