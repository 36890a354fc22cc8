"""The FLAN 2022 chain-of-thought submix: seven CoT datasets registered as SeqIO tasks, plus `cot_all`.

Importing this module registers `cot_<name>` (with its per-template and few-shot variant tasks) for gsm8k, strategyqa, creak,
qasc, ecqa, sensemaking and aqua, and the mixture `cot_all`. The data are FLAN v2's CoT training files
(train split only; fields question, answer, chain_of_thought), read from the local JSONL mirrors
`<IT_JAX_DATA_DIR>/cot__<name>/train.jsonl`; they are not TFDS datasets, so `IT_JAX_DATA_DIR` must be set.
"""

from __future__ import annotations

from it_jax.data import fewshot, mixing, sources, tasks
from it_jax.evaluation import metrics
from mixtures.cot.templates import TEMPLATES

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


def _register(name: str) -> tasks.TaskInfo:
    return tasks.register_task(
        f"{PREFIX}_{name}",
        source=sources.TfdsSource(f"cot/{name}", splits=("train",)),
        templates=TEMPLATES[name],
        cluster=CLUSTER,
        preprocessor=preprocess,
        metrics=(metrics.exact_match,),
        max_train_examples=CAP,
        variants=fewshot.VARIANTS,
    )


TASKS: tuple[tasks.TaskInfo, ...] = tuple(_register(name) for name in TEMPLATES)
MIXTURE = mixing.register_mixture(f"{PREFIX}_all", [info.name for info in TASKS], rate=mixing.capped_rate(cap=CAP))
