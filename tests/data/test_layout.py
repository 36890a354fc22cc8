import numpy as np
import pytest
import seqio
import tensorflow as tf

from it_jax.data import layout, pipeline

EXAMPLES = [
    {"inputs": [7, 8, 5, 1], "targets": [3, 9, 1]},
    {"inputs": [8, 4, 9, 3, 1], "targets": [4, 1]},
    {"inputs": [6, 1], "targets": [5, 5, 5, 1]},
]
LENGTHS = {"inputs": 7, "targets": 8}


def _dataset():
    return tf.data.Dataset.from_generator(
        lambda: iter(EXAMPLES),
        output_signature={k: tf.TensorSpec([None], tf.int32) for k in ("inputs", "targets")},
    )


def _rows(converter):
    return [{k: v.tolist() for k, v in row.items()} for row in converter(_dataset(), LENGTHS).as_numpy_iterator()]


@pytest.mark.parametrize("pack", [False, True])
def test_prefix_lm_layout_equals_seqio_prefix_lm_converter(pack):
    ours = _rows(pipeline.feature_converter(layout.PREFIX_LM, pack=pack))
    theirs = _rows(seqio.PrefixLMFeatureConverter(pack=pack))
    assert len(ours) == len(theirs)
    for mine, seqios in zip(ours, theirs):
        assert mine.keys() == seqios.keys()
        # Unpacked, seqio also feeds the final EOS at the first padding position, where nothing is predicted.
        padding = np.asarray(seqios["decoder_target_tokens"]) == 0
        for row in (mine, seqios):
            row["decoder_input_tokens"] = np.where(padding, -1, row["decoder_input_tokens"]).tolist()
        assert mine == seqios


def test_causal_layout_puts_targets_right_after_bos_and_inputs():
    rows = _rows(pipeline.feature_converter(layout.causal_lm(bos_id=2), pack=False))
    first = rows[0]
    # [BOS] 7 8 5 (no EOS after the inputs) 3 9 EOS: reads all but the last, predicts all but the first.
    assert first["decoder_input_tokens"][:6] == [2, 7, 8, 5, 3, 9]
    assert first["decoder_target_tokens"][:6] == [7, 8, 5, 3, 9, 1]
    assert first["decoder_loss_weights"][:7] == [0, 0, 0, 1, 1, 1, 0]
    assert first["decoder_causal_attention"][:5] == [1, 1, 1, 1, 0]


@pytest.mark.parametrize("target", [layout.PREFIX_LM, layout.causal_lm(2), layout.causal_lm(None)])
def test_prompt_is_what_the_training_sequence_reads_before_the_targets(target):
    rows = _rows(pipeline.feature_converter(target, pack=False))
    for example, row in zip(EXAMPLES, rows):
        prompt = target.prompt(example["inputs"])
        weights = np.asarray(row["decoder_loss_weights"])
        first_target = int(np.argmax(weights))
        assert row["decoder_input_tokens"][: first_target + 1] == prompt
        scored = np.asarray(row["decoder_target_tokens"])[weights > 0].tolist()
        assert scored == example["targets"]


def test_layouts_round_trip_and_reject_unknown():
    for value in (layout.ENCODER_DECODER, layout.PREFIX_LM, layout.causal_lm(128000)):
        assert layout.PromptLayout.from_dict(value.to_dict()) == value
    with pytest.raises(ValueError, match="unknown architecture"):
        layout.PromptLayout("seq2seq")
    with pytest.raises(ValueError, match="empty prompt"):
        layout.causal_lm(None).prompt([1])


def test_default_layout_uses_the_vocabulary_bos_or_pad():
    byte = seqio.ByteVocabulary()
    assert layout.default_layout("encoder_decoder", byte) == layout.ENCODER_DECODER
    assert layout.default_layout("prefix_lm", byte) == layout.PREFIX_LM
    assert layout.default_layout("decoder_only", byte) == layout.causal_lm(0)


def test_a_conversation_gets_the_start_token_once():
    llama = layout.causal_lm(128000)
    assert llama.conversation_start([128000, 5, 6]) == []  # the template wrote the BOS
    assert llama.conversation_start([5, 6]) == [128000]
    assert layout.causal_lm(None).conversation_start([5, 6]) == []  # Qwen: no BOS
    assert layout.causal_lm(0).conversation_start([5, 6]) == [0]  # trained here with seqio's start
    with pytest.raises(ValueError, match="encoder-decoder"):
        layout.ENCODER_DECODER.conversation_start([5])
