"""Shared command-line flags of the entry points: --gin_file (repeatable), --gin_bindings, --model_dir, --data_dir.

Multi-process entry points also take --coordinator_address, --num_processes and --process_id.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pathlib
import sys
from collections.abc import Callable, Sequence

REPO = pathlib.Path(__file__).resolve().parent.parent


def parse_args(
    description: str,
    default_gin_file: str | None = None,
    *,
    multi_process: bool = False,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The shared flags (`add_arguments` adds an entry point's own); --model_dir and --data_dir become bindings."""
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
    return args


def add_multi_process_flags(parser: argparse.ArgumentParser) -> None:
    """--coordinator_address, --num_processes, --process_id (see `it_jax.train.distributed.initialize`)."""
    parser.add_argument(
        "--coordinator_address",
        help="host:port of process 0 for a multi-process run, or 'auto' (Cloud TPU, Slurm); "
        "default: $IT_JAX_COORDINATOR_ADDRESS or $JAX_COORDINATOR_ADDRESS, else a single process",
    )
    parser.add_argument("--num_processes", type=int, help="processes in a multi-process run")
    parser.add_argument("--process_id", type=int, help="this process's index in a multi-process run")


def run_resumable(main: Callable[[], None], args: argparse.Namespace) -> None:
    """Joins the multi-process run `args` names, then runs `main`; a preemption (SIGTERM, after the step is
    saved) exits 0 and Ctrl-C exits 130, each saying that rerunning the command resumes."""
    from it_jax.train import distributed, preemption

    distributed.initialize(
        coordinator_address=args.coordinator_address, num_processes=args.num_processes, process_id=args.process_id
    )
    try:
        main()
    except preemption.Preempted as stopped:
        print(f"\nPreempted: saved step {stopped.step}. Run the same command again to resume.", flush=True)
        raise SystemExit(0)
    except KeyboardInterrupt:
        print("\nInterrupted. Run the same command again to resume from the last checkpoint.", flush=True)
        raise SystemExit(130)


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
