"""Evaluate any model directory zero- or few-shot, template by template: a training run or a pretrained directory.

  python scripts/eval.py --checkpoint runs/demo --cluster entailment
  python scripts/eval.py --checkpoint /tmp/flan_t5_small --tasks flan2021_rte,flan2021_snli \\
      --variants zs_opt,fs_opt --data_dir ../shared/data/tfds_jsonl --max_examples 200

A run directory records its model, vocabulary, prompt layout and lengths with each checkpoint; a pretrained
directory (scripts/convert_checkpoint.py) its model, vocabulary and layout. Writes results.json, results.md
and predictions/<task>__<variant>__t<template>.jsonl under --output_dir (default: DIR/eval). On several
hosts, run it on each with the multi-process flags of scripts/train.py; each scores its share, process 0
writes.
"""

from __future__ import annotations

import argparse
import pathlib

from it_jax import errors
from it_jax.cli import common
from it_jax.run_dir import RunDirectory


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="run directory or pretrained-model directory")
    parser.add_argument("--step", type=int, help="run directories: the step to evaluate (default: the latest)")
    what = parser.add_argument_group("what to evaluate (one of)")
    what.add_argument("--tasks", help="comma-separated task names")
    what.add_argument("--cluster", help="every registered task of this cluster")
    what.add_argument("--mixture", help="every task of this seqio mixture")
    parser.add_argument("--variants", help="comma-separated from zs_opt,zs_noopt,fs_opt,fs_noopt (default: each task's)")
    parser.add_argument("--split", default="validation", help="default: %(default)s")
    parser.add_argument("--max_examples", type=int, help="first N examples of each template")
    common.add_task_module_flag(
        parser, default=f"a run's own (its run.json), else {', '.join(common.DEFAULT_TASK_MODULES)}"
    )
    parser.add_argument("--data_dir", help="local JSONL mirrors of TFDS datasets (default: a run's own, else TFDS)")
    parser.add_argument("--batch_size", type=int, default=64, help="default: %(default)s")
    parser.add_argument("--inputs_length", type=int, help="default: the run's, else 512")
    parser.add_argument("--targets_length", type=int, help="also the decoding length; default: the run's, else 64")
    parser.add_argument("--length_normalize", action="store_true", help="rank options by mean token log-likelihood")
    parser.add_argument("--exclude_contaminated", help="JSON of scripts/decontaminate.py: leave those examples out")
    common.add_decode_flags(parser)
    parser.add_argument("--vocab", help="pretrained directories: SentencePiece model overriding the stored one")
    parser.add_argument("--output_dir", help="default: CHECKPOINT/eval")
    common.add_multi_process_flags(parser)
    common.add_compilation_cache_flag(parser)
    common.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if sum(bool(x) for x in (args.tasks, args.cluster, args.mixture)) != 1:
        parser.error("give exactly one of --tasks, --cluster, --mixture")
    return args


def load_tasks(args: argparse.Namespace) -> None:
    """Registers the tasks to choose from: a run's task modules with its data directory and vocabulary (from
    its run.json), else the default collections; then each --task_module. --data_dir overrides."""
    from it_jax.run_context import RunContext  # imports TensorFlow: after the flags set the logs

    modules, data_dir, vocabulary = list(common.DEFAULT_TASK_MODULES), args.data_dir, None
    if RunDirectory(args.checkpoint).run_json.is_file():
        run = RunContext.load(args.checkpoint)
        modules, data_dir, vocabulary = list(run.task_modules), args.data_dir or run.data_dir, run.vocabulary
    common.load_task_modules([*modules, *args.task_module], data_dir=data_dir, vocabulary=vocabulary)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.set_verbosity(args.verbose)
    common.quiet_tensorflow()
    common.configure_compilation_cache(args)
    from it_jax.evaluation import decontamination, evaluate, loading
    from it_jax.train import distributed

    load_tasks(args)  # before the model: an unknown task fails at once
    distributed.initialize(**common.distributed_flags(args))
    try:
        names = evaluate.select_tasks(
            cluster=args.cluster, mixture=args.mixture, tasks=args.tasks.split(",") if args.tasks else ()
        )
    except errors.ConfigError as error:
        raise SystemExit(f"error: {error}") from None
    model = loading.load_model(args.checkpoint, step=args.step, vocabulary_path=args.vocab)
    lengths = dict(model.task_feature_lengths or {"inputs": 512, "targets": 64})
    lengths.update({k: v for k, v in (("inputs", args.inputs_length), ("targets", args.targets_length)) if v})
    excluded = decontamination.load_excluded(args.exclude_contaminated) if args.exclude_contaminated else None
    output_dir = pathlib.Path(args.output_dir) if args.output_dir else RunDirectory(args.checkpoint).eval
    step = f" step {model.step}" if model.step is not None else ""
    print(f"Loaded {model.path}{step}: {model.layout.architecture} layout; evaluating {len(names)} tasks", flush=True)
    _, markdown = evaluate.evaluate_model(
        spec=model.spec,
        params=model.params,
        vocabulary=model.vocabulary,
        layout=model.layout,
        task_names=names,
        task_feature_lengths=lengths,
        output_dir=output_dir,
        title=f"Evaluation ({args.split}): " + (args.cluster or args.mixture or ", ".join(names)),
        variants=args.variants.split(",") if args.variants else None,
        split=args.split,
        max_examples=args.max_examples,
        batch_size=args.batch_size,
        decode=common.decode_options(args),
        length_normalize=args.length_normalize,
        excluded=excluded,
        checkpoint=model.path,
        step=model.step,
    )
    print(markdown)


if __name__ == "__main__":
    main()
