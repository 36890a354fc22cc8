"""scripts/bench/train_throughput.py end to end at a tiny size: the JSON report's keys and values."""

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
    "--d_model=32",
    "--d_ff=64",
    "--num_heads=2",
    "--head_dim=16",
    "--num_layers=1",
    "--vocab_size=128",
    "--batch_size=2",
    "--input_length=16",
    "--target_length=8",
    "--seq_length=16",
    "--steps=2",
    "--warmup_steps=1",
    "--compile_layers=1,2",
    "--compile_repeats=1",
    "--no-hf_compile",  # torch.compile alone takes minutes on a small CPU
]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_train_throughput_json(tmp_path):
    out = tmp_path / "bench.json"
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "bench" / "train_throughput.py"), *TINY, f"--json={out}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| t5 | it_jax |" in result.stdout and "| decoder | HF eager" in result.stdout

    report = json.loads(out.read_text())
    assert _positive(report["matmul_peak_flops"])
    assert report["machine"]["cpu_count"] >= 1 and report["machine"]["jax"] and report["machine"]["torch"]
    for kind in ("t5", "decoder"):
        entry = report[kind]
        for key in (
            "itjax_tokens_per_s",
            "hf_eager_tokens_per_s",
            "ratio_vs_hf_eager",
            "mfu",
            "matmul_peak_flops",
            "model_flops_per_step",
            "itjax_step_time_median_s",
            "itjax_step_time_p90_s",
            "itjax_compile_s",
            "hf_eager_step_time_median_s",
        ):
            assert _positive(entry[key]), (kind, key, entry[key])
        assert entry["tokens_per_step"] == {"t5": 2 * (16 + 8), "decoder": 2 * 16}[kind]
        assert entry["config"]["d_model"] == 32
        assert entry["itjax_num_params"] == entry["hf_num_params"]  # the same architecture on both sides

    compile_time = report["compile_time"]
    assert compile_time["model"] == "decoder" and set(compile_time["layers"]) == {"1", "2"}
    for by_mode in compile_time["layers"].values():
        for mode in ("scanned", "unrolled"):
            assert _positive(by_mode[mode]["total_s"])
    assert _positive(compile_time["ratio_scanned"]) and _positive(compile_time["ratio_unrolled"])
