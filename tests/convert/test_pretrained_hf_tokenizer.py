"""A pretrained directory that records a Hugging Face tokenizer (type "hf_tokenizer")."""

import json

import pytest
import tokenizers
from tokenizers import models, pre_tokenizers

from it_jax.convert import pretrained
from it_jax.data import hf_vocab
from it_jax.models import decoder

CONFIG = decoder.DecoderConfig(vocab_size=16, d_model=8, d_ff=12, num_layers=1, num_heads=2, num_kv_heads=1, head_dim=4)


@pytest.fixture
def hf_dir(tmp_path):
    """A Hugging Face directory's tokenizer files: a word-level tokenizer.json and its configs."""
    directory = tmp_path / "hf"
    directory.mkdir()
    words = ["<unk>", "hello", "world", "<s>", "</s>"]
    tokenizer = tokenizers.Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))
    (directory / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "unk_token": "<unk>"}))
    (directory / "generation_config.json").write_text(json.dumps({"eos_token_id": 4}))
    (directory / "config.json").write_text("{}")  # not a tokenizer file: not copied
    return directory


def test_hf_tokenizer_is_copied_recorded_and_rebuilt(tmp_path, hf_dir, random_params):
    out = pretrained.save_pretrained(
        tmp_path / "m", config=CONFIG, params=random_params(CONFIG), vocabulary_path=None, tokenizer_dir=hf_dir
    )
    metadata = json.loads((out / "model.json").read_text())
    assert metadata["vocabulary"] == {"type": "hf_tokenizer", "file": "tokenizer.json", "extra_ids": 0}
    assert {"tokenizer.json", "tokenizer_config.json", "generation_config.json"} <= {p.name for p in out.iterdir()}
    assert not (out / "config.json").exists() and not (out / "special_tokens_map.json").exists()
    loaded = pretrained.load_pretrained(out)
    assert loaded.tokenizer_dir == str(out) and loaded.vocabulary_path is None and not loaded.byte_vocabulary
    vocabulary = pretrained.make_vocabulary(loaded)
    assert vocabulary == hf_vocab.HFTokenizerVocabulary(hf_dir)
    assert vocabulary.encode("hello world") == [1, 2]
    assert (vocabulary.eos_id, vocabulary.bos_id, vocabulary.unk_id, vocabulary.pad_id) == (4, 3, 0, 4)
    assert pretrained.make_vocabulary(loaded, override_path=str(hf_dir)) == vocabulary


def test_hf_tokenizer_is_the_whole_vocabulary(tmp_path, hf_dir, random_params):
    params = random_params(CONFIG)
    with pytest.raises(ValueError, match="tokenizer_dir is the whole vocabulary"):
        pretrained.save_pretrained(
            tmp_path / "a",
            config=CONFIG,
            params=params,
            vocabulary_path=None,
            byte_vocabulary=True,
            tokenizer_dir=hf_dir,
        )
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        pretrained.save_pretrained(
            tmp_path / "b", config=CONFIG, params=params, vocabulary_path=None, tokenizer_dir=tmp_path
        )
    out = pretrained.save_pretrained(
        tmp_path / "c", config=CONFIG, params=params, vocabulary_path=None, tokenizer_dir=hf_dir
    )
    metadata = json.loads((out / "model.json").read_text())
    (out / "model.json").write_text(json.dumps({**metadata, "vocabulary": {"type": "hf_tokenizer", "file": None}}))
    with pytest.raises(ValueError, match="needs file 'tokenizer.json'"):
        pretrained.load_pretrained(out)
