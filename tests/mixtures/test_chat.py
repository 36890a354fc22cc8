"""The chat collection on the real offline data: every task registers, renders and tokenizes with loss weights."""

import os

import numpy as np
import pytest
import seqio

import mixtures.chat as chat_mixtures
from it_jax import errors
from it_jax.data import chat_tasks, packed_input
from it_jax.data import layout as layout_lib
from it_jax.data.context import TaskContext

DATA_DIR = os.path.join(os.path.dirname(__file__), "../../../shared/data/tfds_jsonl")
needs_data = pytest.mark.skipif(not os.path.isdir(os.path.join(DATA_DIR, "hh_rlhf_chat")),
                                reason="no offline chat data in ../shared/data")


def test_the_collection_needs_a_data_directory():
    with pytest.raises(errors.ConfigError, match="data_dir"):
        chat_mixtures.register(TaskContext(seqio.ByteVocabulary()))


@needs_data
def test_every_chat_task_reads_and_weighs_its_real_conversations():
    chat_mixtures.register(TaskContext(seqio.ByteVocabulary(), data_dir=DATA_DIR, chat_format="chatml"))
    counts = {(name, split): chat_tasks.chat_task_info(name).num_examples(split) for name, split in [
        ("chat_alpaca", "train"), ("chat_alpaca", "validation"), ("chat_self_instruct", "train"),
        ("chat_self_instruct", "validation"), ("chat_oasst1", "validation")]}
    assert counts == {("chat_alpaca", "train"): 1900, ("chat_alpaca", "validation"): 100,
                      ("chat_self_instruct", "train"): 175, ("chat_self_instruct", "validation"): 252,
                      ("chat_oasst1", "validation"): 188}
    info = chat_tasks.chat_task_info("chat_hh_rlhf")
    assert info.num_examples("train") + info.num_examples("validation") == 3884
    ids, weights, overflow = info.tokenize("validation", seqio.ByteVocabulary(), 2048)
    assert overflow.conversations == 195 and all(w.any() for w in weights)
    text = seqio.ByteVocabulary().decode(ids[0].tolist())
    assert text.startswith("<|im_start|>user\n") and "<|im_start|>assistant\n" in text
    assert set(seqio.get_mixture_or_task("chat_sft").tasks) >= {seqio.get_mixture_or_task("chat_alpaca")}


@needs_data
def test_the_sft_mixture_packs_whole_conversations_with_weights_on_replies_only():
    vocabulary = seqio.ByteVocabulary()
    chat_mixtures.register(TaskContext(vocabulary, data_dir=DATA_DIR, chat_format="chatml"))
    source = packed_input.PackedInput("chat_sft", task_feature_lengths={"inputs": 256, "targets": 256},
                                      layout=layout_lib.causal_lm(0), vocabulary=vocabulary, split="validation")
    batch = source.batch(0, range(16))
    targets, weights = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    assert (targets != 0).mean() > 0.75  # measured 0.83 over 50 batches: long conversations fill rows alone
    for row in range(16):
        runs = np.split(targets[row], np.flatnonzero(np.diff(weights[row]) != 0) + 1)
        starts_weighted = bool(weights[row][0])
        for k, run in enumerate(runs):
            if (k % 2 == 0) == starts_weighted:  # a weighted run: one assistant reply, or its cut-off start
                text = vocabulary.decode(run.tolist())
                assert "<|im_start|>" not in text
                assert text.endswith("<|im_end|>") or run is runs[-1]
