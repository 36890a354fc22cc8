"""scripts/chat.py on tiny decoder runs built without training: the prompt is the chat template's rendering and
nothing more, replies are cut at the end-of-turn text, in file and interactive mode, on a run and an export."""

import dataclasses
import importlib.util
import io
import json
import pathlib
import sys
import types

import chat_runs
import pytest
import seqio

from it_jax.cli import chat as chat_cli
from it_jax.data import chat, hf_vocab
from it_jax.data import layout as layout_lib
from it_jax.evaluation import loading
from it_jax.evaluation import predictor as predictor_lib
from it_jax.run_context import RunContext

REPO = pathlib.Path(__file__).resolve().parents[2]
BYTE_CONFIG = dataclasses.replace(chat_runs.CONFIG, vocab_size=259)  # seqio.ByteVocabulary's ids exactly
SYSTEM = "You are brief."
JUNK = "<|im_end|>\n<|im_start|>user\nmore"  # what a model may write past its turn


def _chat_main(argv):
    spec = importlib.util.spec_from_file_location("chat", REPO / "scripts" / "chat.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main(argv)


@pytest.fixture(scope="module")
def byte_run(tmp_path_factory):
    """A byte-vocabulary ChatML run (its layout opens sequences with the pad id 0, which chat must not add)."""
    run_dir = tmp_path_factory.mktemp("byte") / "run"
    chat_runs.make_run(run_dir, seqio.ByteVocabulary(), chat_format="chatml", config=BYTE_CONFIG)
    return run_dir


@pytest.fixture
def spy(monkeypatch):
    """Records the prompts given to `Predictor.generate` and the ids it generated, and appends `JUNK` (an
    end-of-turn and more) to each generation, as a chat model that goes on past its turn would."""
    calls = []
    generate = predictor_lib.Predictor.generate

    def recording(self, inputs):
        generated = generate(self, inputs)
        calls.append((inputs, generated))
        junk = list(seqio.ByteVocabulary().encode(JUNK))
        return [ids + junk for ids in generated]

    monkeypatch.setattr(predictor_lib.Predictor, "generate", recording)
    return calls


def _reply(ids) -> str:
    text = seqio.ByteVocabulary().decode(ids)
    assert "<|im_end|>" not in text  # the random model's own text: the cut is JUNK's
    return text


def test_chat_prompt_is_the_start_token_and_the_template_rendering(byte_run):
    context = RunContext.load(byte_run)
    assert context.layout.start_id == 0 and context.chat_format_name() == "chatml"
    messages = [{"role": "user", "content": "Hi"}]
    ids = chat_cli.chat_prompt(context, messages)
    # The start token opens the row, as chat training's rows (PromptLayout.conversation_start); no EOS after.
    text = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    assert ids == [0, *seqio.ByteVocabulary().encode(text)]


@pytest.mark.parametrize("fmt", ["llama3", "chatml"])
def test_the_prompt_has_one_bos(tmp_path, fmt):
    vocabulary = hf_vocab.HFTokenizerVocabulary(chat_runs.write_bpe_tokenizer(tmp_path / "tokenizer"))
    chat_runs.make_run(tmp_path / "run", vocabulary, chat_format=fmt)
    context = RunContext.load(tmp_path / "run")
    assert context.layout.start_id == vocabulary.bos_id
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hello, how are you?"}]
    ids = chat_cli.chat_prompt(context, messages)
    rendered = vocabulary.encode(chat.apply_chat_template(fmt, messages, add_generation_prompt=True))
    # Llama 3's template writes the BOS itself, so the layout adds none; ChatML's does not, so the layout does.
    assert ids == (rendered if fmt == "llama3" else [vocabulary.bos_id, *rendered])
    assert ids[0] == vocabulary.bos_id and ids.count(vocabulary.bos_id) == 1
    assert vocabulary.decode(ids).endswith("assistant<|end_header_id|>\n\n" if fmt == "llama3" else "assistant\n")


def test_file_mode_replies_to_each_conversation(byte_run, tmp_path, spy):
    conversations = [
        {"messages": [{"role": "user", "content": "Hello"}], "id": 1},
        {"messages": [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}]},
    ]
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in conversations), encoding="utf-8")
    _chat_main(["--checkpoint", str(byte_run), "--input_file", str(source), "--output_file", str(out),
                "--system", SYSTEM, "--max_decode_length", "12"])
    written = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    [(prompts, generated)] = spy
    sent = [[{"role": "system", "content": SYSTEM}, *conversations[0]["messages"]], conversations[1]["messages"]]
    assert prompts == [chat_cli.chat_prompt(RunContext.load(byte_run), messages) for messages in sent]
    assert prompts[0] == [0, *seqio.ByteVocabulary().encode(chat.apply_chat_template("chatml", sent[0], True))]
    for record, messages, ids in zip(written, sent, generated):
        assert record["messages"] == [*messages, {"role": "assistant", "content": _reply(ids)}]
    assert written[0]["id"] == 1


