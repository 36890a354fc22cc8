"""--to_hf of a byte-vocabulary model: a ByT5Tokenizer with seqio.ByteVocabulary's ids, and the same logits."""


import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio
import transformers

from it_jax.cli import convert_checkpoint
from it_jax.convert import pretrained
from it_jax.models import registry, t5

EXTRA_IDS = 5
# 259 byte ids + 5 extra ids, in 272 rows.
CONFIG = t5.T5Config(
    vocab_size=272, d_model=16, d_ff=24, d_kv=4, num_heads=2, num_encoder_layers=2, num_decoder_layers=1
)
TEXTS = ["Is the sky blue?", "Übersetze: Straße, 東京 — ça va? 🙂", "", "tab\tand\nnewline"]


def _convert(*argv) -> None:
    convert_checkpoint.main([str(a) for a in argv])


@pytest.fixture(scope="module")
def exported(tmp_path_factory, random_params):
    """(it_jax params, the Hugging Face directory --to_hf wrote from a byte-vocabulary pretrained directory)."""
    params = random_params(CONFIG, 4)
    root = tmp_path_factory.mktemp("byte")
    pretrained.save_pretrained(
        root / "ckpt", config=CONFIG, params=params, vocabulary_path=None, extra_ids=EXTRA_IDS, byte_vocabulary=True
    )
    _convert("--to_hf", root / "ckpt", "--out", root / "hf")
    return params, root / "hf"


def test_the_tokenizer_gives_seqio_byte_vocabulary_ids(exported):
    _, hf_dir = exported
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    vocabulary = seqio.ByteVocabulary(extra_ids=EXTRA_IDS)
    assert type(tokenizer).__name__ == "ByT5Tokenizer" and len(tokenizer) == vocabulary.vocab_size
    for text in TEXTS:
        ids = list(vocabulary.encode(text))
        assert tokenizer(text)["input_ids"] == ids + [vocabulary.eos_id], text
        assert tokenizer.decode(ids) == vocabulary.decode(ids) == text
    assert (tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) == (0, 1, 2)
    assert vocabulary.encode("é") == [0xC3 + 3, 0xA9 + 3]
    # T5's sentinel order: <extra_id_0> is the last id, as seqio's span corruption numbers sentinels.
    sentinels = tokenizer.convert_tokens_to_ids([f"<extra_id_{i}>" for i in range(EXTRA_IDS)])
    assert sentinels == [vocabulary.vocab_size - 1 - i for i in range(EXTRA_IDS)]


def test_transformers_logits_match_it_jax(exported, transformers_logits):
    params, hf_dir = exported
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    model = transformers.AutoModelForSeq2SeqLM.from_pretrained(hf_dir).eval()
    inputs = tokenizer(TEXTS[:2] + TEXTS[3:], padding=True, return_tensors="np")["input_ids"]
    targets = tokenizer(["yes", "ça", "no way"], padding=True, return_tensors="np")["input_ids"]
    batch = {"inputs": inputs, "targets": np.pad(targets, ((0, 0), (1, 0)))[:, :-1]}  # decoder starts at 0
    reference = transformers_logits(model, batch)
    forward = jax.jit(lambda p, x, y: registry.model_spec(CONFIG).bind(p)(x, y))
    ours = np.asarray(forward(params, jnp.asarray(batch["inputs"]), jnp.asarray(batch["targets"])))
    difference = np.abs(ours - reference).max()
    print(f"max |logit diff| vs transformers = {difference:.3g} (logits up to {np.abs(reference).max():.3g})")
    assert difference <= 1e-4


def test_the_summary_names_the_byte_tokenizer(tmp_path, random_params, capsys):
    pretrained.save_pretrained(
        tmp_path / "ckpt", config=CONFIG, params=random_params(CONFIG), vocabulary_path=None, byte_vocabulary=True
    )
    _convert("--to_hf", tmp_path / "ckpt", "--out", tmp_path / "hf")
    assert "vocabulary: bytes + 0 extra ids (ByT5Tokenizer)" in capsys.readouterr().out
    assert len(transformers.AutoTokenizer.from_pretrained(tmp_path / "hf")) == 259
