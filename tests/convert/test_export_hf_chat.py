"""Exporting a chat run to Hugging Face: --from_run then --to_hf of a tiny Llama-style decoder whose vocabulary is
a BPE tokenizer trained in the test (and of a byte-vocabulary run): transformers' tokenizer renders the run's chat
template as it_jax does, and its greedy generation from the chat prompt equals it_jax's."""

import dataclasses
import json
import pathlib

import chat_runs
import numpy as np
import pytest
import seqio
import torch
import transformers

from it_jax.cli import chat as chat_cli
from it_jax.cli import convert_checkpoint
from it_jax.convert import hf_tokenizer_files
from it_jax.data import chat, hf_vocab
from it_jax.data import layout as layout_lib
from it_jax.evaluation import loading
from it_jax.evaluation import predictor as predictor_lib
from it_jax.run_context import RunContext

MESSAGES = [
    {"role": "system", "content": "You are brief."},
    {"role": "user", "content": "Hello, how are you today?"},
    {"role": "assistant", "content": "I am fine, thank you."},
    {"role": "user", "content": "What is the capital of France?"},
]
NEW_TOKENS = 10


def _convert(*argv) -> None:
    convert_checkpoint.main([str(a) for a in argv])


def _export(root: pathlib.Path, vocabulary, chat_format: str | None, config=chat_runs.CONFIG):
    """(pretrained directory, Hugging Face directory) of a run made with `vocabulary` and `chat_format`."""
    chat_runs.make_run(root / "run", vocabulary, chat_format=chat_format, config=config)
    _convert("--from_run", root / "run", "--out", root / "pretrained")
    _convert("--to_hf", root / "pretrained", "--out", root / "hf")
    return root / "pretrained", root / "hf"


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    return chat_runs.write_bpe_tokenizer(tmp_path_factory.mktemp("tokenizer"))


@pytest.fixture(scope="module", params=["chatml", "llama3", "tulu"])
def exported(request, tmp_path_factory, tokenizer_dir):
    """(chat format, pretrained directory, Hugging Face directory) of a BPE run with that chat format."""
    vocabulary = hf_vocab.HFTokenizerVocabulary(tokenizer_dir)
    pretrained_dir, hf_dir = _export(tmp_path_factory.mktemp(request.param), vocabulary, request.param)
    return request.param, pretrained_dir, hf_dir


def test_tokenizer_files_and_chat_template_are_exported(exported, tokenizer_dir):
    fmt, pretrained_dir, hf_dir = exported
    names = {p.name for p in hf_dir.iterdir()}
    assert {"tokenizer.json", "tokenizer_config.json", "generation_config.json", "config.json"} <= names
    assert (hf_dir / "tokenizer.json").read_bytes() == (tokenizer_dir / "tokenizer.json").read_bytes()
    config = json.loads((hf_dir / "tokenizer_config.json").read_text())
    assert config["eos_token"] == "<|endoftext|>" and config["bos_token"] == "<|begin_of_text|>"  # kept
    # The format's special tokens that this tokenizer names differently are set in the template; Llama 3's
    # BOS is this tokenizer's own, so it is not set. The tokenizer's EOS stays.
    settings = {
        "chatml": '{%- set eos_token = "<|im_end|>" %}',
        "llama3": '{%- set eos_token = "<|eot_id|>" %}',
        "tulu": '{%- set bos_token = "<s>" %}{%- set eos_token = "</s>" %}',
    }[fmt]
    assert hf_tokenizer_files.recorded_chat_template(pretrained_dir) == settings + chat.FORMATS[fmt].template
    # The Hugging Face template also writes the layout's start token (the BOS) where the format does not.
    start = "" if fmt == "llama3" else '{{- "<|begin_of_text|>" }}'
    assert config["chat_template"] == start + settings + chat.FORMATS[fmt].template


def test_transformers_renders_the_run_chat_template(exported):
    fmt, pretrained_dir, hf_dir = exported
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    start = "" if fmt == "llama3" else "<|begin_of_text|>"  # Llama 3's template writes the BOS itself
    for generation_prompt in (True, False):
        expected = chat.apply_chat_template(fmt, MESSAGES, add_generation_prompt=generation_prompt)
        got = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=generation_prompt)
        assert got == start + expected
        assert got.startswith("<|begin_of_text|>") and not got.startswith("<|begin_of_text|>" * 2)
        # The exported it_jax directory renders the format's text (what it-jax-chat reads there).
        assert chat.apply_chat_template(pretrained_dir, MESSAGES, generation_prompt) == expected
    # The ids transformers feeds are it-jax-chat's prompt, the sequence chat training builds.
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == chat_cli.chat_prompt(RunContext.load(pretrained_dir.parent / "run"), MESSAGES)


