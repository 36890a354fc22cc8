"""Show what a mixture is made of: each task's cluster, examples, cap, share of the mixture, and samples.

  python scripts/inspect_mixture.py synthetic_heldout_entailment --examples 2
  python scripts/inspect_mixture.py flan2021_eval_nli --split validation --data_dir ../shared/data/tfds_jsonl

Tasks whose data cannot be read here (no TFDS download, no local mirror) are listed with the reason and
left out of the shares.
"""

from __future__ import annotations

import argparse
import itertools

from it_jax.cli import common



def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mixture", help="a registered mixture or task name")
    parser.add_argument("--examples", type=int, default=1, help="rendered examples per task (default 1)")
    parser.add_argument("--format", choices=("text", "markdown"), default="text", help="default: %(default)s")
    parser.add_argument("--split", default="train", help="default: %(default)s")
    parser.add_argument("--data_dir", help="local JSONL mirrors of TFDS datasets instead of TFDS")
    common.add_task_module_flag(parser, default=", ".join(common.DEFAULT_TASK_MODULES))
    common.add_verbose_flag(parser)
    args = parser.parse_args()
    common.set_verbosity(args.verbose)
    return args


def main() -> None:
    args = _parse_args()
    common.load_task_modules([*common.DEFAULT_TASK_MODULES, *args.task_module], data_dir=args.data_dir)
    import seqio

    from it_jax.data import chat_tasks, tasks

    mixture = seqio.get_mixture_or_task(args.mixture)
    members = mixture.tasks if isinstance(mixture, seqio.Mixture) else [mixture]
    rows, samples, rates, counts = [], [], {}, {}
    for task in members:
        info = chat_tasks.chat_task_info(task.name) or tasks.task_info(task.name)
        try:
            count = info.num_examples(args.split)
            rates[task.name] = mixture.get_rate(task) if isinstance(mixture, seqio.Mixture) else 1.0
            samples.append((task.name, list(itertools.islice(info.render(args.split), args.examples))))
        except Exception as e:  # the data of this task is not readable here: say why and go on
            rows.append((task.name, info.cluster, "-", "-", f"unavailable: {str(e).splitlines()[0][:90]}"))
            continue
        rows.append((task.name, info.cluster, f"{count:,}", f"{rates[task.name]:,.0f}", ""))
        counts[info.name] = count
    total = sum(rates.values()) or 1.0
    header = ("task", "cluster", "examples", "rate (capped)", "share")
    table = [(n, c, e, r, s or f"{100 * rates[n] / total:.2f}%") for n, c, e, r, s in rows]
    _print_table(header, table, args.format)
    print(f"\n{len(members)} tasks, {len(rates)} readable; clusters: {sorted({r[1] for r in rows})}\n")
    _print_submixes(args.mixture, counts, args.format)
    for name, examples in samples:
        for ex in examples:
            if args.format == "markdown":
                print(f"**{name}** ({_origin(ex)})\n\n```\n{ex['inputs']}\n```\n-> `{ex['targets']}`\n")
            else:
                print(f"--- {name} ({_origin(ex)})\n{ex['inputs']}\n=> {ex['targets']}\n")


def _origin(example: dict) -> str:
    """Where a sample comes from: its template, or (a chat task's) its conversation and last reply."""
    if "template" in example:
        return f"template {example['template']}"
    return f"conversation {example['idx']}: the history, then its last reply"


def _print_submixes(name: str, counts: dict[str, int], fmt: str) -> None:
    """For a FLAN 2022 composition: each submix's share (beside the published weight), tasks and examples
    (of its readable tasks), and which submixes were dropped (the others' weights renormalized)."""
    from it_jax.data import tasks
    from mixtures import flan2022

    shares = flan2022.submix_shares(name)
    if shares is None:
        return
    header = ("submix", "share", "published", "tasks (all variants)", "examples (readable tasks)")
    rows = []
    for row in shares:
        if row.dropped:
            rows.append((row.name, "-", f"{row.published:.2f}", "-", "dropped: the others' weights renormalized"))
            continue
        parts = [p for p in _part_names(name) if p.startswith(f"{name}_{row.name}")]
        infos = {tasks.task_info(t).name for p in parts for t in _task_names(p)}
        examples = sum(counts.get(info, 0) for info in infos)
        rows.append((row.name, f"{row.share:.3f}", f"{row.published:.2f}", str(row.tasks), f"{examples:,}"))
    _print_table(header, rows, fmt)
    print()


def _part_names(mixture: str) -> list[str]:
    """The names of the mixtures registered in seqio (for the submix parts of `mixture`)."""
    import seqio

    return [name for name in seqio.MixtureRegistry.names() if name.startswith(f"{mixture}_")]


def _task_names(mixture: str) -> list[str]:
    import seqio

    return [task.name for task in seqio.MixtureRegistry.get(mixture).tasks]


def _print_table(header, rows, fmt: str) -> None:
    if fmt == "markdown":
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        for row in rows:
            print("| " + " | ".join(row) + " |")
        return
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())


if __name__ == "__main__":
    main()
