"""scripts/train.py and scripts/eval.py end to end: train, resume, evaluate (tiny sizes)."""

import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = [
    "T5Config.d_model = 32",
    "T5Config.d_ff = 64",
    "T5Config.d_kv = 8",
    "T5Config.num_heads = 2",
    "T5Config.num_encoder_layers = 1",
    "T5Config.num_decoder_layers = 1",
    "train_run.batch_size = 8",
    "train_run.save_every = 2",
    "train_run.log_every = 1",
    "eval_run.max_examples = 4",
]


def _run(script, model_dir, *bindings):
    args = [sys.executable, str(REPO / "scripts" / script), f"--model_dir={model_dir}"]
    args += [b if b.startswith("--") else f"--gin_bindings={b}" for b in (*TINY, *bindings)]
    env = {**os.environ, "XLA_FLAGS": "", "PYTHONPATH": str(REPO)}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600, cwd=REPO)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_train_resume_and_evaluate(tmp_path):
    model_dir = tmp_path / "run"
    _run("train.py", model_dir, "TRAIN_STEPS = 4", "main.evaluate = False")
    assert sorted(p.name for p in (model_dir / "checkpoints").iterdir()) == ["2", "4"]

    out = _run("train.py", model_dir, "TRAIN_STEPS = 6")
    assert "Resuming from step 4" in out
    steps = [json.loads(line)["step"] for line in (model_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]
    assert "| synthetic_item_inference | entailment | accuracy |" in out

    results = json.loads((model_dir / "eval" / "results.json").read_text())
    assert set(results) == {"synthetic_item_inference", "synthetic_syllogism"}
    for entry in results.values():
        assert len(entry["templates"]) >= 5
        assert all(t["num_examples"] == 4 for t in entry["templates"])
        assert 0.0 <= entry["mean"]["accuracy"] <= 100.0

    (model_dir / "eval" / "results.md").unlink()
    out = _run("eval.py", model_dir)
    assert "Restored step 6" in out
    assert (model_dir / "eval" / "results.md").read_text().startswith("# Zero-shot evaluation")


def test_decoder_only_prefix_lm_trains_and_evaluates(tmp_path):
    model_dir = tmp_path / "decoder"
    bindings = ["DecoderConfig.d_model = 32", "DecoderConfig.d_ff = 64", "DecoderConfig.num_layers = 1"]
    out = _run("train.py", model_dir, "--gin_file=runs/demo_decoder.gin", "TRAIN_STEPS = 2", *bindings)
    assert "| synthetic_item_inference | entailment | accuracy |" in out
    metadata = json.loads((model_dir / "checkpoints" / "2" / "metadata" / "metadata").read_text())
    assert metadata["architecture"] == "prefix_lm" and metadata["model_config"]["family"] == "decoder"


def test_importing_the_library_does_not_import_tensorflow():
    code = (
        "import sys\n"
        "import it_jax.sharding, it_jax.models.t5, it_jax.train.trainer, it_jax.data.templates\n"
        "import it_jax.evaluation.metrics, it_jax.evaluation.report\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
