"""Train-state memory (parameters + AdamW state) and CPU tokens/s of full fine-tuning vs LoRA, with the Trainer.

  python scripts/bench/lora_memory.py                          # llama3_2_1b and decoder_tiny, rank 8 on q/k/v/o
  python scripts/bench/lora_memory.py --models t5_small --rank 16 --targets q k v o mlp --json /tmp/lora.json

Memory is the `Trainer`'s abstract state (`Trainer.abstract_state`, nothing allocated) on one device: the
parameters of the model as built (with adapters for LoRA, the frozen base in `--base_dtype` if given) plus
AdamW's state, which the trainer keeps for the trainable leaves only (`trainable=nnx.LoRAParam` for LoRA).

Tokens/s (`--speed_model`, default decoder_tiny with the byte vocabulary): `Trainer.step` (next-token
cross-entropy, AdamW) on one batch of `--batch` x `--length` full rows, `--warmup` untimed steps (the first
compiles) then the median of `--steps` timed ones, float32.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from it_jax import launch  # noqa: E402
from it_jax import sharding as sharding_lib  # noqa: E402
from it_jax.models import lora, registry  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402
from it_jax.train import optimizers  # noqa: E402
from it_jax.train.trainer import Trainer  # noqa: E402


def _bytes(leaves) -> int:
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(leaves))


def make_trainer(name: str, config: lora.LoraConfig | None, bindings=()) -> Trainer:
    """A one-device AdamW `Trainer` of `gin/models/{name}.gin`: every parameter trains (config None) or the
    LoRA adapters `config` describes."""
    model_config = launch.gin_model_config(name, bindings)
    build = lambda rngs: registry.build(model_config, rngs)  # noqa: E731
    spec = ModelSpec.create(build if config is None else lora.with_lora(build, config))
    schedule = optimizers.make_schedule(base_learning_rate=1e-3, warmup_steps=0, decay="constant")
    return Trainer(spec=spec, optimizer=optimizers.make_optimizer(schedule, name="adamw"), schedule=schedule,
                   mesh=sharding_lib.create_mesh(devices=jax.devices()[:1]),
                   trainable=None if config is None else nnx.LoRAParam)


def memory(name: str, config: lora.LoraConfig | None) -> dict[str, object]:
    """Bytes of parameters and optimizer state of the trainer's abstract state."""
    trainer = make_trainer(name, config)
    state = trainer.abstract_state()
    mask = jax.tree.leaves(trainer.mask) if trainer.mask is not None else None
    leaves = jax.tree.leaves(state.params)
    result = {
        "model": name, "method": "full" if config is None else f"lora r{config.rank} {'/'.join(config.targets)}",
        "params": trainer.spec.num_params(),
        "trained_params": sum(int(np.prod(x.shape)) for i, x in enumerate(leaves) if mask is None or mask[i]),
        "param_bytes": _bytes(state.params), "optimizer_bytes": _bytes(state.opt_state),
    }
    result["train_state_bytes"] = result["param_bytes"] + result["optimizer_bytes"]
    return result


def speed(name: str, config: lora.LoraConfig | None, args) -> float:
    """Median tokens/s of `Trainer.step` (see the module docstring)."""
    trainer = make_trainer(name, config, args.speed_bindings)
    state = trainer.init(seed=0)
    vocab_size = trainer.spec.abstract_state.to_pure_dict()["token_embedder"]["embedding"].shape[0]
    tokens = np.random.default_rng(0).integers(3, vocab_size, (args.batch, args.length)).astype(np.int32)
    batch = trainer.to_global({
        "decoder_input_tokens": np.pad(tokens, ((0, 0), (1, 0)))[:, :-1], "decoder_target_tokens": tokens,
        "decoder_loss_weights": np.ones_like(tokens), "decoder_causal_attention": np.zeros_like(tokens),
    })
    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        state, stats = jax.block_until_ready(trainer.step(state, batch))
        if i >= args.warmup:
            times.append(time.perf_counter() - start)
    return args.batch * args.length / float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["llama3_2_1b", "decoder_tiny"])
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--alpha", type=float, default=16.0)
    parser.add_argument("--targets", nargs="+", default=["q", "k", "v", "o"])
    parser.add_argument("--base_dtype", default=None, help="e.g. bfloat16: the frozen base's storage dtype")
    parser.add_argument("--speed_model", default="decoder_tiny", help="'' to skip the tokens/s measurement")
    parser.add_argument("--speed_bindings", nargs="*", default=["VOCAB_SIZE = 384"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--json", type=pathlib.Path)
    args = parser.parse_args()
    config = lora.LoraConfig(rank=args.rank, alpha=args.alpha, targets=tuple(args.targets),
                             base_dtype=args.base_dtype)
    results = []
    for name in args.models:
        for method in (None, config):
            r = memory(name, method)
            results.append(r)
            print(f"{r['model']:>14} {r['method']:<22} params {r['params']:>13,} trained {r['trained_params']:>13,} "
                  f"params {r['param_bytes'] / 2**20:9.1f} MiB  adam {r['optimizer_bytes'] / 2**20:9.1f} MiB  "
                  f"train state {r['train_state_bytes'] / 2**20:9.1f} MiB")
    if args.speed_model:
        for method in (None, config):
            tokens_per_s = speed(args.speed_model, method, args)
            label = "full" if method is None else "lora"
            results.append({"model": args.speed_model, "method": label, "tokens_per_s": tokens_per_s})
            print(f"{args.speed_model} {label}: {tokens_per_s:,.0f} tokens/s (batch {args.batch} x {args.length})")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
