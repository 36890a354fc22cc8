"""Launch files for a run on several hosts: a SLURM batch script, a GKE JobSet, an xpk command, or local processes.

Every host runs the same `scripts/train.py` command with the given gin files and bindings; flags after
`--` are added to it. Prints the file, or writes it to --out:

  python scripts/launch.py --target slurm --hosts 4 --chips_per_host 8 --gin_file runs/flan2021_heldout.gin \
      --model_dir /shared/runs/flan --out train.sbatch && sbatch train.sbatch
  python scripts/launch.py --target gke --tpu v5p --topology 2x2x4 --image IMAGE \
      --gin_file runs/flan2021_heldout.gin --model_dir gs://BUCKET/flan --out jobset.yaml
  kubectl apply -f jobset.yaml
  python scripts/launch.py --target local --hosts 2 --model_dir /tmp/two --run -- --heartbeat_timeout=10

With --target local --run it starts the processes itself (coordinator on 127.0.0.1), waits for them and
exits with the worst exit status.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import socket
import subprocess
import sys

from it_jax import errors
from it_jax.cluster import launch_files as cluster



def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--target", required=True, choices=cluster.TARGETS, help="the scheduler (or local processes)")
    add(
        "--hosts",
        type=int,
        help="machines, one training process each (default: gke, xpk: the topology's; local: 2; slurm: required)",
    )
    add("--chips_per_host", type=int, help=f"GPUs or TPU chips per host (default: {cluster.DEFAULT_CHIPS_PER_HOST})")
    add("--gin_file", action="append", default=[], help="the training command's --gin_file; repeatable")
    add("--gin_bindings", action="append", default=[], help="the training command's --gin_bindings; repeatable")
    add("--model_dir", required=True, help="the run's directory, shared by every host")
    add("--image", help="container image holding this repository (gke, xpk; slurm with pyxis)")
    add("--job_name", default="it-jax", help="SLURM job, JobSet or xpk workload name (default: %(default)s)")
    add("--port", type=int, help="coordinator port (default: JAX's choice; local: a free port)")
    add("--tpu", default="v5p", choices=sorted(cluster.TPU_GENERATIONS), help="TPU generation (default: %(default)s)")
    add("--topology", help="TPU slice topology, e.g. 2x2x2 (v4, v5p) or 4x4 (v5e, v6e)")
    add("--cluster", help="the GKE cluster for xpk")
    add("--partition", help="the SLURM partition")
    add("--workdir", help="the repository's directory on the hosts (local default: this checkout)")
    add("--max_restarts", type=int, default=0, help="JobSet restarts of a failed slice (default: %(default)s)")
    add("--python", help="interpreter of the training command (default: python; local: this one)")
    add("--out", help="write the file here (executable, for the shell scripts) instead of printing it")
    add("--run", action="store_true", help="with --target local: start the processes and wait for them")
    return parser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _hosts(args: argparse.Namespace) -> int:
    """--hosts, else a TPU slice's hosts (its chips over the chips per host), else 2 local processes."""
    if args.hosts is not None:
        return args.hosts
    if args.target in ("gke", "xpk") and args.topology:
        chips = args.chips_per_host or cluster.DEFAULT_CHIPS_PER_HOST[args.target]
        return max(1, cluster.topology_chips(args.topology, args.tpu) // chips)
    if args.target == "local":
        return 2
    raise errors.ConfigError(f"--hosts is required for --target {args.target}")


def _spec(args: argparse.Namespace, extra_flags: list[str]) -> cluster.LaunchSpec:
    local = args.target == "local"
    return cluster.LaunchSpec(
        model_dir=args.model_dir,
        hosts=_hosts(args),
        chips_per_host=args.chips_per_host,
        gin_files=tuple(args.gin_file),
        gin_bindings=tuple(args.gin_bindings),
        extra_flags=tuple(extra_flags),
        image=args.image,
        job_name=args.job_name,
        port=args.port or (_free_port() if local else None),
        tpu=args.tpu,
        topology=args.topology,
        cluster=args.cluster,
        partition=args.partition,
        workdir=args.workdir or (os.getcwd() if local else None),
        max_restarts=args.max_restarts,
        python=args.python or (sys.executable if local else "python"),
    )


def exit_status(returncode: int) -> int:
    """A child's exit status as a shell reports it (killed by signal N: 128 + N)."""
    return 128 - returncode if returncode < 0 else returncode


def run_local(spec: cluster.LaunchSpec) -> int:
    """Starts the local processes of `spec`, waits for all of them and returns the worst exit status.

    SIGTERM is passed on to the processes (each saves its step and exits 0); Ctrl-C reaches them through
    the terminal, and this process keeps waiting for them to stop.
    """
    processes = [subprocess.Popen(argv, cwd=spec.workdir) for argv in cluster.local_commands(spec)]

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    statuses = []
    for process in processes:
        while True:
            try:
                statuses.append(exit_status(process.wait()))
                break
            except KeyboardInterrupt:
                continue
    return max(statuses)


def main(argv: list[str] | None = None) -> int:
    """Renders (or, with --run, runs) the launch that `argv` describes; flags after "--" go to train.py."""
    argv = sys.argv[1:] if argv is None else argv
    split = argv.index("--") if "--" in argv else len(argv)
    parser = _parser()
    args = parser.parse_args(argv[:split])
    if args.run and args.target != "local":
        parser.error("--run starts local processes only: use --target local")
    try:
        spec = _spec(args, argv[split + 1 :])
        text = cluster.render(args.target, spec)
    except errors.ConfigError as error:
        parser.error(error.message)
    if args.out is not None:
        out = pathlib.Path(args.out)
        out.write_text(text)
        if text.startswith("#!"):
            out.chmod(out.stat().st_mode | 0o111)
        print(f"wrote {out}", file=sys.stderr)
    elif not args.run:
        sys.stdout.write(text)
    return run_local(spec) if args.run else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
