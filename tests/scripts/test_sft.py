"""Chat SFT through the CLI on the real chat data: the held-out assistant-token loss falls (tiny sizes)."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SMALL = [
    "TRAIN_STEPS = 40",
    "train_run.batch_size = 8",
    "run_config.task_feature_lengths = {'inputs': 128, 'targets': 128}",
    "train_run.eval_every = 10",
    "train_run.eval_batches = 4",
    "train_run.save_every = 40",
    "make_schedule.warmup_steps = 10",
]


def test_tiny_sft_run_lowers_the_held_out_assistant_loss(tmp_path, shared_data):
    model_dir = tmp_path / "sft"
    args = [sys.executable, str(REPO / "scripts" / "train.py"), "--gin_file=runs/sft_tiny.gin",
            f"--model_dir={model_dir}", *(f"--gin_bindings={b}" for b in SMALL)]
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "chat task 'chat_hh_rlhf': of 3,689 conversations" in result.stdout  # overflow is counted, not silent
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    evals = {r["step"]: r for r in records if "eval/loss" in r}
    assert sorted(evals) == [10, 20, 30, 40]
    for task in ("chat_alpaca", "chat_hh_rlhf", "chat_self_instruct", "chat_oasst1"):  # oasst1: never trained on
        first, last = evals[10][f"eval/{task}/loss"], evals[40][f"eval/{task}/loss"]
        assert last < first < math.log(384) + 0.5, (task, first, last)
    assert json.loads((model_dir / "run.json").read_text())["chat_format"] == "chatml"
