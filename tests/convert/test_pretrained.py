import dataclasses
import json

import jax
import numpy as np
import pytest
import tiny
import seqio

from it_jax import sharding
from it_jax.convert import pretrained
from it_jax.models import decoder, registry, t5

T5_CONFIG = t5.T5Config(
    vocab_size=32128, d_model=8, d_ff=12, d_kv=2, num_heads=2, num_encoder_layers=1, num_decoder_layers=1
)
DECODER_CONFIG = decoder.DecoderConfig(
    vocab_size=64, d_model=16, d_ff=24, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=4,
    qkv_bias=True, tie_embeddings=True, scan_layers=True, param_dtype="bfloat16",
)


def test_round_trip_with_vocabulary(shared_data, tmp_path, random_params):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    params = random_params(T5_CONFIG)
    pretrained.save_pretrained(tmp_path / "m", config=T5_CONFIG, params=params, vocabulary_path=spiece, extra_ids=100)
    metadata = json.loads((tmp_path / "m" / "model.json").read_text())
    assert metadata["format"] == "it_jax.pretrained" and metadata["version"] == 1
    assert metadata["vocabulary"] == {"type": "sentencepiece", "file": "spiece.model", "extra_ids": 100}
    assert metadata["model_config"]["family"] == "t5"
    assert registry.config_from_dict(metadata["model_config"]) == T5_CONFIG

    loaded = pretrained.load_pretrained(tmp_path / "m")
    assert loaded.config == T5_CONFIG and loaded.extra_ids == 100
    assert loaded.vocabulary_path == str(tmp_path / "m" / "spiece.model")
    tiny.assert_bitwise_equal(params, loaded.params)
    vocabulary = pretrained.make_vocabulary(loaded)
    assert isinstance(vocabulary, seqio.SentencePieceVocabulary) and vocabulary.vocab_size == 32100
    assert pretrained.make_vocabulary(loaded, override_path=str(spiece)).vocab_size == 32100


def test_scanned_bfloat16_round_trip_without_vocabulary(tmp_path, random_params):
    params = random_params(DECODER_CONFIG, 2)
    pretrained.save_pretrained(tmp_path, config=DECODER_CONFIG, params=params, vocabulary_path=None)
    loaded = pretrained.load_pretrained(tmp_path)
    assert loaded.config == DECODER_CONFIG and loaded.vocabulary_path is None and loaded.extra_ids == 0
    tiny.assert_bitwise_equal(params, loaded.params)
    assert pretrained.make_vocabulary(loaded) is None


def test_restores_directly_onto_a_mesh(tmp_path, random_params):
    params = random_params(DECODER_CONFIG, 3)
    pretrained.save_pretrained(tmp_path, config=DECODER_CONFIG, params=params, vocabulary_path=None)
    mesh = sharding.create_mesh(data=2, fsdp=2, tensor=2)
    shardings = registry.model_spec(DECODER_CONFIG).param_shardings(mesh)
    loaded = pretrained.load_pretrained(tmp_path, shardings=shardings)
    kernel = loaded.params["layers"]["mlp"]["wi_0"]["kernel"]
    assert isinstance(kernel, jax.Array) and kernel.sharding == shardings["layers"]["mlp"]["wi_0"]["kernel"]
    assert len(kernel.sharding.device_set) == 8
    tiny.assert_bitwise_equal(params, jax.tree.map(np.asarray, loaded.params))


def test_missing_and_foreign_directories_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.json not found: not an it_jax pretrained directory"):
        pretrained.load_pretrained(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "something_else"}))
    with pytest.raises(ValueError, match="format 'something_else', expected 'it_jax.pretrained'"):
        pretrained.load_pretrained(tmp_path)
    (tmp_path / "model.json").write_text(json.dumps({"format": "it_jax.pretrained", "version": 2}))
    with pytest.raises(ValueError, match="version 2 unsupported"):
        pretrained.load_pretrained(tmp_path)


