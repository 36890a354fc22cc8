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
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

STARTED = time.time()  # when this entry point started (its first import): phase lines count from here
# Python warnings raised from these modules are silenced unless --verbose.
QUIET_WARNING_MODULES = r"(tensorflow|tensorflow_datasets|seqio|tf_keras|keras)(\.|$)"
# What TensorFlow's C++ libraries write while they load, before logging is set up: INFO and WARNING lines
# ("I0000 00:00:...", "W0000 ..."), the line announcing them, and the CPU-instructions notice's second line.
_TF_START_UP_NOISE = re.compile(
    r"[IW]\d{4} |WARNING: All log messages before absl::InitializeLog\(\)|To enable the following instructions"
)
_verbose = False  # set by `set_verbosity`
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

    Before parsing, SIGTERM is set to exit 0 outside the train loop. After it, the logs are set (quiet unless
    --verbose) and the compilation cache is configured. With `multi_process` and the flags or environment
    naming a multi-process run, this process supervises a copy of itself and exits with it: the call returns
    only in the copy (or in a single process). --print_config is the caller's to honour (`print_config`).
    """
    from it_jax.train import preemption

    preemption.stop_outside_training()
    parser = argparse.ArgumentParser(description=description)
    default = f"{default_gin_file}, under gin/" if default_gin_file else "none: required"
    parser.add_argument(
        "--gin_file",
        action="append",
        default=[],
        help="gin config file, as given or else under the repository's gin/; repeatable, later files override "
        f"earlier ones (default: {default})",
    )
    parser.add_argument(
        "--gin_bindings",
        action="append",
        default=[],
        help="gin binding applied after the files, e.g. 'train_run.num_steps = 10'; repeatable",
    )
    parser.add_argument(
        "--model_dir",
        help="checkpoints, metrics and eval reports go here (relative to the working directory); "
        "binds MODEL_DIR (default: the gin file's MODEL_DIR)",
    )
    parser.add_argument(
        "--data_dir",
        help="local JSONL mirrors of TFDS datasets instead of TFDS downloads (relative to the working "
        "directory); binds run_config.data_dir (default: the gin file's, else TFDS)",
    )
    add_task_module_flag(parser, default="the gin file's run_config.task_modules")
    parser.add_argument(
        "--print_config", action="store_true", help="print every gin binding after parsing, then exit"
    )
    add_compilation_cache_flag(parser)
    add_verbose_flag(parser)
    if multi_process:
        add_multi_process_flags(parser)
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args()
    set_verbosity(args.verbose)
    if not args.gin_file:
        if default_gin_file is None:
            parser.error("--gin_file is required")
        args.gin_file = [default_gin_file]
    if args.model_dir:
        args.gin_bindings.append(f"MODEL_DIR = {args.model_dir!r}")
    if args.data_dir:
        args.gin_bindings.append(f"run_config.data_dir = {args.data_dir!r}")
    if args.task_module:
        args.gin_bindings.append(f"run_config.extra_task_modules = {args.task_module!r}")
    if args.print_config:
        return args
    from it_jax.train import metrics

    metrics.mark_process_start(STARTED)
    configure_compilation_cache(args)
    if multi_process:
        _supervise_if_multi_process(parser, args)
    return args


def add_decode_flags(parser: argparse.ArgumentParser) -> None:
    """--decode and the options of each method (`decode_options` turns them into `decoding.generate`'s)."""
    parser.add_argument("--decode", choices=("greedy", "sample", "beam"), default="greedy", help="default: %(default)s")
    parser.add_argument("--beam_size", type=int, default=4, help="default: %(default)s")
    parser.add_argument("--length_penalty", type=float, default=0.6, help="beam search alpha (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=1.0, help="default: %(default)s")
    parser.add_argument("--top_k", type=int, default=0, help="0: no top-k filter (default: %(default)s)")
    parser.add_argument("--top_p", type=float, default=1.0, help="1.0: no nucleus filter (default: %(default)s)")


def decode_options(args: argparse.Namespace) -> dict[str, Any]:
    """`decoding.generate` options from the flags of `add_decode_flags`."""
    options: dict[str, Any] = {"method": args.decode}
    if args.decode == "beam":
        options.update(beam_size=args.beam_size, length_penalty=args.length_penalty)
    elif args.decode == "sample":
        options.update(temperature=args.temperature, top_k=args.top_k, top_p=args.top_p)
    return options


def add_verbose_flag(parser: argparse.ArgumentParser) -> None:
    """--verbose: keep TensorFlow's, absl's and seqio's logs and warnings (see `set_verbosity`)."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's C++ logs, absl and seqio log lines and library warnings (default: errors only)",
    )


def set_verbosity(verbose: bool) -> None:
    """Unless `verbose`: TensorFlow's C++ logs (if TensorFlow is not imported yet), absl's (seqio's) log lines
    below ERROR and Python warnings raised from TensorFlow, TFDS and seqio are silenced. Errors still show."""
    global _verbose
    _verbose = verbose
    if verbose:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # read once, when TensorFlow is imported
    for name in ("absl", "tensorflow"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=QUIET_WARNING_MODULES)


def add_compilation_cache_flag(parser: argparse.ArgumentParser) -> None:
    """--compilation_cache_dir (see `it_jax.compilation_cache`)."""
    parser.add_argument(
        "--compilation_cache_dir",
        help="JAX's persistent compilation cache (reruns of the same shapes skip compiling), or 'none' to "
        "turn it off (default: $XDG_CACHE_HOME/it_jax/jax_cache, else ~/.cache/it_jax/jax_cache)",
    )


def configure_compilation_cache(args: argparse.Namespace) -> None:
    """Turns JAX's persistent compilation cache on where --compilation_cache_dir says (or off)."""
    from it_jax import compilation_cache

    compilation_cache.configure(args.compilation_cache_dir)


def print_config(args: argparse.Namespace, bindings: Sequence[str] = ()) -> None:
    """With --print_config: parses the gin files and bindings (and `bindings`), prints every binding, exits 0.
    Nothing is built: no data is read and nothing compiles."""
    if not args.print_config:
        return
    import gin
    from it_jax import launch

    launch.parse_config(args.gin_file, [*args.gin_bindings, *bindings])
    print(gin.config_str(), end="", flush=True)
    raise SystemExit(0)


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


def add_task_module_flag(parser: argparse.ArgumentParser, *, default: str) -> None:
    """--task_module (repeatable): the same meaning in every script (see `it_jax.data.context`)."""
    parser.add_argument(
        "--task_module",
        action="append",
        default=[],
        help="a module registering tasks: a dotted name on the Python path or a path to a .py file, whose "
        f"register(context) is called; repeatable, loaded after the defaults (default: {default})",
    )


def load_task_modules(modules: Sequence[str], *, data_dir: str | None = None, vocabulary: Any = None) -> None:
    """For scripts that read tasks outside a gin run: TensorFlow kept off accelerators, then each task module
    registered with the data directory (local TFDS mirrors) and `vocabulary` (default: bytes)."""
    quiet_tensorflow()
    from it_jax.data import context

    settings = {"vocabulary": vocabulary} if vocabulary is not None else {}
    data_dir = os.path.abspath(data_dir) if data_dir else None
    context.load_task_modules(modules, context.TaskContext(data_dir=data_dir, **settings))


def quiet_tensorflow() -> None:
    """TensorFlow serves the input pipeline only: keep it off accelerators, and (unless --verbose) its
    start-up lines out of the logs (see `_import_tensorflow`)."""
    tf = _import_tensorflow()
    tf.config.set_visible_devices([], "GPU")


def _import_tensorflow() -> Any:
    """Imports TensorFlow. Unless --verbose (or imported already): what it writes to the process's stderr
    meanwhile is held back, and only the lines that are not C++ INFO or WARNING logs are written after it.
    (Its libraries log before absl's logging is set up, where TF_CPP_MIN_LOG_LEVEL does not reach.)"""
    if _verbose or "tensorflow" in sys.modules:
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode("utf-8", errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not _TF_START_UP_NOISE.match(line)))
            sys.stderr.flush()
    return tensorflow
