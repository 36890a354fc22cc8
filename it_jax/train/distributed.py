"""Multi-host start-up: `jax.distributed.initialize` from flags or the environment, a no-op for one process.

Each process of a multi-host run calls `initialize` before anything touches JAX. Every process then
reads its own shard of the input (`jax.process_index()` of `jax.process_count()`), and the trainer
assembles the shards into global arrays.

Three timeouts bound how long a process waits on the others (JAX's defaults are minutes):
  initialization_timeout: how long process 0's coordinator waits for the others to register (then none
    starts, and every registered process learns which are missing); a process that cannot reach the
    coordinator gives up a few seconds after this long;
  heartbeat_timeout: a process silent for this long is declared dead, which stops every other one;
  shutdown_timeout: at exit, how long a finished process waits for the others to finish.
What a process's death then looks like to the user is `it_jax.train.peers`' business.

Resolving the settings (`settings`) does not import JAX, so a supervisor process can do it cheaply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

from it_jax import errors

# Environment variables read when an argument is not given (the first one set wins).
ENV_VARS = {
    "coordinator_address": ("IT_JAX_COORDINATOR_ADDRESS", "JAX_COORDINATOR_ADDRESS"),
    "num_processes": ("IT_JAX_NUM_PROCESSES", "JAX_NUM_PROCESSES"),
    "process_id": ("IT_JAX_PROCESS_ID", "JAX_PROCESS_ID"),
    "initialization_timeout": ("IT_JAX_INITIALIZATION_TIMEOUT",),
    "heartbeat_timeout": ("IT_JAX_HEARTBEAT_TIMEOUT",),
    "shutdown_timeout": ("IT_JAX_SHUTDOWN_TIMEOUT",),
}
# Seconds. A dead peer stops the survivors within about HEARTBEAT_TIMEOUT; a run whose processes do not
# all arrive fails after INITIALIZATION_TIMEOUT. The shutdown wait keeps JAX's default: processes that
# finish at different times (one writing the evaluation report) must not fail a finished run.
DEFAULT_TIMEOUTS = {"initialization_timeout": 60, "heartbeat_timeout": 30, "shutdown_timeout": 300}
AUTO = "auto"
# jax.distributed.initialize's errors when "auto" detected no cluster to take a setting from.
_UNDETECTED = re.compile(r"(should|must) be defined")


@dataclasses.dataclass(frozen=True)
class Settings:
    """How this process joins a multi-process run (num_processes and process_id are None with "auto")."""

    coordinator_address: str
    num_processes: int | None
    process_id: int | None
    initialization_timeout: int
    heartbeat_timeout: int
    shutdown_timeout: int


def _from_env(name: str) -> str | None:
    for var in ENV_VARS[name]:
        if os.environ.get(var):
            return os.environ[var]
    return None


def _seconds(name: str, value: int | str | None) -> int:
    value = value if value is not None else _from_env(name)
    if value is None:
        return DEFAULT_TIMEOUTS[name]
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise errors.ConfigError(f"{name} must be a whole number of seconds ≥ 1, got {value!r} ({ENV_VARS[name][0]})")
    return seconds


def settings(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    initialization_timeout: int | None = None,
    heartbeat_timeout: int | None = None,
    shutdown_timeout: int | None = None,
) -> Settings | None:
    """The multi-process settings from the arguments, else the environment (`ENV_VARS`), else the default
    timeouts; None when neither names a coordinator, a process count or a process id (a single process).

    Args:
      coordinator_address: "host:port" of process 0's coordinator, or "auto" to let JAX detect the
        cluster (Cloud TPU, Slurm, Open MPI). Defaults to $IT_JAX_COORDINATOR_ADDRESS or
        $JAX_COORDINATOR_ADDRESS; with none of the three settings given, nothing is done.
      num_processes: the number of processes (default: $IT_JAX_NUM_PROCESSES or $JAX_NUM_PROCESSES).
      process_id: this process's index, 0 to num_processes - 1 (default: $IT_JAX_PROCESS_ID or
        $JAX_PROCESS_ID).
      initialization_timeout, heartbeat_timeout, shutdown_timeout: seconds (see the module docstring;
        defaults: $IT_JAX_INITIALIZATION_TIMEOUT, ... else `DEFAULT_TIMEOUTS`).

    Raises:
      errors.ConfigError: some but not all of coordinator_address, num_processes and process_id are set, or
        a timeout is not a positive whole number of seconds.
    """
    coordinator_address = coordinator_address or _from_env("coordinator_address")
    num_processes = num_processes if num_processes is not None else _from_env("num_processes")
    process_id = process_id if process_id is not None else _from_env("process_id")
    if coordinator_address is None and num_processes is None and process_id is None:
        return None
    if coordinator_address != AUTO and None in (coordinator_address, num_processes, process_id):
        raise errors.ConfigError(
            "a multi-process run needs coordinator_address, num_processes and process_id (or 'auto'); got "
            f"{coordinator_address=}, {num_processes=}, {process_id=}"
        )
    return Settings(
        coordinator_address=coordinator_address,
        num_processes=None if num_processes is None else int(num_processes),
        process_id=None if process_id is None else int(process_id),
        initialization_timeout=_seconds("initialization_timeout", initialization_timeout),
        heartbeat_timeout=_seconds("heartbeat_timeout", heartbeat_timeout),
        shutdown_timeout=_seconds("shutdown_timeout", shutdown_timeout),
    )


def initialize(**flags: Any) -> bool:
    """Joins this process to a multi-process JAX run; returns whether it did (False: single process).

    `flags` are `settings`' keyword arguments (unset ones come from the environment or the defaults). With
    coordinator_address "auto", `jax.distributed.initialize` gets only the timeouts and takes the coordinator,
    the process count and this process's id from the cluster's environment (SLURM, GKE TPU pods, Cloud TPU
    VMs, Open MPI; see `it_jax.cluster`).

    Raises:
      errors.ConfigError: a setting is invalid (see `settings`), or "auto" found no cluster environment.
    """
    run = settings(**flags)
    if run is None:
        return False
    import jax

    explicit = {}
    if run.coordinator_address != AUTO:
        explicit = {
            "coordinator_address": run.coordinator_address,
            "num_processes": run.num_processes,
            "process_id": run.process_id,
        }
    try:
        with _registration_deadline(run.initialization_timeout):
            _off_the_main_thread(
                functools.partial(
                    jax.distributed.initialize,
                    **explicit,
                    initialization_timeout=run.initialization_timeout,
                    heartbeat_timeout_seconds=run.heartbeat_timeout,
                    shutdown_timeout_seconds=run.shutdown_timeout,
                )
            )
    except ValueError as error:
        if run.coordinator_address == AUTO and _UNDETECTED.search(str(error)):
            raise errors.ConfigError(
                f"coordinator_address 'auto' found no cluster that jax.distributed can read ({error}): run under "
                "SLURM's srun, in a GKE TPU pod (TPU_WORKER_ID, TPU_WORKER_HOSTNAMES), on a Cloud TPU VM or "
                "under Open MPI, or give --coordinator_address=HOST:PORT --num_processes --process_id"
            ) from error
        raise
    return True


def _off_the_main_thread(call: Callable[[], None]) -> None:
    """Runs `call` in another thread and waits for it, so that the main thread runs Python signal handlers
    meanwhile: waiting for the other processes to register can take the whole initialization timeout, and a
    SIGTERM then should stop the process at once (see `preemption.stop_outside_training`)."""
    failures: list[BaseException] = []

    def run() -> None:
        try:
            call()
        except BaseException as error:  # re-raised in the calling thread
            failures.append(error)

    thread = threading.Thread(target=run, name="jax.distributed.initialize", daemon=True)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


class _ServiceWithRegistrationDeadline:
    """JAX's runtime module, except that the coordination service it creates gives up on processes that
    have not registered after `seconds` (and says how many did)."""

    def __init__(self, runtime: Any, seconds: int):
        self._runtime = runtime
        self._seconds = seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._runtime, name)

    def get_distributed_runtime_service(self, *args: Any, **kwargs: Any) -> Any:
        return self._runtime.get_distributed_runtime_service(*args, cluster_register_timeout=self._seconds, **kwargs)


@contextlib.contextmanager
def _registration_deadline(seconds: int) -> Iterator[None]:
    """While `jax.distributed.initialize` runs, process 0's coordination service waits `seconds` for the
    others to register.

    `jax.distributed.initialize` passes no registration deadline to the service it starts (whose own
    default is an hour), so each process only sees its registration call time out, and nobody learns which
    processes never came. With the deadline, the service fails registration on every process with "# of
    tasks that reached the barrier: 1/2 ... timed out task names: 1", which `peers` turns into its message.
    Without the private hook (another JAX version), registration still fails, with a vaguer message.
    """
    from jax._src import distributed as jax_distributed

    runtime = getattr(jax_distributed, "_jax", None)
    if runtime is None or not hasattr(runtime, "get_distributed_runtime_service"):
        yield
        return
    jax_distributed._jax = _ServiceWithRegistrationDeadline(runtime, seconds)
    try:
        yield
    finally:
        jax_distributed._jax = runtime
