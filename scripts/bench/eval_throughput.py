"""Rank-classification evaluation throughput: it_jax's `Predictor.score_options` against pairwise scoring and
Hugging Face transformers, on real FLAN 2021 validation examples and the same model.

  python scripts/bench/eval_throughput.py                                  # SNLI, 512 examples, default model
  python scripts/bench/eval_throughput.py --tasks flan2021_snli,flan2021_rte --examples 256 --json /tmp/eval.json
  python scripts/bench/eval_throughput.py --d_model 256 --num_layers 2 --batch_size 16

Data: the first `--examples` validation examples of each task in `--tasks`, rendered with answer template
`--template` (zero-shot, with options) from the local TFDS mirror (`<--data_dir>/tfds_jsonl`, read through
the task context's data directory), tokenized as seqio does (`predictor.tokenize`: ids truncated to leave room for EOS, then
EOS) with the T5 SentencePiece model (`extra_ids=100`): inputs to at most `--input_length` tokens, each
option to at most `--target_length`.

Model: a T5 v1.1 encoder-decoder (gated GELU, untied head, vocabulary 32,128, float32, no dropout) with
random weights (seed `--seed`); transformers' `T5ForConditionalGeneration` loads the same weights, exported
with `it_jax.convert.hf.to_hf`.

Paths, each over the same examples, with the same batch size `--batch_size`:
- `itjax`: `Predictor.score_options` (layout `ENCODER_DECODER`, EOS 1, one CPU device): examples sorted by
  length, each input encoded once and all its options scored against it, inputs and options padded to
  power-of-two buckets; `--batch_size` examples per call.
- `pairwise`: how it_jax scored before: every (input, option) pair scored on its own by a jitted
  `scoring.target_log_likelihood`, inputs padded to `--input_length` and targets to `--target_length`,
  `--batch_size` pairs per call (the last batch filled with copies of its first row, so it compiles once).
- `hf`: `T5ForConditionalGeneration` (PyTorch, CPU, `torch.inference_mode()`, attention `--hf_attention`,
  `torch.set_num_threads(os.cpu_count())`): every pair, in order, `--batch_size` pairs per call, each batch
  padded to its own longest input and option; the score is the sum of the option tokens' log-probabilities.

Every path scores each option's tokens EOS included and picks the highest sum. Timing: one untimed pass of
each path (it compiles every shape it_jax meets), then `--repeats` rounds in which the paths take turns
(so background load hits all alike), each a full pass over all tasks; a path's time is its fastest pass (the
process CPU seconds of that pass, all threads, are reported beside it: wall-clock on a busy machine).
Examples/s counts evaluation examples, not pairs. The paths must choose the same option for every example:
agreement and the largest score difference are reported with the speeds.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from it_jax import sharding as sharding_lib  # noqa: E402
from it_jax.convert import hf as hf_lib  # noqa: E402
from it_jax.data import layout as layout_lib  # noqa: E402
from it_jax.data import tasks as tasks_lib  # noqa: E402
from it_jax.data import vocab as vocab_lib  # noqa: E402
from it_jax.evaluation import predictor as predictor_lib  # noqa: E402
from it_jax.models import registry, scoring  # noqa: E402
from it_jax.models.spec import ModelSpec  # noqa: E402
from it_jax.models.t5 import T5Config  # noqa: E402

Ids = list[int]
PATHS = ("itjax", "pairwise", "hf")
LABELS = {
    "itjax": "it_jax `Predictor.score_options` (encoder once, length buckets)",
    "pairwise": "it_jax pairwise (fixed padding)",
    "hf": "HF transformers (torch, dynamic padding)",
}
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
VOCAB_SIZE = 32128  # T5's: 32,000 pieces + 100 sentinels, padded to a multiple of 128
EXTRA_IDS = 100
EOS_ID = 1


@dataclasses.dataclass
class TaskData:
    """One task's evaluation examples as token ids."""

    name: str
    inputs: list[Ids]
    options: list[list[Ids]]
    answers: list[int]  # index of the reference option (for information: the weights are random)

    @property
    def pairs(self) -> list[tuple[Ids, Ids]]:
        """Every (input, option) pair, example by example."""
        return [(x, o) for x, opts in zip(self.inputs, self.options) for o in opts]


