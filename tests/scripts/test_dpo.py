"""DPO through the CLI on the real HH-RLHF pairs, after a short chat SFT: the held-out reward margin and accuracy
grow; with LoRA only the adapters change, `adapters.safetensors` rebuilds the final parameters on the base, and
loaders see the merged model."""

import json
import os
import pathlib
import subprocess
import sys

import jax
import numpy as np
import pytest

from it_jax import sharding
from it_jax.convert import tree
from it_jax.evaluation import loading
from it_jax.models import lora, registry
from it_jax.run_context import RunContext
from it_jax.train import checkpoints
from it_jax.train.state import with_shardings

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"
SFT = [
    "TRAIN_STEPS = 30", "train_run.batch_size = 8", "train_run.eval_every = 0", "train_run.save_every = 30",
    "run_config.task_feature_lengths = {'inputs': 128, 'targets': 128}", "make_schedule.warmup_steps = 5",
]
DPO = [
    "train_run.batch_size = 16", "preference_data.max_pairs = 1500", "preference_data.held_out_every = 5",
    "preference_data.max_length = 128", "preference_data.max_prompt_length = 64", "train_run.eval_every = 10",
    "make_schedule.base_learning_rate = 1e-3",
]


def _train(gin_file: str, model_dir: pathlib.Path, bindings: list[str]) -> str:
    args = [sys.executable, str(REPO / "scripts" / "train.py"), f"--gin_file={gin_file}", f"--model_dir={model_dir}",
            *(f"--gin_bindings={b}" for b in bindings)]
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(args, env=env, cwd=REPO, text=True, capture_output=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory) -> pathlib.Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    model_dir = tmp_path_factory.mktemp("dpo") / "sft"
    _train("runs/sft_tiny.gin", model_dir, SFT)
    return model_dir


def _evals(model_dir: pathlib.Path) -> dict[int, dict]:
    records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in records if "eval/reward_margin" in r}


def _raw_params(model_dir: pathlib.Path, spec) -> dict:
    """The parameters as saved (a LoRA run's base and adapters, unmerged)."""
    mesh = sharding.create_mesh(data=-1)
    checkpointer = checkpoints.Checkpointer(checkpoints.checkpoint_dir(model_dir))
    try:
        target = with_shardings(spec.abstract_state.to_pure_dict(), spec.param_shardings(mesh))
        return jax.device_get(checkpointer.restore_params(target, checkpointer.latest_step()))
    finally:
        checkpointer.close()


def test_tiny_dpo_run_grows_the_held_out_reward_margin_and_accuracy(sft_run):
    model_dir = sft_run.parent / "dpo"
    stdout = _train("runs/dpo_tiny.gin", model_dir, [f"SFT_DIR = '{sft_run}'", "TRAIN_STEPS = 60", *DPO])
    assert "Preference pairs: 1,500 read, 300 held out; 0 dropped by truncation" in stdout
    evals = _evals(model_dir)
    assert sorted(evals) == [10, 20, 30, 40, 50, 60]
    first, last = evals[10], evals[60]
    assert last["eval/reward_margin"] > first["eval/reward_margin"], (first, last)
    assert last["eval/reward_accuracy"] > first["eval/reward_accuracy"], (first, last)
    assert RunContext.load(model_dir).lora is None


def test_tiny_lora_dpo_run_changes_only_the_adapters(sft_run):
    model_dir = sft_run.parent / "dpo_lora"
    stdout = _train("runs/dpo_tiny_lora.gin", model_dir,
                    [f"SFT_DIR = '{sft_run}'", "TRAIN_STEPS = 8", "train_run.save_every = 8", *DPO])
    assert "newly initialized: 32 LoRA adapter parameters" in stdout  # 4 layers x q/k/v/o x (A, B)
    config = RunContext.load(model_dir).lora
    assert config == lora.LoraConfig(rank=8, alpha=16.0, targets=("q", "k", "v", "o"))
    base_spec = registry.model_spec(RunContext.load(model_dir).model_config)
    lora_spec = loading.model_spec(RunContext.load(model_dir).model_config, config)
    sft = tree.flatten(_raw_params(sft_run, base_spec))
    final = _raw_params(model_dir, lora_spec)
    flat = tree.flatten(final)
    for path, value in sft.items():
        np.testing.assert_array_equal(flat[path], value, err_msg=tree.path_name(path))
    adapters = tree.flatten(lora.adapter_params(final))
    assert len(adapters) == 32 and any(np.abs(v).max() > 0 for p, v in adapters.items() if p[-1] == "lora_b")
    # The adapters alone, put back on the SFT base, give the final parameters.
    rebuilt = lora.load_adapters(model_dir / "adapters.safetensors",
                                 lora.with_base(lora_spec.init_params(1), _raw_params(sft_run, base_spec)))
    for path, value in tree.flatten(jax.device_get(rebuilt)).items():
        np.testing.assert_array_equal(value, flat[path], err_msg=tree.path_name(path))
    # Loaders see the merged model (the base spec, adapters folded in).
    loaded = loading.load_model(model_dir)
    merged = tree.flatten(jax.device_get(lora.merge(final, config)))
    assert set(tree.flatten(loaded.params)) == set(merged) == set(sft)
    for path, value in tree.flatten(jax.device_get(loaded.params)).items():
        np.testing.assert_allclose(value, merged[path], rtol=0, atol=1e-6, err_msg=tree.path_name(path))


def test_a_resumed_lora_dpo_run_repeats_the_uninterrupted_one(sft_run):
    """The pairs' batches, the recomputed cached reference and the LoRA dropout all resume exactly."""
    small = [f"SFT_DIR = '{sft_run}'", "TRAIN_STEPS = 6", "train_run.batch_size = 8", "preference_data.max_pairs = 200",
             "preference_data.max_length = 64", "preference_data.max_prompt_length = 32", "train_run.eval_every = 3",
             "train_run.save_every = 3", "make_schedule.warmup_steps = 2", "train_run.log_every = 1",
             "LoraConfig.dropout = 0.1"]
    whole, resumed = sft_run.parent / "whole", sft_run.parent / "resumed"
    _train("runs/dpo_tiny_lora.gin", whole, small)
    _train("runs/dpo_tiny_lora.gin", resumed, [*small, "train_run.num_steps = 3"])
    _train("runs/dpo_tiny_lora.gin", resumed, small)

    def losses(model_dir):
        records = [json.loads(line) for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
        return {(r["step"], name): r[name] for r in records for name in ("loss", "eval/reward_margin") if name in r}

    expected = losses(whole)
    assert len(expected) == 8 and losses(resumed) == expected