def test_generation_config_has_the_vocabulary_ids_and_the_end_of_turn(exported, tokenizer_dir):
    fmt, _, hf_dir = exported
    vocabulary = hf_vocab.HFTokenizerVocabulary(tokenizer_dir)
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    turn = {"chatml": "<|im_end|>", "llama3": "<|eot_id|>", "tulu": None}[fmt]  # Tulu's "</s>" is no token here
    eos = [vocabulary.eos_id] + ([vocabulary.tokenizer.token_to_id(turn)] if turn else [])
    assert generation["eos_token_id"] == (eos if len(eos) > 1 else eos[0])
    assert (generation["bos_token_id"], generation["pad_token_id"]) == (vocabulary.bos_id, vocabulary.pad_id)


def _it_jax_greedy(directory: pathlib.Path, prompt: list[int], stop_ids: set[int]) -> list[int]:
    model = loading.load_model(directory)
    raw = layout_lib.PromptLayout("decoder_only", start_id=None, inputs_eos=True)  # the ids as given
    predictor = predictor_lib.Predictor(
        spec=model.spec, params=model.params, layout=raw, eos_id=model.vocabulary.eos_id, batch_size=1,
        max_decode_length=NEW_TOKENS,
    )
    ids = predictor.generate([prompt])[0]
    stops = [i for i, token in enumerate(ids) if token in stop_ids]
    return ids[: stops[0] + 1] if stops else ids


@pytest.mark.parametrize("exported", ["chatml"], indirect=True)  # one format suffices for generation
def test_transformers_generates_what_it_jax_generates(exported):
    _, pretrained_dir, hf_dir = exported
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
    vocabulary = hf_vocab.HFTokenizerVocabulary(pretrained_dir)
    assert prompt == chat_cli.chat_prompt(RunContext.load(pretrained_dir.parent / "run"), MESSAGES)
    model = transformers.AutoModelForCausalLM.from_pretrained(hf_dir, attn_implementation="eager")
    with torch.no_grad():
        output = model.generate(
            torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            max_new_tokens=NEW_TOKENS, do_sample=False,
        )
    hf_ids = output[0, len(prompt):].tolist()
    stop_ids = set(np.atleast_1d(model.generation_config.eos_token_id).tolist())
    assert stop_ids == {vocabulary.eos_id, vocabulary.tokenizer.token_to_id("<|im_end|>")}
    it_jax_ids = _it_jax_greedy(pretrained_dir, prompt, stop_ids)
    assert len(it_jax_ids) >= 8 and hf_ids == it_jax_ids


def test_byte_run_exports_its_chat_template(tmp_path):
    vocabulary = seqio.ByteVocabulary()
    pretrained_dir, hf_dir = _export(tmp_path, vocabulary, "chatml")
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    assert type(tokenizer).__name__ == "ByT5Tokenizer"
    got = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    # "<pad>" is ByT5Tokenizer's id 0, the start token the byte run's layout puts before conversations.
    assert got == "<pad>" + chat.apply_chat_template("chatml", MESSAGES, add_generation_prompt=True)
    ids = tokenizer(got, add_special_tokens=False)["input_ids"]
    assert ids == chat_cli.chat_prompt(RunContext.load(tmp_path / "run"), MESSAGES) and ids[0] == 0
    # "<|im_end|>" is ten bytes, not one token: EOS alone ends generation; the byte vocabulary has no BOS.
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    assert generation == {"eos_token_id": 1, "pad_token_id": 0}
    assert sorted(p.name for p in pretrained_dir.iterdir()) == ["model.json", "params", "tokenizer_config.json"]


def test_a_run_without_run_json_exports_no_chat_template(tmp_path):
    chat_runs.make_run(tmp_path / "run", seqio.ByteVocabulary(), chat_format=None)
    (tmp_path / "run" / "run.json").unlink()
    _convert("--from_run", tmp_path / "run", "--out", tmp_path / "pretrained")
    assert hf_tokenizer_files.recorded_chat_template(tmp_path / "pretrained") is None
    assert not (tmp_path / "pretrained" / "tokenizer_config.json").exists()


def test_sentencepiece_run_exports_its_chat_template(tmp_path, shared_data):
    vocabulary = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    config = dataclasses.replace(chat_runs.CONFIG, vocab_size=vocabulary.vocab_size)
    _, hf_dir = _export(tmp_path, vocabulary, "tulu", config)
    tokenizer = transformers.AutoTokenizer.from_pretrained(hf_dir)
    got = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    # The layout's start token (id 0, the control piece "<pad>") is not written: text does not encode to it.
    assert got == chat.apply_chat_template("tulu", MESSAGES, add_generation_prompt=True)
    # "</s>" is T5's EOS, a control piece that text does not encode to: no second EOS.
    generation = json.loads((hf_dir / "generation_config.json").read_text())
    assert generation == {"eos_token_id": vocabulary.eos_id, "pad_token_id": vocabulary.pad_id}
