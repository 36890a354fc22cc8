"""Preference pairs: transcript splitting on the real HH-RLHF files, response weights, batching, truncation."""

import collections
import json

import numpy as np
import pytest
import seqio

from it_jax.data import chat, layout, preference

VOCAB = seqio.ByteVocabulary()
PAIRS = [
    preference.PreferencePair(
        ({"role": "user", "content": "Name a fruit."}, {"role": "assistant", "content": "Apple."},
         {"role": "user", "content": f"Another one, number {i}?"}),
        f"Sure: pear {i}.", f"No {i}!", where=f"pairs:{i}")
    for i in range(5)
]
CAUSAL = layout.causal_lm(None)  # no start token: the rows hold exactly prompt + response
END_OF_TURN = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "tulu": "</s>"}


def _key(pair):
    return tuple((m["role"], m["content"]) for m in pair.prompt), pair.chosen.strip(), pair.rejected.strip()


@pytest.mark.parametrize("name,kept,skipped", [("helpful_base", 2335, 19), ("harmless_base", 2299, 13)])
def test_transcripts_split_into_the_messages_form(shared_data, name, kept, skipped):
    files = shared_data / "tfds_jsonl"
    pairs, skips = preference.read_pairs(files / f"hh_rlhf__{name}" / "test.jsonl", skip_invalid=True)
    messages, none = preference.read_pairs(files / f"hh_rlhf__{name}_messages" / "test.jsonl")
    assert (len(pairs), len(skips), len(messages), none) == (kept, skipped, kept, [])
    assert collections.Counter(map(_key, pairs)) == collections.Counter(map(_key, messages))
    assert sum("different prompts" in s for s in skips) == {"helpful_base": 9, "harmless_base": 5}[name]
    with pytest.raises(preference.PreferenceDataError, match=r"test\.jsonl:\d+: "):
        preference.read_pairs(files / f"hh_rlhf__{name}" / "test.jsonl")


def test_differing_prompts_name_the_file_and_line(tmp_path):
    good = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Hi\n\nAssistant: Go away."}
    bad = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!", "rejected": "\n\nHuman: Ho\n\nAssistant: Go away."}
    path = tmp_path / "pairs.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    match = r"pairs\.jsonl:2: .*different prompts .*Human: Hi' vs .*Human: Ho'"
    with pytest.raises(preference.PreferenceDataError, match=match):
        preference.read_pairs(path)
    pairs, skipped = preference.read_pairs(path, skip_invalid=True)
    assert [p.prompt for p in pairs] == [({"role": "user", "content": "Hi"},)] and len(skipped) == 1
    assert (pairs[0].chosen, pairs[0].rejected) == ("Hello!", "Go away.")


@pytest.mark.parametrize("fmt,start", [("chatml", 0), ("llama3", None), ("tulu", 0), ("llama3", 0)])
def test_weights_are_one_exactly_on_the_response(fmt, start):
    prompt_layout = layout.PromptLayout("prefix_lm" if start == 0 else "decoder_only", start_id=start)
    data = preference.encode_pairs(PAIRS, VOCAB, chat_format=fmt, layout=prompt_layout, max_length=400)
    assert data.dropped == () and len(data) == len(PAIRS)
    for side in preference.SIDES:
        inputs = data.features[f"{side}_decoder_input_tokens"]
        targets = data.features[f"{side}_decoder_target_tokens"]
        weights = data.features[f"{side}_decoder_loss_weights"]
        for i, pair in enumerate(PAIRS):
            n = int((targets[i] > 0).sum())  # the model reads every sequence token but the last
            np.testing.assert_array_equal(inputs[i, 1:n], targets[i, :n - 1])
            assert not inputs[i, n:].any()
            w, first = weights[i], int(np.argmax(weights[i]))
            assert set(np.unique(w)) == {0.0, 1.0} and w[first:].sum() == w.sum() == (targets[i, first:] > 0).sum()
            reply = getattr(pair, side).strip() if fmt == "llama3" else getattr(pair, side)
            assert VOCAB.decode(targets[i][w == 1].tolist()) == reply + END_OF_TURN[fmt]
            prompt = chat.apply_chat_template(fmt, pair.prompt, add_generation_prompt=True)
            head = inputs[i, :first + 1]  # the start token (pad id 0, decoded as nothing) and the prompt
            assert VOCAB.decode(head.tolist()) == prompt and (head[0] == 0) == (start == 0)
            if start == 0:
                causal = data.features[f"{side}_decoder_causal_attention"][i]
                assert causal.sum() == causal[:first + 1].sum() == first + 1
            else:
                assert f"{side}_decoder_causal_attention" not in data.features


