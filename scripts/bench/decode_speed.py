"""Decoding speed with and without the KV cache: generated tokens per second, for both model families.

  python scripts/bench/decode_speed.py --model t5 --gin_model t5_small --batch_size 8 --max_decode_length 64

Each configuration is compiled once (timed separately), then run `--repeats` times; tokens/s counts every
generated position (batch * max_decode_length; EOS is disabled so no example stops early).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from it_jax import launch  # noqa: E402
from it_jax.models import decoding  # noqa: E402


def measure(config, *, batch_size: int, input_length: int, max_decode_length: int, method: str, repeats: int) -> dict:
    spec = launch.model_spec(config)
    params = jax.jit(lambda: spec.init_params(0))()
    inputs = np.random.default_rng(0).integers(2, config.vocab_size, (batch_size, input_length)).astype(np.int32)
    results = {}
    for use_cache in (True, False):
        fn = jax.jit(
            lambda p, x, use_cache=use_cache: decoding.generate(
                spec.bind(p), x, max_decode_length=max_decode_length, method=method, eos_id=-1, use_cache=use_cache
            )
        )
        start = time.perf_counter()
        compiled = fn.lower(params, inputs).compile()
        compile_s = time.perf_counter() - start
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            jax.block_until_ready(compiled(params, inputs))
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        results["cached" if use_cache else "uncached"] = {
            "tokens_per_s": batch_size * max_decode_length / seconds,
            "median_s": seconds,
            "compile_s": compile_s,
        }
    results["speedup"] = results["cached"]["tokens_per_s"] / results["uncached"]["tokens_per_s"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gin_model", action="append", help="gin/models file stem; repeatable")
    parser.add_argument("--vocab_size", type=int, default=32128)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--input_length", type=int, default=64)
    parser.add_argument("--max_decode_length", type=int, default=64)
    parser.add_argument("--method", default="greedy", choices=decoding.METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    report = {"machine": {"platform": platform.platform(), "devices": str(jax.devices()), "jax": jax.__version__}}
    print("| model | cache | tokens/s | median s | compile s |\n|---|---|---|---|---|")
    for name in args.gin_model or ["t5_small", "decoder_tiny"]:
        result = measure(
            launch.gin_model_config(name, [f"VOCAB_SIZE = {args.vocab_size}"]),
            batch_size=args.batch_size,
            input_length=args.input_length,
            max_decode_length=args.max_decode_length,
            method=args.method,
            repeats=args.repeats,
        )
        report[name] = result
        for mode in ("cached", "uncached"):
            r = result[mode]
            print(f"| {name} | {mode} | {r['tokens_per_s']:,.0f} | {r['median_s']:.3f} | {r['compile_s']:.1f} |")
        print(f"| {name} | speedup | {result['speedup']:.2f}x | | |")
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
