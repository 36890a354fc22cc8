import os
import pathlib
import subprocess
import sys

import numpy as np
from safetensors.numpy import load_file

from it_jax.convert import hf, pretrained, tree

REPO = pathlib.Path(__file__).resolve().parents[2]


def convert(*args):
    return subprocess.run(
        [sys.executable, "scripts/convert_checkpoint.py", *map(str, args)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )


def test_from_hf_writes_a_pretrained_directory(hf_checkpoint, tmp_path):
    source = hf_checkpoint("qwen2_bias").directory
    result = convert("--from_hf", source, "--out", tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"family: decoder\nparameters: 123,712\nvocabulary: none recorded (pass --vocab)\nwritten: {tmp_path}" in (
        result.stdout
    )
    loaded = pretrained.load_pretrained(tmp_path)
    config, params = hf.from_hf(source)
    assert loaded.config == config and loaded.vocabulary_path is None
    flat, flat_loaded = tree.flatten(params), tree.flatten(loaded.params)
    assert flat.keys() == flat_loaded.keys() and all(np.array_equal(flat[p], flat_loaded[p]) for p in flat)


def test_to_hf_gives_back_the_original_tensors(hf_checkpoint, tmp_path):
    source = hf_checkpoint("t5_v1_1").directory
    config, params = hf.from_hf(source)
    pretrained.save_pretrained(tmp_path / "ckpt", config=config, params=params, vocabulary_path=None)
    result = convert("--to_hf", tmp_path / "ckpt", "--out", tmp_path / "hf")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"family: t5\nparameters: {tree.num_params(params):,}\nvocabulary: none\nwritten: {tmp_path / 'hf'}" in (
        result.stdout
    )
    original, written = load_file(source / "model.safetensors"), load_file(tmp_path / "hf" / "model.safetensors")
    assert written.keys() == original.keys()
    assert all(np.array_equal(written[k], v) for k, v in original.items())


def test_from_t5x_records_the_vocabulary_with_100_extra_ids(shared_data, tmp_path):
    result = convert(
        "--from_t5x", shared_data / "checkpoints" / "t5x_test_t5_tiny" / "checkpoint_0",
        "--vocab", shared_data / "tokenizers" / "t5" / "spiece.model", "--out", tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "family: t5\nparameters: 518,240\nvocabulary: spiece.model + 100 extra ids" in result.stdout
    loaded = pretrained.load_pretrained(tmp_path)
    assert loaded.extra_ids == 100 and pretrained.make_vocabulary(loaded).vocab_size == 32100


def test_a_vocabulary_larger_than_the_model_is_refused(shared_data, hf_checkpoint, tmp_path):
    result = convert(
        "--from_hf", hf_checkpoint("t5_original").directory,
        "--vocab", shared_data / "tokenizers" / "t5" / "spiece.model", "--out", tmp_path / "out",
    )
    assert result.returncode != 0
    assert "has 32000 pieces; with 0 extra ids that exceeds the model's vocabulary of 160" in result.stderr
    assert not (tmp_path / "out").exists()


def test_errors_are_reported_without_a_traceback(tmp_path):
    result = convert("--from_hf", tmp_path, "--out", tmp_path / "out")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {tmp_path / 'config.json'} not found: expected a Hugging Face model directory "
        "(config.json + safetensors)"
    )
    assert "Traceback" not in result.stderr