def test_encoder_decoder_rows():
    data = preference.encode_pairs(PAIRS[:2], VOCAB, chat_format="chatml", layout=layout.ENCODER_DECODER,
                                   max_length=24, max_prompt_length=200)
    for side in preference.SIDES:
        encoder = data.features[f"{side}_encoder_input_tokens"]
        assert encoder.shape == (2, 200)
        prompt = chat.apply_chat_template("chatml", PAIRS[1].prompt, True)
        assert VOCAB.decode(encoder[1].tolist()) == prompt and encoder[1, len(prompt)] == VOCAB.eos_id
        targets, weights = data.features[f"{side}_decoder_target_tokens"], data.features[f"{side}_decoder_loss_weights"]
        np.testing.assert_array_equal(weights, (targets > 0).astype(np.float32))
        reply = getattr(PAIRS[1], side)
        assert VOCAB.decode(targets[1].tolist()) == reply and targets[1, len(reply)] == VOCAB.eos_id
        n = len(reply) + 1
        np.testing.assert_array_equal(data.features[f"{side}_decoder_input_tokens"][1, :n], [0, *targets[1, :n - 1]])


def test_truncation_keeps_the_prompt_end_and_response_start_and_counts_drops():
    long = preference.PreferencePair(({"role": "user", "content": "x" * 300},), "ok", "no", where="long:1")
    data = preference.encode_pairs(PAIRS[:2], VOCAB, chat_format="chatml", layout=CAUSAL, max_length=40,
                                   max_prompt_length=30)
    features = {k: v[0] for k, v in data.features.items()}
    prompt = chat.apply_chat_template("chatml", PAIRS[0].prompt, add_generation_prompt=True)
    assert VOCAB.decode(features["chosen_decoder_input_tokens"][:30].tolist()) == prompt[-30:]
    response = features["chosen_decoder_target_tokens"][features["chosen_decoder_loss_weights"] == 1]
    assert VOCAB.decode(response.tolist()) == (PAIRS[0].chosen + "<|im_end|>")[:11]  # 40 + 1 - 30 tokens
    short = preference.PreferencePair(({"role": "user", "content": "Hi"},), "ok", "no", where="short:1")
    # With the start token, the long prompt's last 100 tokens fill the 100 predicted positions.
    dropped = preference.encode_pairs([short, long], VOCAB, chat_format="chatml", layout=layout.PREFIX_LM,
                                      max_length=100, max_prompt_length=100)
    assert dropped.dropped == ("long:1",) and len(dropped) == 1
    with pytest.raises(preference.PreferenceDataError, match="all 1 pairs were dropped"):
        preference.encode_pairs([long], VOCAB, chat_format="chatml", layout=layout.PREFIX_LM, max_length=100,
                                max_prompt_length=100)


def test_batches_are_a_pure_function_of_seed_and_index():
    data = preference.encode_pairs(PAIRS, VOCAB, chat_format="chatml", layout=CAUSAL, max_length=96)
    stream = preference.preference_batches(data, batch_size=3, seed=7)
    first = [next(stream) for _ in range(6)]
    resumed = preference.preference_batches(data, batch_size=3, seed=7, skip_batches=4)
    for expected in first[4:]:
        got = next(resumed)
        assert all(np.array_equal(got[k], expected[k]) for k in expected)
    # 15 rows are three epochs of the 5 pairs: each epoch visits every pair once.
    ids = np.concatenate([preference.batch_indices(5, 3, 7, b) for b in range(5)])
    assert all(sorted(ids[e * 5:(e + 1) * 5]) == list(range(5)) for e in range(3))
    other = np.concatenate([preference.batch_indices(5, 3, 8, b) for b in range(5)])
    assert not np.array_equal(ids, other)


def test_reference_logps_are_computed_once_and_travel_with_the_batches():
    data = preference.encode_pairs(PAIRS, VOCAB, chat_format="chatml", layout=CAUSAL, max_length=96)
    calls = []

    def logps_fn(batch):
        calls.append(len(batch["chosen_decoder_target_tokens"]))
        score = lambda side: (batch[f"{side}_decoder_target_tokens"] * batch[f"{side}_decoder_loss_weights"]).sum(-1)  # noqa: E731
        return -score("chosen"), -score("rejected")

    cached = preference.add_reference_logps(data, logps_fn, batch_size=2)
    assert calls == [2, 2, 2]
    features = data.features
    expected = -(features["rejected_decoder_target_tokens"] * features["rejected_decoder_loss_weights"]).sum(-1)
    np.testing.assert_array_equal(cached.features["reference_rejected_logps"], expected.astype(np.float32))
    batch = next(preference.preference_batches(cached, batch_size=4, seed=1))
    ids = preference.batch_indices(5, 4, 1, 0)
    np.testing.assert_array_equal(batch["reference_chosen_logps"], cached.features["reference_chosen_logps"][ids])
