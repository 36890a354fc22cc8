"""Loading a LoRA run: every consumer sees the merged model (eval's logits equal the unmerged model's), and its
export (`--from_run`, then `--to_hf`) is the merged weights, which transformers loads with the same logits."""

import pathlib

import chat_runs
import jax
import numpy as np
import pytest
import seqio
import torch
import transformers

from it_jax.cli import convert_checkpoint
from it_jax.convert import pretrained, tree
from it_jax.data import layout as layout_lib
from it_jax.evaluation import loading
from it_jax.models import lora
from it_jax.run_context import RunContext
from it_jax.run_dir import RunDirectory

CONFIG = lora.LoraConfig(rank=4, alpha=8.0, targets=("q", "v", "mlp"))
TOKENS = np.array([[5, 17, 90, 3, 44, 250, 8, 61, 2, 120]], np.int32)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory) -> tuple[pathlib.Path, dict]:
    """A run directory whose step-1 checkpoint holds a tiny Llama-style base and nonzero adapters."""
    run_dir = tmp_path_factory.mktemp("lora") / "run"
    vocabulary = seqio.ByteVocabulary()
    context = RunContext(
        directory=RunDirectory(run_dir), model_config=chat_runs.CONFIG, vocabulary=vocabulary,
        layout=layout_lib.default_layout("decoder_only", vocabulary),
        task_feature_lengths={"inputs": 16, "targets": 16}, lora=CONFIG,
    )
    context.save(config_gin="")
    spec = loading.model_spec(chat_runs.CONFIG, CONFIG)
    params = lora.with_base(spec.init_params(0), chat_runs.random_params(chat_runs.CONFIG))
    rng = np.random.default_rng(1)
    flat = {p: (rng.normal(0, 0.3, v.shape).astype(np.float32) if p[-1] == "lora_b" else np.asarray(v))
            for p, v in tree.flatten(params).items()}
    params = tree.unflatten(flat)
    chat_runs.save_step_1(context, params)
    return run_dir, params


def _logits(spec, params) -> np.ndarray:
    model = spec.bind(params)
    return np.asarray(model.logits_from_features({"decoder_input_tokens": TOKENS}, rngs=None), np.float32)


def test_a_lora_run_loads_merged_with_the_unmerged_model_logits(lora_run):
    run_dir, params = lora_run
    assert RunContext.load(run_dir).lora == CONFIG
    loaded = loading.load_model(run_dir)
    assert not any(p[-1] in lora.ADAPTER_NAMES for p in tree.flatten(loaded.params))
    merged = tree.flatten(lora.merge(params, CONFIG))
    for path, value in tree.flatten(jax.device_get(loaded.params)).items():
        np.testing.assert_allclose(value, merged[path], atol=1e-6, err_msg=tree.path_name(path))
    unmerged = _logits(loading.model_spec(chat_runs.CONFIG, CONFIG), params)
    base_only = _logits(loaded.spec, chat_runs.random_params(chat_runs.CONFIG))
    assert np.abs(unmerged - base_only).max() > 1e-2  # the adapters matter
    np.testing.assert_allclose(_logits(loaded.spec, loaded.params), unmerged, rtol=0, atol=1e-5)


def test_a_lora_run_exports_merged_weights_that_transformers_loads(lora_run, tmp_path):
    run_dir, params = lora_run
    convert_checkpoint.main(["--from_run", str(run_dir), "--out", str(tmp_path / "pretrained")])
    exported = tree.flatten(pretrained.load_pretrained(tmp_path / "pretrained").params)
    merged = tree.flatten(lora.merge(params, CONFIG))
    assert set(exported) == set(merged)
    for path, value in exported.items():
        np.testing.assert_allclose(np.asarray(value), merged[path], atol=1e-6, err_msg=tree.path_name(path))
    convert_checkpoint.main(["--to_hf", str(tmp_path / "pretrained"), "--out", str(tmp_path / "hf")])
    model = transformers.AutoModelForCausalLM.from_pretrained(tmp_path / "hf", attn_implementation="eager")
    with torch.no_grad():
        hf_logits = model(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
    unmerged = _logits(loading.model_spec(chat_runs.CONFIG, CONFIG), params)
    np.testing.assert_allclose(hf_logits, unmerged, rtol=0, atol=1e-4)
