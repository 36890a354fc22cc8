"""A tiny model trained by the CLI on a learnable task is judged right by the evaluator, for every layout.

The task's answer is a function of its input (the colour word decides "warm" or "cold"), so a model that
learned it scores near 100% under rank classification, and a model asked in another format than it was
trained on (inputs dropped or misplaced) falls to chance: the test would catch a layout mismatch between
training and evaluation.
"""

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
TASK_MODULE = '''
import random
from it_jax.data import tasks

def _examples(split):
    rng = random.Random(split)
    for _ in range(400 if split == "train" else 24):
        warm = rng.random() < 0.5
        size = rng.choice(["big", "small", "old", "new"])
        yield {"thing": f"{'red' if warm else 'blue'} {size} box", "answer": "warm" if warm else "cold"}


def register(context):
    tasks.register_task(
        "learn_colour", source=_examples, cluster="learn", options=["warm", "cold"],
        templates=[("Is the {thing} warm or cold?\\n{options_}", "{answer}"), ("{thing}: temperature?", "{answer}")],
        context=context,
    )
'''
COMMON = [
    "run_config.task_modules = ['learn_tasks']",
    "run_config.task_feature_lengths = {'inputs': 48, 'targets': 8}",
    "MIXTURE = 'learn_colour'",
    "eval_run.reference_tasks = []",
    "train_run.batch_size = 16",
    "train_run.save_every = 1000",
    "train_run.log_every = 100",
    "make_schedule.base_learning_rate = 3e-3",
    "make_schedule.warmup_steps = 10",
    "TRAIN_STEPS = 120",
    "eval_run.cluster = 'learn'",
]
MODELS = {
    "encoder_decoder": ["T5Config.d_model = 32", "T5Config.d_ff = 64", "T5Config.d_kv = 8", "T5Config.num_heads = 2",
                        "T5Config.num_encoder_layers = 1", "T5Config.num_decoder_layers = 1"],
    "prefix_lm": ["--gin_file=runs/demo_decoder.gin", "DecoderConfig.d_model = 32", "DecoderConfig.d_ff = 64",
                  "DecoderConfig.num_layers = 2"],
    "decoder_only": ["--gin_file=runs/demo_decoder.gin", "DecoderConfig.d_model = 32", "DecoderConfig.d_ff = 64",
                     "DecoderConfig.num_layers = 2", "DecoderConfig.prefix_lm = False"],
}


@pytest.mark.parametrize("architecture", sorted(MODELS))
def test_cli_trained_model_ranks_the_learned_answers(tmp_path, architecture):
    (tmp_path / "learn_tasks.py").write_text(TASK_MODULE, encoding="utf-8")
    model_dir = tmp_path / "run"
    flags = [b if b.startswith("--") else f"--gin_bindings={b}" for b in (*MODELS[architecture], *COMMON)]
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": os.pathsep.join([str(REPO), str(tmp_path)])}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train.py"), f"--model_dir={model_dir}", *flags],
        env=env, cwd=REPO, text=True, capture_output=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((model_dir / "eval" / "results.json").read_text())
    (task,) = results["tasks"]
    metadata = json.loads((model_dir / "checkpoints" / "120" / "metadata" / "metadata").read_text())
    assert metadata["layout"]["architecture"] == architecture
    accuracies = [t["metrics"]["accuracy"] for t in task["templates"]]
    assert len(accuracies) == 2 and all(t["num_examples"] == 24 for t in task["templates"])
    assert min(accuracies) >= 90.0, (accuracies, result.stdout[-2000:])
