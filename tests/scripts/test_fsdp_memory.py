"""scripts/bench/fsdp_memory.py end to end on a tiny model: each of 8 devices holds about 1/8 of the state.

The shares are computed from the shardings only (`--allocate_up_to 0`); tests/train/test_state.py checks
the bytes actually placed on the devices.
"""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_each_device_holds_an_eighth_of_the_state(tmp_path):
    out = tmp_path / "fsdp.json"
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    script = REPO / "scripts" / "bench" / "fsdp_memory.py"
    result = subprocess.run(
        [sys.executable, str(script), "--models", "t5_tiny", "--allocate_up_to", "0", f"--json={out}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "| t5_tiny | 9,012,992 | adafactor |" in result.stdout

    report = json.loads(out.read_text())
    assert report["devices"] == 8 and [r["optimizer"] for r in report["results"]] == ["adamw", "adafactor"]
    for entry in report["results"]:
        assert 1.0 <= entry["ratio_to_even_split"] <= 1.05, entry
        assert entry["allocated_max_device_bytes"] is None
        assert entry["per_device_bytes"] * 8 >= entry["total_bytes"]
