import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_inspect_mixture_prints_shares_and_examples():
    result = subprocess.run(
        [sys.executable, "scripts/inspect_mixture.py", "synthetic_heldout_entailment", "--task_module", "mixtures.synthetic",
         "--examples", "2", "--format", "markdown"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    rows = [line for line in lines if line.startswith("| synthetic_")]
    assert len(rows) == 10
    assert "| synthetic_addition | arithmetic | 10,000 | 3,000 | 12.93% |" in rows
    shares = [float(row.split("|")[5].strip().rstrip("%")) for row in rows]
    assert abs(sum(shares) - 100.0) < 0.1
    assert not any("entailment |" in row for row in rows)
    assert sum(line.startswith("**synthetic_") for line in lines) == 20


def test_inspect_shows_a_chat_mixture(shared_data):
    result = subprocess.run(
        [sys.executable, "scripts/inspect_mixture.py", "chat_sft", "--task_module", "mixtures.chat",
         "--data_dir", str(shared_data / "tfds_jsonl"), "--format", "markdown"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| chat_alpaca | chat | 1,900 | 1,900 | 37.44% |" in result.stdout
    assert "**chat_hh_rlhf** (conversation 0: the history, then its last reply)" in result.stdout
    assert "<|im_start|>user\nHow does our immune system fight viruses?<|im_end|>" in result.stdout