def test_interactive_mode_keeps_the_history_until_reset(byte_run, spy, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("Hello\nHow are you?\n/reset\n\nHi again\n"))
    _chat_main(["--checkpoint", str(byte_run), "--max_decode_length", "8"])
    replies = [_reply(generated[0]) for _, generated in spy]
    assert capsys.readouterr().out == "".join(reply + "\n" for reply in replies) and len(replies) == 3
    context = RunContext.load(byte_run)
    first = [{"role": "user", "content": "Hello"}]
    second = [*first, {"role": "assistant", "content": replies[0]}, {"role": "user", "content": "How are you?"}]
    expected = [first, second, [{"role": "user", "content": "Hi again"}]]
    assert [inputs for inputs, _ in spy] == [[chat_cli.chat_prompt(context, m)] for m in expected]


def test_an_exported_run_chats_with_its_recorded_template(byte_run, tmp_path):
    loading.export_run(byte_run, tmp_path / "exported")
    vocabulary = seqio.ByteVocabulary()
    assert chat_cli.checkpoint_chat_format(tmp_path / "exported", vocabulary) == str(tmp_path / "exported")
    assert chat_cli.checkpoint_chat_format(byte_run, vocabulary) == "chatml"
    model = chat_cli.ChatModel(loading.load_model(tmp_path / "exported"), str(tmp_path / "exported"))
    messages = [{"role": "user", "content": "Hi"}]
    assert chat_cli.chat_prompt(model, messages) == chat_cli.chat_prompt(RunContext.load(byte_run), messages)


def test_cut_reply():
    assert chat_cli.cut_reply("Paris.<|im_end|>\n<|im_start|>user", "<|im_end|>") == "Paris."
    assert chat_cli.cut_reply("no end", "<|im_end|>") == "no end"
    assert chat_cli.cut_reply("kept</s>", "") == "kept</s>"


def test_bad_conversations_fail_before_loading(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"messages": [{"role": "user", "content": "a"}, {"role": "assistant",
                                                                                  "content": "b"}]}) + "\n")
    with pytest.raises(SystemExit) as raised:
        _chat_main(["--checkpoint", str(tmp_path / "missing"), "--input_file", str(source)])
    assert str(raised.value.code) == f"error: {source}:1: the last message must be the user's: the model replies to it"


def test_a_one_token_end_of_turn_stops_generation_and_an_eos_still_ends_the_reply(tmp_path):
    vocabulary = hf_vocab.HFTokenizerVocabulary(chat_runs.write_bpe_tokenizer(tmp_path / "tokenizer"))
    chat_runs.make_run(tmp_path / "run", vocabulary, chat_format="chatml")
    args = chat_cli.parse_args(["--checkpoint", str(tmp_path / "run")])
    session = chat_cli.Chat(chat_cli.load(args), args)
    assert session.predictor.eos_id == vocabulary.tokenizer.token_to_id("<|im_end|>") != vocabulary.eos_id
    paris = vocabulary.encode("Paris")
    session.predictor.generate = lambda inputs: [paris + [vocabulary.eos_id] + vocabulary.encode(" more"), paris]
    assert session.replies([[{"role": "user", "content": "Hi"}]] * 2) == ["Paris", "Paris"]


def test_an_encoder_decoder_reads_the_rendering_and_eos():
    run = types.SimpleNamespace(
        vocabulary=seqio.ByteVocabulary(), layout=layout_lib.ENCODER_DECODER, chat_format_name=lambda: "chatml"
    )
    messages = [{"role": "user", "content": "Hi"}]
    text = chat.apply_chat_template("chatml", messages, add_generation_prompt=True)
    assert chat_cli.chat_prompt(run, messages) == list(seqio.ByteVocabulary().encode(text)) + [1]


def test_a_conversation_over_the_input_limit_is_named(byte_run, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [{"messages": [{"role": "user", "content": text}]} for text in ("short", "long " * 20)]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    with pytest.raises(SystemExit) as raised:
        _chat_main(["--checkpoint", str(byte_run), "--input_file", str(source), "--max_input_length", "64"])
    # The start token, "<|im_start|>user\n", 100 bytes, "<|im_end|>\n", "<|im_start|>assistant\n".
    assert 1 + 17 + 100 + 11 + 22 == 151
    assert str(raised.value.code) == (
        "error: conversation 2 is 151 tokens, over --max_input_length 64: shorten it (interactively: /reset)"
    )
