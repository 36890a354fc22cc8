"""How much of the train state (parameters + optimizer state) each device holds under FSDP.

  python scripts/bench/fsdp_memory.py                                  # t5_small, t5_base, llama3_2_1b on 8 devices
  python scripts/bench/fsdp_memory.py --models t5_xxl --allocate_up_to 0 --json /tmp/fsdp.json

Each model (a `gin/models/*.gin` name) gets the trainer's state shardings on an `fsdp=N` mesh of N simulated
CPU devices (`--devices`), for AdamW and Adafactor (default options: matrices with both dims >= 128 get
factored second moments). The share per device is computed from the shardings (each leaf's shard shape;
no memory is allocated, so the largest models fit); for models up to `--allocate_up_to` parameters the
state is also created for real and the bytes of the shards on each device (`state.bytes_per_device`) are
checked against it. The ratio is the largest device's bytes over total/N: 1.0 is a perfect split.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import sys

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--models", nargs="+", default=["t5_small", "t5_base", "llama3_2_1b"])
parser.add_argument("--devices", type=int, default=8, help="simulated CPU devices, all on the fsdp axis")
parser.add_argument("--optimizers", nargs="+", default=["adamw", "adafactor"], choices=["adamw", "adafactor"])
parser.add_argument("--allocate_up_to", type=float, default=300e6, help="also create states up to this many params")
parser.add_argument("--json", type=pathlib.Path, help="write the results here")
ARGS = parser.parse_args()

# The device count must be fixed before JAX starts.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={ARGS.devices}"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from it_jax import launch  # noqa: E402
from it_jax import sharding as sharding_lib  # noqa: E402
from it_jax.models import registry  # noqa: E402
from it_jax.train import optimizers  # noqa: E402
from it_jax.train.state import TrainState, bytes_per_device  # noqa: E402
from it_jax.train.trainer import Trainer  # noqa: E402


def device_bytes(abstract: TrainState) -> tuple[int, int]:
    """(bytes on each device, total bytes) of an abstract state whose leaves carry shardings."""
    per_device = total = 0
    for leaf in jax.tree.leaves(abstract):
        itemsize = np.dtype(leaf.dtype).itemsize
        per_device += int(np.prod(leaf.sharding.shard_shape(leaf.shape))) * itemsize
        total += int(np.prod(leaf.shape)) * itemsize
    return per_device, total


def measure(name: str, optimizer_name: str, mesh: jax.sharding.Mesh) -> dict[str, object]:
    config = launch.gin_model_config(name)
    schedule = optimizers.make_schedule(base_learning_rate=1e-3, warmup_steps=0, decay="constant")
    optimizer = optimizers.make_optimizer(schedule, name=optimizer_name)
    trainer = Trainer(spec=registry.model_spec(config), optimizer=optimizer, schedule=schedule, mesh=mesh)
    abstract = trainer.abstract_state()
    per_device, total = device_bytes(abstract)
    params_per_device, params_total = device_bytes(abstract.params)
    result = {
        "model": name,
        "optimizer": optimizer_name,
        "num_params": trainer.spec.num_params(),
        "total_bytes": total,
        "per_device_bytes": per_device,
        "ratio_to_even_split": per_device / (total / mesh.size),
        "params_ratio_to_even_split": params_per_device / (params_total / mesh.size),
        "allocated_max_device_bytes": None,
    }
    if trainer.spec.num_params() <= ARGS.allocate_up_to:
        held = bytes_per_device(trainer.init(seed=0))
        result["allocated_max_device_bytes"] = max(held.values())
        if max(held.values()) != per_device:
            raise AssertionError(f"{name}: allocated {max(held.values())} bytes on a device, computed {per_device}")
    return result


def main() -> None:
    mesh = sharding_lib.create_mesh(fsdp=ARGS.devices)
    results = [measure(name, opt, mesh) for name in ARGS.models for opt in ARGS.optimizers]
    print(f"\nfsdp={ARGS.devices} on {jax.device_count()} {jax.devices()[0].platform} devices\n")
    print("| model | params | optimizer | state (GiB) | per device (GiB) | per device / (total/N) | params only | allocated |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        allocated = "checked" if r["allocated_max_device_bytes"] is not None else "-"
        print(
            f"| {r['model']} | {r['num_params']:,} | {r['optimizer']} | {r['total_bytes'] / 2**30:.3f} "
            f"| {r['per_device_bytes'] / 2**30:.4f} | {r['ratio_to_even_split']:.4f} "
            f"| {r['params_ratio_to_even_split']:.4f} | {allocated} |"
        )
    if ARGS.json:
        ARGS.json.write_text(
            json.dumps({"machine": platform.platform(), "devices": ARGS.devices, "results": results}, indent=2)
        )


if __name__ == "__main__":
    main()
