"""`HFTokenizerVocabulary` over a tiny byte-level BPE tokenizer trained here (no downloads)."""

import json
import pathlib

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from it_jax.data import context as context_lib
from it_jax.data import hf_vocab, tasks, tokenized, vocab

SPECIALS = ["<|begin_of_text|>", "<|eot_id|>", "<pad>"]
WORDS = ["the", "cat", "sat", "on", "mat", "café", "naïve", "über", "日本語", "東京", "🙂", "🚀", "déjà", "vu"]
TEXTS = [
    "The cat sat on the mat.",
    "café naïve über déjà vu",
    "日本語のテキスト、東京タワー。",
    "emoji 🙂🚀 and ZWJ 👩‍💻 too",
    "<|begin_of_text|>Hello<|eot_id|> after <pad>",
    "  leading spaces and\ttabs\nnew lines  ",
    "unseen: Ωmega ß ĳ 한국어 ✓",
    "",
]


def _corpus() -> list[str]:
    rng = np.random.default_rng(0)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(3, 9)))) for _ in range(300)]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> pathlib.Path:
    """tokenizer.json (byte-level BPE with the three special tokens) and a tokenizer_config.json naming them."""
    directory = tmp_path_factory.mktemp("tokenizer")
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    tokenizer.add_special_tokens(SPECIALS)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>", "pad_token": "<pad>"}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(scope="module")
def reference(tokenizer_dir) -> tokenizers.Tokenizer:
    return tokenizers.Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))


@pytest.fixture(scope="module")
def vocabulary(tokenizer_dir) -> hf_vocab.HFTokenizerVocabulary:
    return hf_vocab.HFTokenizerVocabulary(tokenizer_dir)


def test_ids_and_special_ids_are_the_tokenizers(vocabulary, reference):
    for text in TEXTS:
        assert vocabulary.encode(text) == reference.encode(text, add_special_tokens=False).ids
    bos, eot, pad = (reference.token_to_id(t) for t in SPECIALS)
    assert (vocabulary.bos_id, vocabulary.eos_id, vocabulary.pad_id, vocabulary.unk_id) == (bos, eot, pad, None)
    assert vocabulary.encode("<|begin_of_text|>Hi<|eot_id|>")[0] == bos  # special tokens in text: one id each
    assert vocabulary.encode("<|begin_of_text|>Hi<|eot_id|>")[-1] == eot
    assert vocabulary.vocab_size == reference.get_vocab_size(with_added_tokens=True) == pad + 1
    ids = tokenized.encode_texts(vocabulary, TEXTS)
    assert [i.tolist() for i in ids] == [vocabulary.encode(t) for t in TEXTS]


def test_decode_round_trips_and_stops_at_eos(vocabulary):
    for text in TEXTS:
        assert vocabulary._decode(vocabulary.encode(text)) == text
    assert vocabulary.decode(vocabulary.encode("<|begin_of_text|>naïve 🙂")) == "<|begin_of_text|>naïve 🙂"
    assert vocabulary.decode(vocabulary.encode("東京<|eot_id|>rest")) == "東京"
    assert vocabulary.decode(np.asarray(vocabulary.encode("café"), np.int32)) == "café"


def test_tf_encode_and_decode_match_python(vocabulary):
    for text in TEXTS:
        ids = vocabulary.encode_tf(tf.constant(text))
        assert ids.dtype == tf.int32 and ids.shape.rank == 1
        assert ids.numpy().tolist() == vocabulary.encode(text)
    batch = vocabulary.encode_tf(tf.constant(TEXTS[:3]))
    assert batch.to_list() == [vocabulary.encode(t) for t in TEXTS[:3]]
    dataset = tf.data.Dataset.from_tensor_slices(TEXTS).map(vocabulary.encode_tf)
    assert dataset.element_spec.shape.as_list() == [None]
    assert [x.tolist() for x in dataset.as_numpy_iterator()] == [vocabulary.encode(t) for t in TEXTS]
    ids = tf.constant([vocabulary.encode("déjà vu") + [vocabulary.eos_id, 5], vocabulary.encode("日本語 cat x")])
    assert [t.decode() for t in vocabulary.decode_tf(ids).numpy()] == ["déjà vu", "日本語 cat x"]
    assert vocabulary.decode_tf(tf.constant(vocabulary.encode("🚀 on"))).numpy().decode() == "🚀 on"


