"""scripts/infer.py on saved pretrained directories of both families, in both modes."""

import importlib.util
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio

from it_jax.convert import pretrained
from it_jax.models import decoder, decoding, registry, t5

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = {
    "t5": t5.T5Config(vocab_size=32128, d_model=16, d_ff=32, d_kv=4, num_heads=2, num_encoder_layers=1, num_decoder_layers=1),
    "decoder": decoder.DecoderConfig(
        vocab_size=32128, d_model=16, d_ff=32, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=8
    ),
}
EXAMPLES = [
    {"inputs": "Is the sky blue?", "targets": "yes"},
    {"inputs": "Translate to German: good morning", "targets": "guten Morgen", "id": 7},
    {"inputs": "Premise: a dog runs. Hypothesis: an animal moves.", "targets": "entailment"},
]


def _infer():
    spec = importlib.util.spec_from_file_location("infer", REPO / "scripts" / "infer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(params=sorted(CONFIGS))
def checkpoint(request, tmp_path, shared_data):
    config = CONFIGS[request.param]
    params = registry.model_spec(config).init_params(0)
    directory = tmp_path / "ckpt"
    vocab = shared_data / "tokenizers" / "t5" / "spiece.model"
    pretrained.save_pretrained(directory, config=config, params=params, vocabulary_path=vocab, extra_ids=100)
    return request.param, directory, config, params, seqio.SentencePieceVocabulary(str(vocab), extra_ids=100)


def _run(tmp_path, directory, *flags):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(e) + "\n" for e in EXAMPLES), encoding="utf-8")
    _infer().main(["--checkpoint", str(directory), "--input_file", str(source), "--output_file", str(out), *flags])
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


def _sequences(family, vocab, example):
    """(model inputs, targets) ids of one example in the default layouts: T5's encoder reads inputs + EOS; a
    decoder with no recorded layout and a vocabulary without BOS reads the start id 0, then the inputs."""
    inputs = list(vocab.encode(example["inputs"]))
    targets = list(vocab.encode(example["targets"])) + [1]
    return (inputs + [1] if family == "t5" else [0] + inputs), targets


def test_score_is_the_sum_of_target_log_probabilities(tmp_path, checkpoint):
    family, directory, config, params, vocab = checkpoint
    rows = _run(tmp_path, directory, "--mode", "score", "--batch_size", "2")
    model = registry.model_spec(config).bind(params)
    for example, row in zip(EXAMPLES, rows):
        assert {k: row[k] for k in example} == example
        inputs, targets = _sequences(family, vocab, example)
        if family == "t5":
            logits = model(jnp.asarray([inputs]), jnp.asarray([[0] + targets[:-1]]))[0]
        else:
            logits = model(jnp.asarray([inputs + targets]))[0, len(inputs) - 1 : -1]
        log_probs = jax.nn.log_softmax(logits)
        expected = sum(float(log_probs[i, t]) for i, t in enumerate(targets))
        np.testing.assert_allclose(row["score"], expected, rtol=1e-4)


def test_predict_greedy_matches_the_decoding_library(tmp_path, checkpoint):
    family, directory, config, params, vocab = checkpoint
    rows = _run(tmp_path, directory, "--mode", "predict", "--max_decode_length", "5")
    model = registry.model_spec(config).bind(params)
    for example, row in zip(EXAMPLES, rows):
        inputs, _ = _sequences(family, vocab, example)
        tokens = decoding.generate(model, jnp.asarray([inputs]), max_decode_length=5, eos_id=1)[0].tolist()
        tokens = tokens[: tokens.index(1)] if 1 in tokens else tokens
        assert row["prediction"] == vocab.decode([t for t in tokens if t > 0])


def test_sampling_and_beam_flags_run(tmp_path, checkpoint):
    _, directory, *_ = checkpoint
    sampled = _run(tmp_path, directory, "--decode", "sample", "--top_k", "5", "--seed", "3", "--max_decode_length", "4")
    again = _run(tmp_path, directory, "--decode", "sample", "--top_k", "5", "--seed", "3", "--max_decode_length", "4")
    assert [r["prediction"] for r in sampled] == [r["prediction"] for r in again]
    greedy = _run(tmp_path, directory, "--max_decode_length", "4")
    assert [r["prediction"] for r in sampled] != [r["prediction"] for r in greedy]  # --decode is honoured
    beams = _run(tmp_path, directory, "--decode", "beam", "--beam_size", "2", "--max_decode_length", "4")
    assert all(isinstance(r["prediction"], str) for r in beams)


def test_bad_input_lines_name_the_file_and_line(tmp_path, checkpoint):
    _, directory, *_ = checkpoint
    source = tmp_path / "bad.jsonl"
    source.write_text('{"inputs": "a", "targets": "b"}\n{"inputs": "c"}\n', encoding="utf-8")
    flags = ["--checkpoint", str(directory), "--input_file", str(source), "--output_file", str(tmp_path / "o")]
    with pytest.raises(SystemExit, match=r"bad.jsonl:2: field \"targets\""):
        _infer().main([*flags, "--mode", "score"])
    source.write_text('{"inputs": "a"}\nnot json\n', encoding="utf-8")
    with pytest.raises(SystemExit, match="bad.jsonl:2: not valid JSON"):
        _infer().main(flags)
