"""scripts/bench/input_pipeline.py end to end at tiny settings (FLAN too when the shared data is here), and its
example count on a hand-made packed batch."""

import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "bench" / "input_pipeline.py"
SHARED_DATA = REPO.parent / "shared" / "data"
TINY = ["--examples=64", "--warmup_seconds=0", "--resume_positions=0,5", "--skip_hf"]


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _load_script():
    spec = importlib.util.spec_from_file_location("input_pipeline_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_count_examples_counts_packed_segments():
    bench = _load_script()
    segments = np.array([[1, 1, 2, 2, 0], [1, 2, 3, 0, 0], [1, 1, 1, 1, 1]])
    assert bench.count_examples({"decoder_segment_ids": segments, "decoder_target_tokens": segments}) == 6
    targets = np.array([[5, 1, 0], [0, 0, 0]])  # unpacked: rows holding a target
    assert bench.count_examples({"decoder_target_tokens": targets}) == 1


def test_input_pipeline_json(tmp_path):
    out = tmp_path / "input.json"
    flan = (SHARED_DATA / "tfds_jsonl").is_dir() and (SHARED_DATA / "tokenizers" / "t5" / "spiece.model").is_file()
    flags = [*TINY, f"--data_dir={SHARED_DATA}"] + ([] if flan else ["--skip_flan"])
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *flags, f"--json={out}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| synthetic |" in result.stdout

    report = json.loads(out.read_text())
    for key in ("synthetic_examples_per_s", "first_step_s", "first_step_warm_s"):
        assert _positive(report[key]), (key, report[key])
    assert set(report["resume_first_batch_s"]) == {"0", "5"}
    assert all(_positive(s) for s in report["resume_first_batch_s"].values())
    assert report["hf_first_step_s"] is None and "hf" in report["notes"]  # --skip_hf
    assert _positive(report["flan_examples_per_s"]) if flan else report["flan_examples_per_s"] is None
    assert set(report["mixtures"]) == ({"synthetic", "flan"} if flan else {"synthetic"})
    for name, entry in report["mixtures"].items():
        for key in ("examples_per_s", "batches_per_s", "first_batch_s", "timed_s"):
            assert _positive(entry[key]), (name, key, entry[key])
        assert entry["examples_timed"] >= 64 and entry["examples_per_row"] >= 1
        assert entry["examples_per_s_by_window"] and all(_positive(r) for r in entry["examples_per_s_by_window"])
        assert all(0 < entry["fill"][side] <= 1 for side in ("encoder", "decoder")), entry["fill"]
    assert report["mixtures"]["synthetic"]["batch_shapes"]["encoder_input_tokens"] == [32, 128]
    assert _positive(report["first_step"]["trainer_first_step_s"])
    assert report["first_step"]["trainer_first_step_s"] < report["first_step_s"]
    assert report["first_step_warm"]["trainer_first_step_s"] < report["first_step_warm_s"]
    assert report["machine"]["cpu_count"] >= 1 and len(report["machine"]["load_average"]) == 3
    assert report["machine"]["versions"]["jax"]