def test_task_flows_through_get_dataset_with_eos(vocabulary):
    examples = [{"a": "café 🙂", "b": "東京<pad>"}, {"a": "the cat", "b": "sat"}]
    name = "test_hf_vocab_task"
    tasks.register_task(
        name,
        source=lambda split: examples,
        templates=[("{a}", "{b}")],
        cluster="test_hf_vocab",
        context=context_lib.TaskContext(vocabulary),
    )
    context_lib.check_vocabularies(name, hf_vocab.HFTokenizerVocabulary(vocabulary.tokenizer_dir))
    dataset = seqio.get_mixture_or_task(name).get_dataset({"inputs": 16, "targets": 16}, split="train", shuffle=False)
    rows = list(dataset.as_numpy_iterator())
    assert len(rows) == len(examples)
    for example, row in zip(examples, rows):
        assert row["inputs"].tolist() == vocabulary.encode(example["a"]) + [vocabulary.eos_id]
        assert row["targets"].tolist() == vocabulary.encode(example["b"]) + [vocabulary.eos_id]
        assert vocabulary.decode(row["targets"]) == example["b"]
    with pytest.raises(Exception, match="tokenizes"):
        context_lib.check_vocabularies(name, seqio.ByteVocabulary())


def test_make_vocabulary_and_describe_round_trip(tokenizer_dir, vocabulary):
    built = vocab.make_vocabulary(tokenizer_dir=str(tokenizer_dir))
    assert built == vocabulary and isinstance(built, hf_vocab.HFTokenizerVocabulary)
    spec = vocab.describe(built)
    assert spec == {"tokenizer_dir": str(tokenizer_dir.absolute())}
    assert vocab.make_vocabulary(**json.loads(json.dumps(spec))) == built
    assert built != seqio.ByteVocabulary()
    with pytest.raises(ValueError, match="not both"):
        vocab.make_vocabulary(sentencepiece_model="spiece.model", tokenizer_dir=str(tokenizer_dir))


def test_special_ids_from_other_files_and_missing_eos(tmp_path, tokenizer_dir, reference):
    (tmp_path / "tokenizer.json").write_bytes((tokenizer_dir / "tokenizer.json").read_bytes())
    with pytest.raises(ValueError, match=r"no EOS id: .*tokenizer_config.json field eos_token"):
        hf_vocab.HFTokenizerVocabulary(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [7, 8], "bos_token_id": 3}))
    vocabulary = hf_vocab.HFTokenizerVocabulary(tmp_path)
    assert (vocabulary.eos_id, vocabulary.bos_id, vocabulary.pad_id) == (7, 3, 7)  # no pad: EOS pads
    (tmp_path / "special_tokens_map.json").write_text(json.dumps({"eos_token": {"content": "<|eot_id|>"}}))
    assert hf_vocab.HFTokenizerVocabulary(tmp_path).eos_id == reference.token_to_id("<|eot_id|>")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|missing|>"}))
    with pytest.raises(ValueError, match=r"tokenizer_config.json field eos_token: token '<\|missing\|>'"):
        hf_vocab.HFTokenizerVocabulary(tmp_path)
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        hf_vocab.HFTokenizerVocabulary(tmp_path / "nowhere")


def test_transformers_auto_tokenizer_gives_the_same_ids(tokenizer_dir, vocabulary):
    transformers = pytest.importorskip("transformers")
    try:
        auto = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    except (OSError, ValueError) as error:
        pytest.skip(f"transformers does not load a bare tokenizer.json directory: {error}")
    for text in TEXTS:
        assert auto.encode(text, add_special_tokens=False) == vocabulary.encode(text)
    assert auto.eos_token_id == vocabulary.eos_id and auto.pad_token_id == vocabulary.pad_id
