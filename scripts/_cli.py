"""Shared command-line flags of the entry points: --gin_file (repeatable), --gin_bindings, --model_dir, --data_dir.

Multi-process entry points also take --coordinator_address, --num_processes, --process_id and the
timeouts --initialization_timeout, --heartbeat_timeout, --shutdown_timeout.

`parse_args` is a training entry point's first call, and starts with the process's signal handling:
until the train loop runs, SIGTERM exits 0 at once (`preemption.stop_outside_training`). In a
multi-process run it then makes this process the supervisor of a copy of itself, which does the work
(`it_jax.train.peers`): a lost peer is reported in one line instead of a C++ stack trace.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

REPO = pathlib.Path(__file__).resolve().parent.parent
# The multi-process flags (`add_multi_process_flags`): the keyword arguments of `distributed.initialize`.
DISTRIBUTED_FLAGS = (
    "coordinator_address",
    "num_processes",
    "process_id",
    "initialization_timeout",
    "heartbeat_timeout",
    "shutdown_timeout",
)


def parse_args(
    description: str,
    default_gin_file: str | None = None,
    *,
    multi_process: bool = False,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The shared flags (`add_arguments` adds an entry point's own); --model_dir and --data_dir become bindings.

    Before parsing, SIGTERM is set to exit 0 outside the train loop. With `multi_process` and the flags or
    environment naming a multi-process run, this process supervises a copy of itself and exits with it:
    the call returns only in the copy (or in a single process).
    """
    from it_jax.train import preemption

    preemption.stop_outside_training()
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--gin_file", action="append", default=[], help="gin config file; repeatable (default: %(default)s)"
    )
    parser.add_argument("--gin_bindings", action="append", default=[], help="gin binding, e.g. 'train_run.num_steps=10'")
    parser.add_argument("--model_dir", help="checkpoints, metrics and eval reports go here")
    parser.add_argument("--data_dir", help="local JSONL mirrors of TFDS datasets (instead of TFDS downloads)")
    if multi_process:
        add_multi_process_flags(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    if not args.gin_file:
        if default_gin_file is None:
            parser.error("--gin_file is required")
        args.gin_file = [default_gin_file]
    if args.model_dir:
        args.gin_bindings.append(f"MODEL_DIR = '{args.model_dir}'")
    if args.data_dir:
        args.gin_bindings.append(f"run_config.data_dir = '{args.data_dir}'")
    if multi_process:
        _supervise_if_multi_process(parser, args)
    return args


def _supervise_if_multi_process(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """In a multi-process run, unless this is already the supervised copy: supervise one and exit with it."""
    from it_jax import errors
    from it_jax.train import distributed, peers

    try:
        run = distributed.settings(**distributed_flags(args))
    except errors.ConfigError as error:
        parser.error(str(error))
    if run is not None and not peers.supervised():
        raise SystemExit(peers.supervise(run))


def add_multi_process_flags(parser: argparse.ArgumentParser) -> None:
    """--coordinator_address, --num_processes, --process_id and the timeouts (see `it_jax.train.distributed`)."""
    parser.add_argument(
        "--coordinator_address",
        help="host:port of process 0 for a multi-process run, or 'auto' (Cloud TPU, Slurm); "
        "default: $IT_JAX_COORDINATOR_ADDRESS or $JAX_COORDINATOR_ADDRESS, else a single process",
    )
    parser.add_argument("--num_processes", type=int, help="processes in a multi-process run")
    parser.add_argument("--process_id", type=int, help="this process's index in a multi-process run")
    parser.add_argument(
        "--initialization_timeout",
        type=int,
        help="seconds for every process to reach the coordinator (default: $IT_JAX_INITIALIZATION_TIMEOUT or 60)",
    )
    parser.add_argument(
        "--heartbeat_timeout",
        type=int,
        help="seconds of silence after which a process counts as lost, stopping the run "
        "(default: $IT_JAX_HEARTBEAT_TIMEOUT or 30)",
    )
    parser.add_argument(
        "--shutdown_timeout",
        type=int,
        help="seconds a finished process waits for the others at exit (default: $IT_JAX_SHUTDOWN_TIMEOUT or 300)",
    )


def distributed_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The multi-process flags of `args`, as keyword arguments of `distributed.initialize`."""
    return {name: getattr(args, name, None) for name in DISTRIBUTED_FLAGS}


def run_resumable(main: Callable[[], None], args: argparse.Namespace) -> None:
    """Joins the multi-process run `args` names, then runs `main`; a preemption (SIGTERM, after the step is
    saved) exits 0 and Ctrl-C exits 130, each saying that rerunning the command resumes; a `RunError` (a
    bad setting or input, divergence, a failed save) prints its message alone and exits non-zero. An error
    of a collective that lost its peer waits for the coordination service to end the process, so that the
    supervisor reports the lost peer (`peers.await_verdict`)."""
    from it_jax import errors
    from it_jax.train import distributed, peers, preemption

    run = None
    try:
        run = distributed.settings(**distributed_flags(args))
        distributed.initialize(**distributed_flags(args))
        main()
    except preemption.Preempted as stopped:
        print(f"\nPreempted: saved step {stopped.step}. Run the same command again to resume.", flush=True)
        raise SystemExit(0)
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume from the last checkpoint.", flush=True)
        raise SystemExit(130)
    except errors.RunError as error:
        peers.await_verdict(error, run)
        print(f"\nerror: {error.message}", file=sys.stderr, flush=True)
        raise SystemExit(error.exit_code)
    except Exception as error:
        peers.await_verdict(error, run)
        raise


DEFAULT_TASK_MODULES = ("mixtures.synthetic", "mixtures.flan2021", "mixtures.cot")


def load_task_modules(data_dir: str | None, modules: Sequence[str]) -> None:
    """For scripts that read tasks outside a gin run: local TFDS mirrors in `data_dir` (if given), TensorFlow
    kept quiet, then `modules` imported (they register their tasks)."""
    if data_dir:
        os.environ["IT_JAX_DATA_DIR"] = os.path.abspath(data_dir)
    quiet_tensorflow()
    for module in modules:
        importlib.import_module(module)


def quiet_tensorflow() -> None:
    """TensorFlow serves the input pipeline only: keep it off accelerators and out of the logs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")
