"""Exporting a training run for inference: scripts/convert_checkpoint.py --from_run, then scripts/infer.py on the
run directory and on the exported directory (tiny byte-vocabulary T5 trained two steps with the real trainer)."""

import contextlib
import dataclasses
import importlib.util
import io
import json
import pathlib
import shutil
import sys

import jax
import numpy as np
import pytest
import seqio
import tiny

from it_jax.convert import pretrained, tree
from it_jax.data import layout as layout_lib
from it_jax.data import vocab
from it_jax.evaluation import loading
from it_jax.models import registry
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train import trainer as trainer_lib

REPO = pathlib.Path(__file__).resolve().parents[2]
EXTRA_IDS = 7
# 259 byte ids + 7 extra ids, padded to 384 rows as the demo's byte T5 is.
CONFIG = dataclasses.replace(tiny.TINY, vocab_size=384)
LENGTHS = {"inputs": 12, "targets": 6}
EXAMPLES = [
    {"inputs": "Is the sky blue?", "targets": "yes"},
    {"inputs": "Übersetze: guten Morgen, 東京", "targets": "good morning", "id": 7},
    {"inputs": "Premise: a dog runs. Hypothesis: an animal moves.", "targets": "entailment"},
]


def _metadata(vocabulary: seqio.Vocabulary, config=CONFIG) -> dict:
    """What a training run records with its checkpoints (see `it_jax.launch`)."""
    return {
        "architecture": registry.architecture(config),
        "model_config": registry.config_to_dict(config),
        "vocabulary": type(vocabulary).__name__,
        "vocabulary_spec": vocab.describe(vocabulary),
        "layout": layout_lib.default_layout(registry.architecture(config), vocabulary).to_dict(),
        "task_feature_lengths": LENGTHS,
    }


def _train(model_dir, config, vocabulary, num_steps=2):
    return trainer_lib.train(
        trainer=tiny.t5_trainer(config=config), batches=tiny.t5_batches, model_dir=model_dir, num_steps=num_steps,
        save_every=1, metadata=_metadata(vocabulary, config), tensorboard=False,
    )


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """(run directory with checkpoints 1 and 2, the parameters of step 2)."""
    model_dir = tmp_path_factory.mktemp("run")
    state = _train(model_dir, CONFIG, seqio.ByteVocabulary(extra_ids=EXTRA_IDS))
    return model_dir, jax.tree.map(np.asarray, state.params)


@pytest.fixture(scope="module")
def exported(run, tmp_path_factory):
    """The run exported by the script: (pretrained directory, the summary it printed)."""
    out = tmp_path_factory.mktemp("exported") / "model"
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        _main("convert_checkpoint", ["--from_run", str(run[0]), "--out", str(out)])
    return out, printed.getvalue()


def _main(script: str, argv: list[str]):
    """Runs a script's `main` in this process (no second JAX start-up) with `argv`."""
    spec = importlib.util.spec_from_file_location(script, REPO / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    saved = sys.argv
    sys.argv = [script, *argv]
    try:
        return module.main() if script == "convert_checkpoint" else module.main(argv)
    finally:
        sys.argv = saved


def _error(script: str, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as raised:
        _main(script, argv)
    message = str(raised.value.code)
    assert "\n" not in message and message.startswith("error: "), message
    return message


def _infer(tmp_path, directory, *flags) -> list[dict]:
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in EXAMPLES), encoding="utf-8")
    _main("infer", ["--checkpoint", str(directory), "--input_file", str(source), "--output_file", str(out), *flags])
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def test_export_records_the_run_and_copies_its_parameters_bit_for_bit(run, exported):
    (run_dir, params), (exported, summary) = run, exported
    loaded = pretrained.load_pretrained(exported)
    assert loaded.config == CONFIG
    tiny.assert_bitwise_equal(params, loaded.params)
    metadata = json.loads((exported / "model.json").read_text())
    assert metadata["vocabulary"] == {"type": "byte", "file": None, "extra_ids": EXTRA_IDS}
    assert metadata["layout"] == {"architecture": "encoder_decoder", "start_id": 0, "inputs_eos": True}
    assert metadata["task_feature_lengths"] == LENGTHS
    assert metadata["source"] == {"run": str(run_dir), "step": 2}
    vocabulary = pretrained.make_vocabulary(loaded)
    assert isinstance(vocabulary, seqio.ByteVocabulary) and vocabulary.vocab_size == 259 + EXTRA_IDS
    assert vocabulary == seqio.ByteVocabulary(extra_ids=EXTRA_IDS)
    assert sorted(p.name for p in exported.iterdir()) == ["model.json", "params"]
    assert summary == (
        f"family: t5\nstep: 2\nparameters: {tree.num_params(params):,}\nvocabulary: bytes + 7 extra ids\n"
        f"layout: encoder_decoder\nwritten: {exported}\n"
    )


def test_an_older_step_is_exported_on_request(run, tmp_path):
    run_dir, latest = run
    loading.export_run(run_dir, tmp_path / "step1", step=1)
    loaded = pretrained.load_pretrained(tmp_path / "step1")
    checkpointer = checkpoints_lib.Checkpointer(checkpoints_lib.checkpoint_dir(run_dir))
    try:
        step1 = checkpointer.restore_params(jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), latest), 1)
    finally:
        checkpointer.close()
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, step1), loaded.params)
    assert not np.array_equal(loaded.params["decoder"]["final_norm"]["scale"], latest["decoder"]["final_norm"]["scale"])
    assert json.loads((tmp_path / "step1" / "model.json").read_text())["source"]["step"] == 1