def load_tasks(names: Sequence[str], args: argparse.Namespace) -> list[TaskData]:
    """The first `--examples` validation examples of each task, rendered with `--template` and tokenized."""
    import mixtures.flan2021 as flan
    from it_jax.data import context

    data_dir = args.data_dir
    vocabulary = vocab_lib.make_vocabulary(
        sentencepiece_model=str(data_dir / "tokenizers" / "t5" / "spiece.model"), extra_ids=EXTRA_IDS
    )
    flan.register(context.TaskContext(vocabulary, data_dir=str(data_dir / "tfds_jsonl")))
    assert vocabulary.vocab_size <= VOCAB_SIZE and vocabulary.eos_id == EOS_ID
    loaded = []
    for name in names:
        info = tasks_lib.task_info(name)
        if not info.is_classification:
            raise ValueError(f"{name} is not a classification task: it has no options to rank")
        rendered = list(itertools.islice(info.render("validation", args.template), args.examples))
        tokenize = predictor_lib.tokenize
        loaded.append(
            TaskData(
                name,
                [tokenize(vocabulary, ex["inputs"], args.input_length) for ex in rendered],
                [[tokenize(vocabulary, o, args.target_length) for o in ex["options"]] for ex in rendered],
                [ex["options"].index(ex["targets"]) if ex["targets"] in ex["options"] else -1 for ex in rendered],
            )
        )
    return loaded


def model_config(args: argparse.Namespace) -> T5Config:
    return T5Config(
        vocab_size=VOCAB_SIZE,
        d_model=args.d_model,
        d_ff=args.d_ff,
        d_kv=args.head_dim,
        num_heads=args.num_heads,
        num_encoder_layers=args.num_layers,
        num_decoder_layers=args.num_layers,
        dropout_rate=0.0,
        dtype="float32",
        param_dtype="float32",
    )


# A scorer maps a task to one [num_options] array of summed option log-likelihoods per example.
Scorer = Callable[[TaskData], list[np.ndarray]]


def itjax_scorer(spec: ModelSpec, params: Any, batch_size: int) -> tuple[Scorer, predictor_lib.Predictor]:
    mesh = sharding_lib.create_mesh(data=1, devices=jax.devices()[:1])
    predictor = predictor_lib.Predictor(
        spec, params, layout_lib.ENCODER_DECODER, eos_id=EOS_ID, batch_size=batch_size, mesh=mesh
    )
    return (lambda task: predictor.score_options(task.inputs, task.options)), predictor


def _split(flat: np.ndarray, options: Sequence[Sequence[Ids]]) -> list[np.ndarray]:
    """Per-example score arrays from the scores of the pairs, example by example."""
    ends = np.cumsum([len(o) for o in options])
    return np.split(np.asarray(flat, np.float64), ends[:-1])


def pairwise_scorer(spec: ModelSpec, params: Any, args: argparse.Namespace) -> Scorer:
    """Every pair at fixed padding through a jitted `target_log_likelihood`, in batches of `batch_size` pairs."""
    score = jax.jit(
        lambda p, x, y, yl: scoring.target_log_likelihood(spec.bind(p), x, y, target_lengths=yl)[0]
    )

    def run(task: TaskData) -> list[np.ndarray]:
        pairs = task.pairs
        outputs = []
        for start in range(0, len(pairs), args.batch_size):
            chunk = pairs[start : start + args.batch_size]
            real = len(chunk)
            chunk = chunk + [chunk[0]] * (args.batch_size - real)
            x = np.zeros((args.batch_size, args.input_length), np.int32)
            y = np.zeros((args.batch_size, args.target_length), np.int32)
            y_lengths = np.zeros((args.batch_size,), np.int32)
            for r, (inputs, option) in enumerate(chunk):
                x[r, : len(inputs)] = inputs
                y[r, : len(option)], y_lengths[r] = option, len(option)
            outputs.append(np.asarray(score(params, x, y, y_lengths))[:real])
        return _split(np.concatenate(outputs), task.options)

    return run


def hf_model(config: T5Config, params: Any, attention: str):
    """transformers' T5 with it_jax's weights, exported through `it_jax.convert.hf.to_hf`."""
    import transformers

    transformers.logging.set_verbosity_error()  # the untied T5 v1.1 head is loaded as exported; no warning needed
    with tempfile.TemporaryDirectory() as tmp:
        hf_lib.to_hf(config, jax.tree.map(np.asarray, params), pathlib.Path(tmp) / "model")
        model = transformers.T5ForConditionalGeneration.from_pretrained(
            pathlib.Path(tmp) / "model", attn_implementation=attention
        )
    return model.float().eval()


