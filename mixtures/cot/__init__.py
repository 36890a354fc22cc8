"""The FLAN 2022 chain-of-thought submix: seven CoT datasets registered as SeqIO tasks, plus `cot_all`.

`register(context)` registers `cot_<name>` (with its per-template and few-shot variant tasks) for gsm8k,
strategyqa, creak, qasc, ecqa, sensemaking and aqua, its input inversion `cot_<name>_inverted` (answer or
reasoning back to the question, mixed at 0.3), and the mixture `cot_all`. The data are FLAN v2's CoT
training files (train split only; fields question, answer, chain_of_thought), read from the local JSONL
mirrors `<data_dir>/cot__<name>/train.jsonl`; they are not TFDS datasets, so the run needs a data
directory (`run_config.data_dir`, `--data_dir`).
"""

from __future__ import annotations

from it_jax.data import fewshot, mixing, sources, tasks
from it_jax.data.context import RateFn, TaskContext
from it_jax.evaluation import metrics
from mixtures.cot.templates import INVERSION, TEMPLATES

PREFIX = "cot"
CLUSTER = "cot"
CAP = 100_000  # FLAN 2022's per-task cap for the CoT submix.


def answer_sentence(answer: str) -> str:
    """The sentence that ends every target, stating the final answer."""
    return f"So the answer is {answer}."


def preprocess(example: sources.Example) -> sources.Example:
    """Adds `target`: the chain of thought, then the answer sentence (on a new line after unpunctuated work)."""
    chain_of_thought = example["chain_of_thought"].strip()
    answer = example["answer"].strip()
    separator = " " if chain_of_thought.endswith((".", "!", "?")) else "\n"
    return {
        "question": example["question"].strip(),
        "chain_of_thought": chain_of_thought,
        "answer": answer,
        "target": f"{chain_of_thought}{separator}{answer_sentence(answer)}",
    }


MIXTURE = f"{PREFIX}_all"


INVERTED_SUFFIX = "_inverted"


def _register(name: str, context: TaskContext, *, inverted: bool = False) -> tasks.TaskInfo:
    """`cot_<name>` (reasoning, then the answer), or `cot_<name>_inverted` (answer or reasoning -> question)."""
    return tasks.register_task(
        f"{PREFIX}_{name}{INVERTED_SUFFIX if inverted else ''}",
        source=context.tfds(f"cot/{name}", splits=("train",)),
        templates=INVERSION if inverted else TEMPLATES[name],
        cluster=CLUSTER,
        preprocessor=preprocess,
        metrics=(metrics.rouge,) if inverted else (metrics.exact_match,),
        max_train_examples=CAP,
        variants=fewshot.VARIANTS,
        context=context,
    )


def rate(context: TaskContext) -> RateFn:
    """Examples-proportional up to `CAP`; the inversion tasks at FLAN 2022's 0.3 of that."""
    return mixing.inversions_weighted(context.rate(cap=CAP), marker=INVERTED_SUFFIX)


def register(context: TaskContext) -> tuple[tasks.TaskInfo, ...]:
    """Registers each dataset's task and its inversion, and `cot_all`, with the run's settings; returns them."""
    infos = tuple(_register(name, context, inverted=inverted) for name in TEMPLATES for inverted in (False, True))
    mixing.register_mixture(MIXTURE, [info.name for info in infos], rate=rate(context))
    return infos
