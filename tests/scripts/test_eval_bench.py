"""scripts/bench/eval_throughput.py end to end at a tiny size on real SNLI and RTE (3 and 2 options)."""

import json
import math
import os
import pathlib
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [
    "--tasks=flan2021_snli,flan2021_rte",
    "--examples=6",
    "--batch_size=4",
    "--d_model=32",
    "--d_ff=64",
    "--num_heads=2",
    "--head_dim=16",
    "--num_layers=1",
    "--repeats=1",
]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_eval_throughput_json(shared_data, tmp_path):
    for needed in ("tfds_jsonl/snli/validation.jsonl", "tfds_jsonl/super_glue__rte", "tokenizers/t5/spiece.model"):
        if not (shared_data / needed).exists():
            pytest.skip(f"{shared_data / needed} not found")
    out = tmp_path / "eval.json"
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "bench" / "eval_throughput.py"),
            *TINY,
            f"--data_dir={shared_data}",
            f"--json={out}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| it_jax `Predictor.score_options`" in result.stdout and "| HF transformers" in result.stdout

    report = json.loads(out.read_text())
    for key in (
        "itjax_examples_per_s",
        "pairwise_examples_per_s",
        "hf_examples_per_s",
        "ratio_itjax_vs_pairwise",
        "ratio_itjax_vs_hf",
        "mean_input_tokens",
        "itjax_pass_s",
        "hf_warmup_s",
    ):
        assert _positive(report[key]), (key, report[key])
    assert report["num_examples"] == 12 and report["num_pairs"] == 6 * 3 + 6 * 2
    assert report["num_options"] == {"flan2021_snli": [3], "flan2021_rte": [2]}
    assert report["config"]["d_model"] == 32 and report["machine"]["torch"] and report["machine"]["jax"]

    agreement = report["agreement"]
    assert agreement["agreement"] == 1.0 and agreement["disagreements"] == 0  # every path picks the same options
    assert agreement["ranking_agreement"] == 1.0  # and orders every example's options alike
    for pair in ("itjax_hf", "pairwise_hf", "itjax_pairwise"):
        assert agreement[f"agreement_{pair}"] == 1.0
        assert agreement[f"max_abs_diff_{pair}"] < 1e-3, (pair, agreement[f"max_abs_diff_{pair}"])
    # Encoding each input once (and padding to buckets) computes fewer encoder positions than scoring pairs.
    work = report["token_work"]
    assert work["itjax"]["encoder"] < work["pairwise"]["encoder"]
    assert work["real"]["encoder"] == pytest.approx(report["mean_input_tokens"])