def hf_scorer(model, batch_size: int) -> Scorer:
    """Every pair, in order, `batch_size` per call, each batch padded to its longest input and option."""
    import torch

    def run(task: TaskData) -> list[np.ndarray]:
        pairs = task.pairs
        outputs = []
        with torch.inference_mode():
            for start in range(0, len(pairs), batch_size):
                chunk = pairs[start : start + batch_size]
                x = np.zeros((len(chunk), max(len(p[0]) for p in chunk)), np.int64)
                y = np.zeros((len(chunk), max(len(p[1]) for p in chunk)), np.int64)
                for r, (inputs, option) in enumerate(chunk):
                    x[r, : len(inputs)], y[r, : len(option)] = inputs, option
                input_ids, labels = torch.from_numpy(x), torch.from_numpy(y)
                decoder_input_ids = torch.nn.functional.pad(labels, (1, 0))[:, :-1]  # start id 0
                logits = model(
                    input_ids=input_ids,
                    attention_mask=(input_ids > 0).long(),
                    decoder_input_ids=decoder_input_ids,
                    use_cache=False,
                ).logits
                log_probs = torch.log_softmax(logits.float(), dim=-1)
                token_ll = log_probs.gather(-1, labels.unsqueeze(-1)).squeeze(-1)
                outputs.append((token_ll * (labels > 0)).sum(-1).numpy())
        return _split(np.concatenate(outputs), task.options)

    return run


