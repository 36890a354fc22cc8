"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment, a no-op for one process.

Each process of a multi-host run calls `initialize` before anything touches JAX. Every process then
reads its own shard of the input (`jax.process_index()` of `jax.process_count()`), and the trainer
assembles the shards into global arrays.
"""

from __future__ import annotations

import os

import jax

# Environment variables read when an argument is not given (the first one set wins).
ENV_VARS = {
    "coordinator_address": ("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("IT_JAX_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("IT_JAX_PROCESS_ID", "JAX_PROCESS_ID"),
}
AUTO = "auto"


def _from_env(name: str) -> str | None:
    for var in ENV_VARS[name]:
        if os.environ.get(var):
            return os.environ[var]
    return None


def initialize(
    *, coordinator_address: str | None = None, num_processes: int | None = None, process_id: int | None = None
) -> bool:
    """Joins this process to a multi-process JAX run; returns whether it did (False: single process).

    Args:
      coordinator_address: "host:port" of process 0's coordinator, or "auto" to let JAX detect the
        cluster (Cloud TPU, Slurm, Open MPI). Defaults to $IT_JAX_COORDINATOR_ADDRESS or
        $JAX_COORDINATOR_ADDRESS; with none of the three settings given, nothing is done.
      num_processes: the number of processes (default: $IT_JAX_NUM_PROCESSES or $JAX_NUM_PROCESSES).
      process_id: this process's index, 0 to num_processes - 1 (default: $IT_JAX_PROCESS_ID or
        $JAX_PROCESS_ID).
    """
    coordinator_address = coordinator_address or _from_env("coordinator_address")
    num_processes = num_processes if num_processes is not None else _from_env("num_processes")
    process_id = process_id if process_id is not None else _from_env("process_id")
    if coordinator_address is None and num_processes is None and process_id is None:
        return False
    if coordinator_address == AUTO:
        jax.distributed.initialize()
        return True
    if None in (coordinator_address, num_processes, process_id):
        raise ValueError(
            "a multi-process run needs coordinator_address, num_processes and process_id (or 'auto'); got "
            f"{coordinator_address=}, {num_processes=}, {process_id=}"
        )
    jax.distributed.initialize(
        coordinator_address=coordinator_address, num_processes=int(num_processes), process_id=int(process_id)
    )
    return True
