"""Token start characters for each vocabulary: ids equal the vocabulary's own, starts place each token in the text."""

import os

import numpy as np
import pytest
import seqio
import tokenizers
from tokenizers import models, pre_tokenizers, trainers

from it_jax.data import offsets

SPIECE = os.path.join(os.path.dirname(__file__), "../../../shared/data/tokenizers/t5/spiece.model")
TEXTS = ["héllo wörld", "<|im_start|>user\nWhat is 2 + 2?<|im_end|>\n", "日本語 and emoji 🙂 mixed", "  spaced  out "]


def _check(vocabulary, text, ids, starts):
    assert ids.dtype == np.int32 and len(ids) == len(starts)
    assert np.all(np.diff(starts) >= 0), "token starts must not go backwards"
    assert starts.min(initial=0) >= 0 and starts.max(initial=0) < len(text)


def test_byte_vocabulary_starts_at_the_character_of_each_byte():
    vocabulary = seqio.ByteVocabulary()
    ids, starts = offsets.encode_with_starts(vocabulary, "aé🙂b")
    assert ids.tolist() == list(vocabulary.encode("aé🙂b"))
    assert starts.tolist() == [0, 1, 1, 2, 2, 2, 2, 3]


@pytest.mark.skipif(not os.path.isfile(SPIECE), reason="no T5 SentencePiece model in ../shared/data")
@pytest.mark.parametrize("text", TEXTS)
def test_sentencepiece_ids_equal_seqio_and_starts_point_at_each_piece(text):
    vocabulary = seqio.SentencePieceVocabulary(SPIECE)
    ids, starts = offsets.encode_with_starts(vocabulary, text)
    assert ids.tolist() == list(vocabulary.encode(text))
    _check(vocabulary, text, ids, starts)
    world = text.find("wörld")
    if world >= 0:  # the first piece of "wörld" starts at its "w"
        assert world in starts.tolist()


def test_hugging_face_tokenizer_starts_are_its_offsets():
    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(TEXTS * 5, trainer)
    text = TEXTS[1]
    ids, starts = offsets.encode_with_starts(tokenizer, text)
    assert ids.tolist() == tokenizer.encode(text, add_special_tokens=False).ids
    assert ids[0] == tokenizer.token_to_id("<|im_start|>") and starts[0] == 0
    assert starts[1] == len("<|im_start|>")


def test_another_vocabulary_is_refused_by_name():
    class Opaque:
        pass

    with pytest.raises(TypeError, match="Opaque"):
        offsets.encode_with_starts(Opaque(), "text")