def test_params_not_matching_the_config_are_rejected(tmp_path, random_params):
    params = random_params(DECODER_CONFIG)
    message = r"layers\.mlp\.wo\.kernel has shape \(2, 24, 16\), the config needs \(2, 25, 16\)"
    with pytest.raises(ValueError, match=message):
        pretrained.save_pretrained(
            tmp_path / "a", config=dataclasses.replace(DECODER_CONFIG, d_ff=25), params=params, vocabulary_path=None
        )
    pretrained.save_pretrained(tmp_path / "b", config=DECODER_CONFIG, params=params, vocabulary_path=None)
    metadata = json.loads((tmp_path / "b" / "model.json").read_text())
    metadata["model_config"]["d_ff"] = 25
    (tmp_path / "b" / "model.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"does not match model.json's model_config: .*layers\.mlp\.wi_0\.kernel is "
                                         r"bfloat16\[2, 16, 24\], the config needs bfloat16\[2, 16, 25\]"):
        pretrained.load_pretrained(tmp_path / "b")
    with pytest.raises(FileExistsError, match="not empty"):
        pretrained.save_pretrained(tmp_path / "b", config=DECODER_CONFIG, params=params, vocabulary_path=None)


def test_byte_vocabulary_and_run_fields_round_trip(tmp_path, random_params):
    config = dataclasses.replace(T5_CONFIG, vocab_size=272)
    params = random_params(config)
    lengths, source = {"inputs": 12, "targets": 6}, {"run": "/runs/x", "step": 40}
    pretrained.save_pretrained(
        tmp_path, config=config, params=params, vocabulary_path=None, extra_ids=3, byte_vocabulary=True,
        task_feature_lengths=lengths, source=source,
    )
    metadata = json.loads((tmp_path / "model.json").read_text())
    assert metadata["vocabulary"] == {"type": "byte", "file": None, "extra_ids": 3}
    loaded = pretrained.load_pretrained(tmp_path)
    assert loaded.byte_vocabulary and loaded.vocabulary_path is None and loaded.extra_ids == 3
    assert loaded.task_feature_lengths == lengths and loaded.source == source
    assert pretrained.make_vocabulary(loaded) == seqio.ByteVocabulary(extra_ids=3)
    tiny.assert_bitwise_equal(params, loaded.params)


def test_vocabulary_types_are_checked_and_older_directories_still_load(shared_data, tmp_path, random_params):
    spiece = shared_data / "tokenizers" / "t5" / "spiece.model"
    pretrained.save_pretrained(tmp_path, config=T5_CONFIG, params=random_params(T5_CONFIG), vocabulary_path=spiece)
    metadata = json.loads((tmp_path / "model.json").read_text())
    for vocabulary, expected in (({"file": "spiece.model", "extra_ids": 0}, True), ({"file": None}, False)):
        (tmp_path / "model.json").write_text(json.dumps({**metadata, "vocabulary": vocabulary}))  # before "type"
        loaded = pretrained.load_pretrained(tmp_path)
        assert (pretrained.make_vocabulary(loaded) is not None) == expected and not loaded.byte_vocabulary
    for vocabulary, message in (
        ({"type": "wordpiece"}, "vocabulary type 'wordpiece' unknown"),
        ({"type": "byte", "file": "spiece.model"}, "a byte vocabulary has no file"),
        ({"type": "sentencepiece", "file": None}, "a SentencePiece one needs its file"),
    ):
        (tmp_path / "model.json").write_text(json.dumps({**metadata, "vocabulary": vocabulary}))
        with pytest.raises(ValueError, match=message):
            pretrained.load_pretrained(tmp_path)
    with pytest.raises(ValueError, match="a byte vocabulary has no file"):
        pretrained.save_pretrained(
            tmp_path / "b", config=T5_CONFIG, params={}, vocabulary_path=spiece, byte_vocabulary=True
        )
