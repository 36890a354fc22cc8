"""scripts/train.py and scripts/eval.py end to end: train, resume, evaluate (tiny sizes)."""

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time

import tiny

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [*tiny.T5_GIN_BINDINGS, "train_run.save_every = 2", "train_run.log_every = 1", "eval_run.max_examples = 4"]


def _command(script, model_dir, *bindings) -> dict:
    args = [sys.executable, str(REPO / "scripts" / script), f"--model_dir={model_dir}"]
    args += [b if b.startswith("--") else f"--gin_bindings={b}" for b in (*TINY, *bindings)]
    return {"args": args, "env": {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}, "cwd": REPO, "text": True}


def _run(script, model_dir, *bindings):
    result = subprocess.run(**_command(script, model_dir, *bindings), capture_output=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def _logged_steps(model_dir) -> list[int]:
    """The steps of the training records (evaluation records are separate lines with their step)."""
    path = pathlib.Path(model_dir) / "metrics.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [record["step"] for record in records if "loss" in record]


def test_train_resume_and_evaluate(tmp_path):
    model_dir = tmp_path / "run"
    _run("train.py", model_dir, "TRAIN_STEPS = 4", "main.evaluate = False")
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["2", "4"]

    # A longer run lengthens the schedule (`make_schedule.total_steps`): a change the resume guard refuses
    # unless it is allowed.
    refused = subprocess.run(**_command("train.py", model_dir, "TRAIN_STEPS = 6"), capture_output=True)
    assert refused.returncode == 1 and "optimization.schedule.total_steps: 4 in the checkpoint, 6 now" in refused.stderr
    assert "Traceback" not in refused.stderr and "In call to configurable" not in refused.stderr
    out = _run("train.py", model_dir, "TRAIN_STEPS = 6", "train_run.allow_changes = ['schedule']")
    assert "Resuming from step 4" in out
    assert _logged_steps(model_dir) == [1, 2, 3, 4, 5, 6]
    assert "| synthetic_item_inference | zs_opt | entailment | no | accuracy |" in out

    results = json.loads((model_dir / "eval" / "results.json").read_text())
    assert results["step"] == 6 and results["split"] == "validation"
    # The held-out cluster, and the demo's reference task it trained on (marked seen).
    seen = {t["task"]: t["seen"] for t in results["tasks"]}
    assert seen == {"synthetic_item_inference": False, "synthetic_syllogism": False, "synthetic_larger_number": True}
    for entry in results["tasks"]:
        assert len(entry["templates"]) >= 5
        assert all(t["num_examples"] == 4 for t in entry["templates"])
        assert 0.0 <= entry["mean"]["accuracy"] <= 100.0

    # The run records itself: evaluating the directory needs no gin files, and an older step can be chosen.
    out_dir = tmp_path / "eval_step4"
    args = ["--checkpoint", str(model_dir), "--step", "4", "--cluster", "entailment", "--max_examples", "3"]
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "eval.py"), *args, "--output_dir", str(out_dir)],
        **{k: v for k, v in _command("eval.py", model_dir).items() if k != "args"}, capture_output=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "step 4" in result.stdout
    again = json.loads((out_dir / "results.json").read_text())
    assert again["step"] == 4 and all(t["num_examples"] == 3 for e in again["tasks"] for t in e["templates"])
    assert (out_dir / "results.md").read_text().startswith("# Evaluation (validation): entailment")
    assert sorted(p.name for p in (out_dir / "predictions").iterdir())[0].endswith("__zs_opt__t0.jsonl")


def test_sigterm_saves_the_step_and_exits_0(tmp_path):
    """The entry point's preemption path (resuming from the checkpoint is tested above and in test_preemption)."""
    model_dir = tmp_path / "run"
    command = _command("train.py", model_dir, "TRAIN_STEPS = 100000", "train_run.save_every = 100000")
    process = subprocess.Popen(**command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not _logged_steps(model_dir) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    out = process.communicate(timeout=120)[0]
    assert process.returncode == 0, out[-3000:]
    saved = int(re.search(r"Preempted: saved step (\d+)", out).group(1))
    assert sorted(int(p.name) for p in (model_dir / "checkpoints").iterdir()) == [saved]
    assert _logged_steps(model_dir)[-1] == saved


def test_decoder_only_prefix_lm_trains_and_evaluates(tmp_path):
    model_dir = tmp_path / "decoder"
    bindings = ["DecoderConfig.d_model = 32", "DecoderConfig.d_ff = 64", "DecoderConfig.num_layers = 1"]
    out = _run("train.py", model_dir, "--gin_file=runs/demo_decoder.gin", "TRAIN_STEPS = 2", *bindings)
    assert "| synthetic_item_inference | zs_opt | entailment | no | accuracy |" in out
    metadata = json.loads((model_dir / "checkpoints" / "2" / "metadata" / "metadata").read_text())
    assert metadata["architecture"] == "prefix_lm" and metadata["model_config"]["family"] == "decoder"
    assert metadata["layout"] == {"architecture": "prefix_lm", "start_id": 0, "inputs_eos": True}


def test_importing_the_library_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import it_jax.sharding, it_jax.models.t5, it_jax.train.trainer, it_jax.data.templates, it_jax.data.layout\n"
        "import it_jax.evaluation.metrics, it_jax.evaluation.report, it_jax.evaluation.results, it_jax.convert.hf\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
