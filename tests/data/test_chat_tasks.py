"""Chat tasks: registered as seqio tasks, tokenized with loss weights exactly on the trained turns, through
packing and mixing, with overflowing conversations truncated or split and counted."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import seqio

import mixtures.synthetic as synthetic
from it_jax.data import chat_tasks, mixing, packed_input, pipeline
from it_jax.data import layout as layout_lib
from it_jax.data.context import TaskContext
from it_jax.models import decoder
from it_jax.models.spec import ModelSpec
from it_jax.train import losses

BYTES = seqio.ByteVocabulary()
CONTEXT = TaskContext(BYTES, chat_format="chatml")
LAYOUT = layout_lib.causal_lm(0)
LENGTHS = {"inputs": 160, "targets": 161}  # decoder rows of 320 tokens


def _conversation(i: int, turns: int = 2) -> list[dict]:
    messages = [{"role": "system", "content": f"Be brief ({i})."}] if i % 2 else []
    for t in range(turns):
        messages.append({"role": "user", "content": f"Question {t} of chat {i}?"})
        messages.append({"role": "assistant", "content": f"Answer {t} to chat {i}, é{'!' * (i % 3)}"})
    return messages


@pytest.fixture
def chat_task(tmp_path):
    for split, count in (("train", 12), ("validation", 4)):
        lines = [json.dumps({"messages": _conversation(i)}) for i in range(count)]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    name = "test_chat_task"
    chat_tasks.register_chat_task(name, source=str(tmp_path / "{split}.jsonl"), context=CONTEXT)
    yield name
    seqio.TaskRegistry.remove(name)


def _weighted_runs(row_tokens: np.ndarray, row_weights: np.ndarray) -> list[str]:
    """The decoded text of each maximal run of weighted target tokens."""
    runs, current = [], []
    for token, weight in zip(row_tokens.tolist(), row_weights.tolist()):
        if weight:
            current.append(token)
        elif current:
            runs.append(BYTES.decode(current))
            current = []
    if current:
        runs.append(BYTES.decode(current))
    return runs


@pytest.mark.parametrize("pack", [True, False])
def test_loss_weights_cover_exactly_the_assistant_turns_after_packing(chat_task, pack):
    source = packed_input.PackedInput(chat_task, task_feature_lengths=LENGTHS, layout=LAYOUT, vocabulary=BYTES,
                                      pack=pack)
    batch = source.batch(0, range(4))
    expected = {f"Answer {t} to chat {i}, é{'!' * (i % 3)}<|im_end|>" for i in range(12) for t in range(2)}
    runs = [run for r in range(4) for run in _weighted_runs(batch["decoder_target_tokens"][r],
                                                           batch["decoder_loss_weights"][r])]
    assert runs and set(runs) <= expected
    segments = batch.get("decoder_segment_ids", batch["decoder_loss_weights"] * 0 + 1)
    assert len(runs) == 2 * len({(r, s) for r in range(4) for s in set(segments[r].tolist()) - {0}})
    assert not (batch["decoder_loss_weights"] * (batch["decoder_target_tokens"] == 0)).any()


def test_sft_loss_equals_a_masked_loss_computed_from_the_text(chat_task):
    source = packed_input.PackedInput(chat_task, task_feature_lengths=LENGTHS, layout=LAYOUT, vocabulary=BYTES,
                                      pack=False)
    batch = source.batch(3, range(2))
    config = decoder.DecoderConfig(vocab_size=384, d_model=32, d_ff=64, num_layers=1, num_heads=2,
                                   num_kv_heads=1, head_dim=16)
    spec = ModelSpec.create(lambda rngs: decoder.Decoder(config, rngs=rngs))
    logits = spec.bind(spec.init_params(0)).logits_from_features({k: jnp.asarray(v) for k, v in batch.items()})
    log_probs = np.asarray(jax.nn.log_softmax(logits.astype(jnp.float32)))
    total, count = 0.0, 0
    for r, example in enumerate(source.rows(3, range(2))):
        text = BYTES.decode(source.store.streams["sequence"][0][
            source.store.streams["sequence"][1][example[0]] + 1 : source.store.streams["sequence"][1][example[0] + 1]
        ].tolist())
        weighted = np.zeros(len(text.encode("utf-8")), bool)  # by byte: the assistant contents + <|im_end|>
        for start in [i for i in range(len(text)) if text.startswith("<|im_start|>assistant\n", i)]:
            begin = len(text[: start + len("<|im_start|>assistant\n")].encode("utf-8"))
            end = len(text[: text.index("<|im_end|>", start) + len("<|im_end|>")].encode("utf-8"))
            weighted[begin:end] = True
        for position in np.flatnonzero(weighted):  # target at row position p is sequence token p + 1
            total -= log_probs[r, position, batch["decoder_target_tokens"][r, position]]
            count += 1
    loss, _ = losses.cross_entropy(logits, jnp.asarray(batch["decoder_target_tokens"]),
                                   jnp.asarray(batch["decoder_loss_weights"]))
    assert count == int(batch["decoder_loss_weights"].sum()) > 0
    np.testing.assert_allclose(float(loss), total / count, rtol=1e-5)


def test_long_conversations_are_truncated_or_split_and_counted(tmp_path, capsys):
    long = _conversation(1, turns=6)  # about 390 bytes in ChatML: more than one 160-token piece
    (tmp_path / "train.jsonl").write_text(json.dumps({"messages": long}) + "\n", encoding="utf-8")
    counts = {}
    for overflow in ("truncate", "split"):
        info = chat_tasks.register_chat_task(f"test_long_{overflow}", source={"train": tmp_path / "train.jsonl"},
                                             context=CONTEXT, overflow=overflow)
        ids, weights, counts[overflow] = info.tokenize("train", BYTES, 160)
        assert all(len(piece) <= 160 for piece in ids)
        if overflow == "split":
            texts = [BYTES.decode(piece.tolist()) for piece in ids]
            assert all(t.startswith("<|im_start|>system\nBe brief (1).<|im_end|>\n<|im_start|>user\n") for t in texts)
            assert "".join(t.split("<|im_end|>\n", 1)[1] for t in texts) == chat_tasks.chat.render(
                info.format, long)[len("<|im_start|>system\nBe brief (1).<|im_end|>\n"):]
        seqio.TaskRegistry.remove(f"test_long_{overflow}")
    assert (counts["truncate"].truncated, counts["truncate"].split) == (1, 0)
    assert counts["split"].split == 1 and counts["split"].pieces >= 3 and counts["split"].truncated == 0
    summary = counts["split"].summary("t", 160)
    assert "1 were split" in summary and f"{counts['split'].pieces} pieces" in summary


def test_a_conversation_whose_trained_turn_is_cut_off_is_dropped_and_counted(tmp_path):
    messages = [{"role": "user", "content": "x" * 200}, {"role": "assistant", "content": "late"}]
    (tmp_path / "train.jsonl").write_text(json.dumps({"messages": messages}) + "\n", encoding="utf-8")
    info = chat_tasks.register_chat_task("test_cut", source={"train": tmp_path / "train.jsonl"}, context=CONTEXT)
    ids, _, counts = info.tokenize("train", BYTES, 100)
    seqio.TaskRegistry.remove("test_cut")
    assert ids == [] and (counts.truncated, counts.dropped) == (1, 1)


def test_seqio_view_is_the_history_with_the_generation_prompt_and_the_last_reply(chat_task):
    dataset = seqio.get_mixture_or_task(chat_task).get_dataset(None, split="validation", shuffle=False)
    first = next(dataset.as_numpy_iterator())
    messages = _conversation(0)
    assert first["inputs_pretokenized"].decode() == chat_tasks.chat.apply_chat_template(
        "chatml", messages[:-1], add_generation_prompt=True)
    assert first["targets_pretokenized"].decode() == messages[-1]["content"]


def test_chat_and_templated_tasks_mix_by_rate_with_their_own_weights(chat_task):
    synthetic.register(TaskContext())
    name = mixing.register_mixture("test_chat_mix", [chat_task, "synthetic_larger_number"], rate=1.0).name
    source = packed_input.PackedInput(name, task_feature_lengths=LENGTHS, layout=LAYOUT, vocabulary=BYTES, pack=False)
    seen = set()
    for b in range(6):
        batch = source.batch(b, range(8))
        for r, example in enumerate(source.rows(b, range(8))):
            task, _, targets = source.example(int(example[0]))
            seen.add(task)
            runs = _weighted_runs(batch["decoder_target_tokens"][r], batch["decoder_loss_weights"][r])
            if task == chat_task:
                assert all(run.endswith("<|im_end|>") for run in runs) and len(runs) == 2
            else:  # a templated task: the weighted tokens are its targets and EOS
                weighted = batch["decoder_target_tokens"][r][batch["decoder_loss_weights"][r] > 0]
                assert weighted.tolist() == targets.tolist() and targets[-1] == BYTES.eos_id
    assert seen == {chat_task, "synthetic_larger_number"}
    seqio.MixtureRegistry.remove(name)


def test_encoder_decoder_layout_reads_the_seqio_view(chat_task):
    source = packed_input.PackedInput(chat_task, task_feature_lengths={"inputs": 256, "targets": 40},
                                      layout=layout_lib.ENCODER_DECODER, vocabulary=BYTES, pack=False)
    _, inputs, targets = source.example(0)
    assert BYTES.decode(inputs.tolist()).endswith("<|im_start|>assistant\n") and inputs[-1] == BYTES.eos_id
    assert BYTES.decode(targets.tolist()) == _conversation(0)[-1]["content"]


def test_a_conversation_without_an_assistant_turn_names_its_line(tmp_path):
    lines = [json.dumps({"messages": _conversation(0)}), json.dumps({"messages": [{"role": "user", "content": "hi"}]})]
    (tmp_path / "validation.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = chat_tasks.register_chat_task("test_no_reply", source={"validation": tmp_path / "validation.jsonl"},
                                         context=CONTEXT)
    seqio.TaskRegistry.remove("test_no_reply")
    with pytest.raises(chat_tasks.errors.DataError, match=r"conversation 1 \(.*validation.jsonl:2\): it has no assistant turn"):
        list(info.render("validation"))


def test_the_seqio_pipeline_reads_chat_tasks_as_training_does(chat_task):
    settings = dict(task_feature_lengths=LENGTHS, layout=LAYOUT, batch_size=4, split="validation", seed=3)
    via_pipeline = next(pipeline.host_batches(chat_task, **settings))
    via_packed = next(packed_input.packed_batches(chat_task, vocabulary=BYTES, **settings))
    assert via_pipeline.keys() == via_packed.keys()
    assert all(np.array_equal(via_pipeline[k], via_packed[k]) for k in via_packed)
    with pytest.raises(ValueError, match="chat tasks"):
        next(pipeline.host_batches(chat_task, repeat=False, **settings))


def test_the_evaluator_refuses_a_chat_task_and_says_how_to_follow_it(chat_task):
    from it_jax.evaluation import evaluate

    with pytest.raises(chat_tasks.errors.ConfigError, match=r"chat task.*eval_mixture.*it-jax-chat"):
        evaluate.select_tasks(tasks=[chat_task])
