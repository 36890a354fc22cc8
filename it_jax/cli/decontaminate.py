"""Find the evaluation examples that share a word n-gram with a training mixture, and write their indices.

  python scripts/decontaminate.py synthetic_heldout_entailment synthetic_syllogism,synthetic_item_inference
  python scripts/decontaminate.py flan2021_cola,flan2021_rte flan2021_rte,flan2021_snli \\
      --data_dir ../shared/data/tfds_jsonl --output runs/contamination.json

TRAIN and EVAL are each a mixture name or comma-separated task names. N-grams are taken over the strings of
each raw source example, not the rendered prompts (see `it_jax/evaluation/decontamination.py`). The
table lists, per evaluation task, its examples and how many are contaminated; `--output` writes the JSON
that `load_excluded` reads (`--exclude_contaminated` in evaluation).
"""

from __future__ import annotations

import argparse
import time

from it_jax.cli import common

def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train", help="training mixture, or comma-separated training task names")
    parser.add_argument("eval", help="evaluation mixture, or comma-separated evaluation task names")
    parser.add_argument("--ngram", type=int, default=13, help="words per n-gram (default 13)")
    parser.add_argument("--min_words", type=int, default=8, help="shortest field that counts (default 8)")
    parser.add_argument("--split", default="validation", help="evaluation split (default validation)")
    parser.add_argument("--train_split", default="train", help="training split (default train)")
    parser.add_argument("--data_dir", help="local JSONL mirrors of TFDS datasets instead of TFDS")
    common.add_task_module_flag(parser, default=", ".join(common.DEFAULT_TASK_MODULES))
    parser.add_argument("--output", help="write the contaminated indices per task to this JSON file")
    common.add_verbose_flag(parser)
    args = parser.parse_args()
    common.set_verbosity(args.verbose)
    return args


def _names(arg: str) -> list[str]:
    return [name.strip() for name in arg.split(",") if name.strip()]


def main() -> None:
    args = _parse_args()
    common.load_task_modules([*common.DEFAULT_TASK_MODULES, *args.task_module], data_dir=args.data_dir)
    from it_jax.evaluation import decontamination

    start = time.perf_counter()
    train_infos = decontamination.resolve_tasks(_names(args.train))
    eval_infos = decontamination.resolve_tasks(_names(args.eval))
    index = decontamination.build_train_index(
        train_infos, split=args.train_split, ngram=args.ngram, min_words=args.min_words
    )
    indexed = time.perf_counter() - start
    results = [decontamination.check_task(index, info, args.split) for info in eval_infos]
    elapsed = time.perf_counter() - start
    print(f"train: {args.train} ({len(train_infos)} tasks, {len(index.hashes):,} distinct {args.ngram}-grams)\n")
    print("| task | split | examples | contaminated | share |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r.task} | {r.split} | {r.total:,} | {len(r.contaminated):,} | {r.share:.2f}% |")
    print(f"\nelapsed: {elapsed:.1f} s (training index {indexed:.1f} s, evaluation tasks {elapsed - indexed:.1f} s)")
    if args.output:
        decontamination.write_report(args.output, index, results, train=args.train)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