def test_infer_on_the_run_and_on_its_export_gives_identical_outputs(run, exported, tmp_path):
    (run_dir, _), (exported, _) = run, exported
    predictions = _infer(tmp_path, run_dir, "--mode", "predict", "--max_decode_length", "6")
    assert _infer(tmp_path, exported, "--mode", "predict", "--max_decode_length", "6") == predictions
    scored = _infer(tmp_path, run_dir, "--mode", "score")
    assert _infer(tmp_path, exported, "--mode", "score") == scored
    assert _infer(tmp_path, run_dir, "--mode", "score", "--step", "2") == scored
    scores = [row["score"] for row in scored]
    older = [row["score"] for row in _infer(tmp_path, run_dir, "--mode", "score", "--step", "1")]
    assert np.all(np.isfinite(scores)) and older != scores  # --step is honoured
    assert all(isinstance(row["prediction"], str) for row in predictions)


def test_eval_on_the_run_and_on_its_export_gives_identical_results(run, exported, tmp_path, monkeypatch):
    flags = ["--tasks", "synthetic_item_inference", "--variants", "zs_opt", "--max_examples", "2", "--batch_size", "8"]
    for name, directory in (("run", run[0]), ("exported", exported[0])):
        with contextlib.redirect_stdout(io.StringIO()):
            _main("eval", ["--checkpoint", str(directory), *flags, "--output_dir", str(tmp_path / name)])
    results = {name: json.loads((tmp_path / name / "results.json").read_text()) for name in ("run", "exported")}
    assert results["run"]["tasks"] == results["exported"]["tasks"] and results["run"]["step"] == 2

    def predictions(name):
        return {p.name: p.read_text() for p in (tmp_path / name / "predictions").iterdir()}

    assert predictions("run") == predictions("exported") and len(predictions("run")) >= 5
    assert "option_scores" in next(iter(predictions("run").values()))


def test_missing_step_lists_the_available_ones(run, tmp_path):
    run_dir, _ = run
    message = _error("convert_checkpoint", ["--from_run", str(run_dir), "--step", "5", "--out", str(tmp_path)])
    assert message == f"error: {run_dir / 'checkpoints'} has no step 5; it has steps [1, 2]"
    source = tmp_path / "in.jsonl"
    source.write_text('{"inputs": "a"}\n')
    flags = ["--input_file", str(source), "--output_file", str(tmp_path / "o.jsonl")]
    assert _error("infer", ["--checkpoint", str(run_dir), "--step", "5", *flags]) == message
    assert "neither a model directory" in _error("infer", ["--checkpoint", str(tmp_path), *flags])


def test_damaged_parameters_are_a_one_line_error(run, tmp_path):
    copy = pathlib.Path(shutil.copytree(run[0], tmp_path / "run"))
    data_file = copy / "checkpoints" / "2" / "data" / "metadata"
    data = json.loads(data_file.read_text())
    name = "params.decoder.final_norm.scale"
    data["fingerprints"][name][0] += 1  # as if that array's file had changed after saving
    data_file.write_text(json.dumps(data))
    message = _error("convert_checkpoint", ["--from_run", str(copy), "--out", str(tmp_path / "out")])
    assert message == (
        f"error: checkpoint step 2 in {copy / 'checkpoints'} is unreadable: fingerprint mismatch (the files were "
        f"damaged after saving) in {name}"
    )
    assert not (tmp_path / "out").exists()


def test_default_step_is_the_latest_complete_one(run, tmp_path):
    copy = pathlib.Path(shutil.copytree(run[0], tmp_path / "run"))
    (copy / "checkpoints" / "2" / "commit_success.txt").unlink()
    assert loading.export_run(copy, tmp_path / "out").step == 1
    message = _error("convert_checkpoint", ["--from_run", str(copy), "--step", "2", "--out", str(tmp_path / "o")])
    assert message.endswith("is unreadable: no commit_success.txt (the save did not complete)")


def test_sentencepiece_run_exports_its_model_file(shared_data, tmp_path):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    config = dataclasses.replace(tiny.TINY, vocab_size=32128, d_model=8, d_ff=8, d_kv=4, num_heads=2)
    vocabulary = seqio.SentencePieceVocabulary(str(spiece), extra_ids=100)
    state = _train(tmp_path / "run", config, vocabulary, num_steps=1)
    loading.export_run(tmp_path / "run", tmp_path / "out")
    loaded = pretrained.load_pretrained(tmp_path / "out")
    assert (tmp_path / "out" / "spiece.model").read_bytes() == spiece.read_bytes()
    assert loaded.extra_ids == 100 and not loaded.byte_vocabulary
    tiny.assert_bitwise_equal(jax.tree.map(np.asarray, state.params), loaded.params)
    rebuilt = pretrained.make_vocabulary(loaded)
    assert isinstance(rebuilt, seqio.SentencePieceVocabulary) and rebuilt.vocab_size == vocabulary.vocab_size == 32100