def token_work(tasks: Sequence[TaskData], predictor: predictor_lib.Predictor, args) -> dict[str, dict[str, float]]:
    """Encoder and decoder positions each path computes per example (padding included), and the real ones."""
    examples = sum(len(t.inputs) for t in tasks)
    work = {p: {"encoder": 0, "decoder": 0} for p in PATHS}
    real = {"encoder": 0, "decoder": 0}
    for task in tasks:
        real["encoder"] += sum(len(x) for x in task.inputs)
        real["decoder"] += sum(len(o) for opts in task.options for o in opts)
        for batch in predictor._batches(task.inputs):  # the rows and order score_options uses
            chosen = batch[batch >= 0]
            prompt = predictor_lib.bucket(max(len(task.inputs[i]) for i in chosen))
            option = predictor_lib.bucket(max(len(o) for i in chosen for o in task.options[i]))
            work["itjax"]["encoder"] += len(batch) * prompt
            work["itjax"]["decoder"] += len(batch) * max(len(task.options[i]) for i in chosen) * option
        pairs = task.pairs
        padded_pairs = -(-len(pairs) // args.batch_size) * args.batch_size
        work["pairwise"]["encoder"] += padded_pairs * args.input_length
        work["pairwise"]["decoder"] += padded_pairs * args.target_length
        for start in range(0, len(pairs), args.batch_size):
            chunk = pairs[start : start + args.batch_size]
            work["hf"]["encoder"] += len(chunk) * max(len(p[0]) for p in chunk)
            work["hf"]["decoder"] += len(chunk) * max(len(p[1]) for p in chunk)
    result = {p: {k: v / examples for k, v in w.items()} for p, w in work.items()}
    result["real"] = {k: v / examples for k, v in real.items()}
    return result


def time_passes(scorers: dict[str, Scorer], tasks: Sequence[TaskData], repeats: int):
    """One untimed pass of each path, then `repeats` rounds of one timed pass each.

    Returns the warm-up seconds, each timed pass's wall-clock and process CPU seconds (all threads), and the
    scores of the last pass, by path.
    """
    warmup, times, cpu_times, scores = {}, {name: [] for name in scorers}, {name: [] for name in scorers}, {}

    def run(name):
        start, cpu_start = time.perf_counter(), time.process_time()
        result = [scorers[name](task) for task in tasks]
        return time.perf_counter() - start, time.process_time() - cpu_start, result

    for name in scorers:
        print(f"warm-up {name} ...", file=sys.stderr, flush=True)
        warmup[name], _, scores[name] = run(name)
    for round_ in range(repeats):
        for name in scorers:
            seconds, cpu_seconds, scores[name] = run(name)
            times[name].append(seconds)
            cpu_times[name].append(cpu_seconds)
            print(f"round {round_ + 1}/{repeats} {name}: {seconds:.2f} s", file=sys.stderr, flush=True)
    return warmup, times, cpu_times, scores


def compare(scores: dict[str, list[list[np.ndarray]]]) -> dict[str, Any]:
    """Choice agreement and the largest score differences between the paths."""
    flat = {name: [s for task in by_task for s in task] for name, by_task in scores.items()}
    choices = {name: np.asarray([int(np.argmax(s)) for s in rows]) for name, rows in flat.items()}
    result: dict[str, Any] = {}
    names = list(flat)
    all_agree = np.all([choices[n] == choices[names[0]] for n in names], axis=0)
    result["agreement"] = float(all_agree.mean())
    result["disagreements"] = int((~all_agree).sum())
    # The full order of each example's options too: random weights may favour one option everywhere.
    orders = {name: [tuple(np.argsort(-s, kind="stable")) for s in rows] for name, rows in flat.items()}
    same_order = [len({orders[n][i] for n in names}) == 1 for i in range(len(all_agree))]
    result["ranking_agreement"] = float(np.mean(same_order))
    for a, b in itertools.combinations(names, 2):
        result[f"agreement_{a}_{b}"] = float((choices[a] == choices[b]).mean())
        result[f"max_abs_diff_{a}_{b}"] = float(max(np.abs(x - y).max() for x, y in zip(flat[a], flat[b])))
    reference = flat[names[-1]]
    margins = [np.sort(s)[-1] - np.sort(s)[-2] for s in reference if len(s) > 1]
    result["min_top2_margin"] = float(min(margins)) if margins else None
    result["mean_abs_score"] = float(np.mean([np.abs(s).mean() for s in reference]))
    most = max(len(s) for s in reference)
    result["choice_counts"] = {n: np.bincount(choices[n], minlength=most).tolist() for n in names}
    return result


def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torch_threads": torch.get_num_threads(),
        "load_average": load,
    }


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def markdown_report(results: dict[str, Any]) -> str:
    m = results["machine"]
    c = results["config"]
    lines = [
        f"{m['platform']}, {m['cpu_count']} CPUs ({m['processor']}); jax {m['jax']} ({m['jax_backend']}), "
        f"torch {m['torch']} ({m['torch_threads']} threads), transformers {m['transformers']}",
        f"load before: {results['uptime_before']}",
        f"load after: {results['uptime_after']}",
        f"T5 v1.1 d_model {c['d_model']}, d_ff {c['d_ff']}, {c['num_heads']}x{c['d_kv']} heads, "
        f"{c['num_encoder_layers']}+{c['num_decoder_layers']} layers, vocab {c['vocab_size']}, float32, random "
        f"weights; tasks {', '.join(results['tasks'])} (template {results['args']['template']}); "
        f"{results['num_examples']} examples, {results['num_pairs']} pairs; batch {results['args']['batch_size']}; "
        f"mean real tokens/example: input {results['mean_input_tokens']:.1f}, options "
        f"{results['token_work']['real']['decoder']:.1f} (all options)",
        "",
        "| path | examples/s | pass (s) | CPU s in pass | warm-up pass (s) | it_jax ÷ this "
        "| encoder positions/example | decoder positions/example |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name in PATHS:
        work, speed = results["token_work"][name], results[f"{name}_examples_per_s"]
        best = results[f"{name}_pass_times_s"].index(results[f"{name}_pass_s"])
        cpu = results[f"{name}_pass_cpu_times_s"][best]
        lines.append(
            f"| {LABELS[name]} | {speed:,.1f} | {results[f'{name}_pass_s']:.2f} | {cpu:.1f} "
            f"| {results[f'{name}_warmup_s']:.2f} "
            f"| {results['itjax_examples_per_s'] / speed:.2f} | {work['encoder']:.0f} | {work['decoder']:.0f} |"
        )
    a = results["agreement"]
    lines += [
        "",
        f"choices agree (all three paths): {a['agreement']:.2%} ({a['disagreements']} of {results['num_examples']} "
        f"differ); max |score difference|: it_jax vs HF {a['max_abs_diff_itjax_hf']:.2e}, pairwise vs HF "
        f"{a['max_abs_diff_pairwise_hf']:.2e}, it_jax vs pairwise {a['max_abs_diff_itjax_pairwise']:.2e} "
        f"(mean |score| {a['mean_abs_score']:.1f}, smallest top-2 margin {a['min_top2_margin']:.3g}); "
        f"full option ranking agrees: {a['ranking_agreement']:.2%}; chosen option counts (HF): "
        f"{a['choice_counts']['hf']}",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="flan2021_snli", help="comma-separated FLAN 2021 classification tasks")
    parser.add_argument("--template", type=int, default=0, help="answer template index")
    parser.add_argument("--examples", type=int, default=512, help="validation examples per task")
    parser.add_argument("--data_dir", type=pathlib.Path, default=DEFAULT_DATA_DIR, help="the shared data directory")
    parser.add_argument("--batch_size", type=int, default=32, help="examples (it_jax) or pairs (others) per call")
    parser.add_argument("--input_length", type=int, default=256, help="maximum input tokens (EOS included)")
    parser.add_argument("--target_length", type=int, default=16, help="maximum option tokens (EOS included)")
    parser.add_argument("--d_model", type=int, default=512)
    parser.add_argument("--d_ff", type=int, default=1024, help="hidden units of the gated MLP")
    parser.add_argument("--num_heads", type=int, default=8)
    parser.add_argument("--head_dim", type=int, default=64)
    parser.add_argument("--num_layers", type=int, default=2, help="layers of each stack")
    parser.add_argument("--seed", type=int, default=0, help="parameter initialization")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes of each path (the fastest is kept)")
    parser.add_argument("--hf_attention", default="sdpa", choices=("sdpa", "eager"), help="transformers attention")
    parser.add_argument("--json", type=pathlib.Path, default=None, help="write the results here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    uptime_before = _uptime()
    names = [n.strip() for n in args.tasks.split(",") if n.strip()]
    tasks = load_tasks(names, args)
    config = model_config(args)
    spec = registry.model_spec(config)
    params = jax.jit(spec.init_params)(jax.random.key(args.seed))

    itjax, predictor = itjax_scorer(spec, params, args.batch_size)
    scorers = {
        "itjax": itjax,
        "pairwise": pairwise_scorer(spec, params, args),
        "hf": hf_scorer(hf_model(config, params, args.hf_attention), args.batch_size),
    }
    warmup, times, cpu_times, scores = time_passes(scorers, tasks, args.repeats)

    num_examples = sum(len(t.inputs) for t in tasks)
    num_pairs = sum(len(t.pairs) for t in tasks)
    results: dict[str, Any] = {
        "machine": machine_info(),
        "uptime_before": uptime_before,
        "uptime_after": _uptime(),
        "args": {k: str(v) if isinstance(v, pathlib.Path) else v for k, v in vars(args).items()},
        "config": dataclasses.asdict(config),
        "num_params": spec.num_params(),
        "tasks": names,
        "num_examples": num_examples,
        "num_pairs": num_pairs,
        "num_options": {t.name: sorted({len(o) for o in t.options}) for t in tasks},
        "mean_input_tokens": sum(len(x) for t in tasks for x in t.inputs) / num_examples,
        "token_work": token_work(tasks, predictor, args),
    }
    for name in PATHS:
        best = min(times[name])
        results.update(
            {
                f"{name}_examples_per_s": num_examples / best,
                f"{name}_pairs_per_s": num_pairs / best,
                f"{name}_pass_s": best,
                f"{name}_pass_times_s": times[name],
                f"{name}_pass_cpu_times_s": cpu_times[name],
                f"{name}_warmup_s": warmup[name],
            }
        )
    results["ratio_itjax_vs_pairwise"] = results["itjax_examples_per_s"] / results["pairwise_examples_per_s"]
    results["ratio_itjax_vs_hf"] = results["itjax_examples_per_s"] / results["hf_examples_per_s"]
    results["agreement"] = compare(scores)
    answers = np.asarray([a for t in tasks for a in t.answers])
    chosen = np.asarray([int(np.argmax(s)) for task in scores["itjax"] for s in task])
    results["accuracy_random_weights"] = float((chosen == answers).mean())
    print(markdown_report(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return results


if __name__ == "__main__":
    main()
