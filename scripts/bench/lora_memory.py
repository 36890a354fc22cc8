"""Train-state memory (parameters + AdamW state) and CPU tokens/s of full fine-tuning vs LoRA.

  python scripts/bench/lora_memory.py                          # llama3_2_1b and decoder_tiny, rank 8 on q/k/v/o
  python scripts/bench/lora_memory.py --models t5_small --rank 16 --targets q k v o mlp --json /tmp/lora.json

Memory is computed abstractly (`jax.eval_shape`, nothing allocated): the parameters of the model as built
(with adapters for LoRA, the frozen base in `--base_dtype` if given) plus `optax.adamw`'s state for the
trained leaves only (all of them for full fine-tuning, the `nnx.LoRAParam` adapters for LoRA).

Tokens/s (`--speed_model`, default decoder_tiny with the byte vocabulary): a minimal jitted step of this
script (next-token cross-entropy, AdamW on the trained leaves, gradients only for them), not the Trainer;
`--warmup` untimed steps then `--steps` timed ones (median), batch `--batch` x `--length` tokens, float32.
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
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from it_jax import launch  # noqa: E402
from it_jax.convert import tree  # noqa: E402
from it_jax.models import lora, registry  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402


def _bytes(leaves) -> int:
    return sum(int(np.prod(x.shape)) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(leaves))


def _split(params, use_lora: bool):
    """(trained, frozen) flat dicts of `params`: the adapters or everything."""
    flat = tree.flatten(params)
    trained = {p: v for p, v in flat.items() if not use_lora or p[-1] in lora.ADAPTER_NAMES}
    return trained, {p: v for p, v in flat.items() if p not in trained}


def memory(name: str, config: lora.LoraConfig | None, bindings=()) -> dict[str, object]:
    """Bytes of parameters and AdamW state for `gin/models/{name}.gin`, full (config None) or with LoRA."""
    model_config = launch.gin_model_config(name, bindings)
    build = lambda rngs: registry.build(model_config, rngs)  # noqa: E731
    spec = ModelSpec.create(build if config is None else lora.with_lora(build, config))
    params = spec.abstract_state.to_pure_dict()
    trained, _ = _split(params, config is not None)
    opt_state = jax.eval_shape(optax.adamw(1e-3).init, {tree.path_name(p): v for p, v in trained.items()})
    result = {
        "model": name, "method": "full" if config is None else f"lora r{config.rank} {'/'.join(config.targets)}",
        "params": spec.num_params(), "trained_params": sum(int(np.prod(v.shape)) for v in trained.values()),
        "param_bytes": _bytes(params), "optimizer_bytes": _bytes(opt_state),
    }
    result["train_state_bytes"] = result["param_bytes"] + result["optimizer_bytes"]
    return result


def speed(name: str, config: lora.LoraConfig | None, args) -> float:
    """Median tokens/s of this script's minimal train step (see the module docstring)."""
    model_config = launch.gin_model_config(name, args.speed_bindings)
    build = lambda rngs: registry.build(model_config, rngs)  # noqa: E731
    spec = ModelSpec.create(build if config is None else lora.with_lora(build, config))
    trained, frozen = _split(spec.init_params(0), config is not None)
    optimizer = optax.adamw(1e-3)
    opt_state = optimizer.init(trained)
    rng = np.random.default_rng(0)
    tokens = jnp.asarray(rng.integers(3, model_config.vocab_size, (args.batch, args.length)), jnp.int32)
    batch = {"decoder_input_tokens": jnp.pad(tokens, ((0, 0), (1, 0)))[:, :-1], "decoder_target_tokens": tokens}

    def loss_fn(trained, frozen):
        logits = spec.bind(tree.unflatten({**frozen, **trained})).logits_from_features(batch)
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch["decoder_target_tokens"]).mean()

    @jax.jit
    def step(trained, opt_state, frozen):
        loss, grads = jax.value_and_grad(loss_fn)(trained, frozen)
        updates, opt_state = optimizer.update(grads, opt_state, trained)
        return optax.apply_updates(trained, updates), opt_state, loss

    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        trained, opt_state, loss = jax.block_until_ready(step(trained, opt_state, frozen))
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
