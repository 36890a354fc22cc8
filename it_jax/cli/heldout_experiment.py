"""The held-out-cluster experiment in one command: per cluster, train on the others, evaluate it zero-shot.

For every cluster of a collection (or those given with --clusters), a model is trained on
`<collection>_heldout_<cluster>` into `<output_dir>/<cluster>/`, evaluated on the cluster's tasks
(`<cluster>/eval/`), and the untuned starting model is evaluated on the same tasks (`<cluster>/eval_untuned/`).
`<output_dir>/summary.{md,json,png}` compare the two per cluster. Everything else comes from gin, as in
scripts/train.py (default: gin/runs/heldout_experiment.gin, a tiny T5 on the synthetic collection).
Rerunning the same command skips finished clusters and resumes an interrupted one.

  python scripts/heldout_experiment.py --clusters=entailment,comparison --train_steps=300
  python scripts/heldout_experiment.py --gin_file=runs/flan2021_heldout.gin --collection=flan2021 --clusters=nli
"""

from __future__ import annotations

import argparse

from it_jax.cli import common


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--collection", default="synthetic", help="task collection (default: %(default)s)")
    parser.add_argument("--clusters", help="comma-separated clusters to hold out (default: all of the collection's)")
    parser.add_argument("--train_steps", type=int, help="training steps per cluster (train_run.num_steps)")
    parser.add_argument("--max_examples", type=int, help="evaluation examples per template (eval_run.max_examples)")
    parser.add_argument(
        "--output_dir",
        help="where the runs and the summary go, relative to the working directory (default: runs/heldout_<collection>)",
    )


def overrides(args: argparse.Namespace) -> list[str]:
    """gin bindings for --train_steps and --max_examples."""
    bindings = []
    if args.train_steps is not None:
        bindings += [f"train_run.num_steps = {args.train_steps}", f"make_schedule.total_steps = {args.train_steps}"]
    if args.max_examples is not None:
        bindings.append(f"eval_run.max_examples = {args.max_examples}")
    return bindings


def run(args: argparse.Namespace) -> None:
    """The experiment `args` describe (gin parsed here, after the entry point quieted TensorFlow)."""
    from it_jax import launch
    from it_jax.evaluation import experiment

    if args.model_dir:
        raise SystemExit("--model_dir does not apply: each cluster trains in <output_dir>/<cluster>/ (--output_dir)")
    launch.parse_config(args.gin_file, [*args.gin_bindings, *overrides(args)])
    clusters = [c.strip() for c in args.clusters.split(",") if c.strip()] if args.clusters else None
    output_dir = args.output_dir or f"runs/heldout_{args.collection}"
    summary = experiment.run_experiment(collection=args.collection, output_dir=output_dir, clusters=clusters)
    print(f"\n{experiment.summary_table(summary)}\n\nSummary: {output_dir}/{experiment.SUMMARY_MD}", flush=True)


def main() -> None:
    """The `it-jax-heldout` command."""
    args = common.parse_args(
        __doc__.splitlines()[0],
        default_gin_file="runs/heldout_experiment.gin",
        multi_process=True,
        add_arguments=_add_arguments,
    )
    common.quiet_tensorflow()
    common.print_config(args, overrides(args))
    common.run_resumable(lambda: run(args), args)


if __name__ == "__main__":
    main()
