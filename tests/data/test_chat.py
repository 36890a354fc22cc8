"""Chat data: conversation readers, chat-template rendering (checked against transformers) and loss weights."""

import itertools
import json
import pathlib
import random

import numpy as np
import pytest
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from it_jax.data import chat, chat_sources, sources

SPECIAL_TOKENS = [
    "<unk>", "<pad>", "<s>", "</s>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|eot_id|>", "<|system|>", "<|user|>", "<|assistant|>",
]

# Realistic templates of our own, in the style of three model families (tags on their own lines: whitespace
# control, trim_blocks and lstrip_blocks all matter).
CHATML_TEMPLATE = """{%- if messages[0]['role'] != 'system' %}
    {{- '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}
{%- endif %}
{%- for message in messages %}
    {{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
"""
LLAMA3_TEMPLATE = """{%- for message in messages %}
    {%- if message['role'] not in ['system', 'user', 'assistant'] %}
        {{- raise_exception('unknown role ' + message['role']) }}
    {%- endif %}
    {%- set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' %}
    {%- set content = content + message['content'] | trim + '<|eot_id|>' %}
    {%- if loop.index0 == 0 %}
        {%- set content = bos_token + content %}
    {%- endif %}
    {{- content }}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}"""
ZEPHYR_TEMPLATE = """{% for message in messages %}
{% if message['role'] == 'user' %}
{{ '<|user|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'system' %}
{{ '<|system|>\n' + message['content'] + eos_token }}
{% elif message['role'] == 'assistant' %}
{{ '<|assistant|>\n'  + message['content'] + eos_token }}
{% endif %}
{% if loop.last and add_generation_prompt %}
{{ '<|assistant|>' }}
{% endif %}
{% endfor %}"""
TEMPLATES = {
    "chatml": (CHATML_TEMPLATE, {"eos_token": "<|im_end|>", "pad_token": "<pad>"}, "<|im_end|>"),
    "llama3": (LLAMA3_TEMPLATE, {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"}, "<|eot_id|>"),
    "zephyr": (ZEPHYR_TEMPLATE, {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}, "</s>"),
}

CONVERSATION = [
    {"role": "system", "content": "You answer in one short sentence."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "The capital of France is Paris."},
    {"role": "user", "content": "And of Italy?"},
    {"role": "assistant", "content": "It is Rome, a city of old stone and new ideas."},
]
ASSISTANT_TURNS = [m["content"] for m in CONVERSATION if m["role"] == "assistant"]


def _corpus() -> list[str]:
    rng = random.Random(0)
    words = " ".join(m["content"] for m in CONVERSATION).lower().replace(".", "").replace("?", "").split()
    lines = [" ".join(rng.choice(words) for _ in range(rng.randrange(4, 12))) for _ in range(300)]
    return lines + [m["content"] for m in CONVERSATION]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory) -> pathlib.Path:
    """A small byte-level BPE trained here, with the special tokens of every template in this file."""
    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=SPECIAL_TOKENS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(_corpus(), trainer)
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    tokenizer.save(str(path))
    return path


def _tokenizer_dir(root: pathlib.Path, tokenizer_json: pathlib.Path, template: str, specials: dict) -> pathlib.Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.json").write_bytes(tokenizer_json.read_bytes())
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512, "chat_template": template}
    (root / "tokenizer_config.json").write_text(json.dumps({**config, **specials}), encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tokenizer_dirs(tmp_path_factory, tokenizer_json) -> dict[str, pathlib.Path]:
    root = tmp_path_factory.mktemp("checkpoints")
    return {name: _tokenizer_dir(root / name, tokenizer_json, template, specials)
            for name, (template, specials, _) in TEMPLATES.items()}


@pytest.mark.parametrize("name", sorted(TEMPLATES))
@pytest.mark.parametrize("add_generation_prompt", [False, True])
@pytest.mark.parametrize("num_messages", [5, 4, 2])
def test_rendering_equals_transformers(tokenizer_dirs, name, add_generation_prompt, num_messages):
    transformers = pytest.importorskip("transformers")
    directory = tokenizer_dirs[name]
    messages = CONVERSATION[:num_messages] if num_messages != 2 else CONVERSATION[1:3]  # 2: no system message
    expected = transformers.AutoTokenizer.from_pretrained(str(directory)).apply_chat_template(
        messages, tokenize=False, add_generation_prompt=add_generation_prompt
    )
    assert chat.apply_chat_template(directory, messages, add_generation_prompt=add_generation_prompt) == expected


def test_builtin_formats_render_the_documented_layout():
    messages = CONVERSATION[:3]
    assert chat.apply_chat_template("chatml", messages, add_generation_prompt=False) == (
        "<|im_start|>system\nYou answer in one short sentence.<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
        "<|im_start|>assistant\nThe capital of France is Paris.<|im_end|>\n"
    )
    assert chat.apply_chat_template("llama3", messages[:2], add_generation_prompt=True) == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou answer in one short sentence.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is the capital of France?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    assert chat.apply_chat_template("tulu", messages) == (
        "<|system|>\nYou answer in one short sentence.\n<|user|>\nWhat is the capital of France?\n"
        "<|assistant|>\nThe capital of France is Paris.</s>\n"
    )
    assert chat.apply_chat_template("alpaca", messages[1:2], add_generation_prompt=True) == (
        f"{chat.ALPACA_PREAMBLE}\n\n### Instruction:\nWhat is the capital of France?\n\n### Response:\n"
    )
    assert chat.apply_chat_template("alpaca", messages).startswith("You answer in one short sentence.\n\n### Instr")


def _weighted_runs(ids: np.ndarray, weights: np.ndarray, tokenizer: tokenizers.Tokenizer) -> list[str]:
    """The decoded text of each maximal run of weight-1 tokens."""
    runs = [list(group) for on, group in itertools.groupby(range(len(ids)), key=lambda i: weights[i] == 1) if on]
    return [tokenizer.decode([int(ids[i]) for i in run], skip_special_tokens=False) for run in runs]


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_loss_weights_cover_assistant_turns_and_end_of_turn(tokenizer_dirs, name):
    directory = tokenizer_dirs[name]
    end_of_turn = TEMPLATES[name][2]
    ids, weights = chat.tokenize_conversation(directory, CONVERSATION)
    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    rendered = chat.apply_chat_template(directory, CONVERSATION)
    assert ids.tolist() == tokenizer.encode(rendered, add_special_tokens=False).ids
    assert tokenizer.decode(ids.tolist(), skip_special_tokens=False) == rendered
    assert set(weights.tolist()) == {0.0, 1.0} and weights.dtype == np.float32
    assert _weighted_runs(ids, weights, tokenizer) == [turn + end_of_turn for turn in ASSISTANT_TURNS]

    ids, weights = chat.tokenize_conversation(directory, CONVERSATION, train_on="last_assistant")
    assert _weighted_runs(ids, weights, tokenizer) == [ASSISTANT_TURNS[-1] + end_of_turn]


def test_train_on_all_weighs_every_token_but_the_system_turn(tokenizer_dirs):
    directory = tokenizer_dirs["chatml"]
    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    ids, weights = chat.tokenize_conversation(directory, CONVERSATION, train_on="all")
    rendered = chat.apply_chat_template(directory, CONVERSATION)
    system_turn = "<|im_start|>system\nYou answer in one short sentence.<|im_end|>\n"
    assert _weighted_runs(ids, weights, tokenizer) == [rendered[len(system_turn):]]
    ids, weights = chat.tokenize_conversation(directory, CONVERSATION[1:], train_on="all")
    assert weights.min() == 1.0  # the template's default system prompt is not a system message


@pytest.mark.parametrize("name", ["chatml", "llama3", "tulu", "alpaca"])
def test_builtin_format_weights(tokenizer_dirs, name):
    directory = tokenizer_dirs["zephyr"]
    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    ids, weights = chat.tokenize_conversation(directory, CONVERSATION, chat_format_name=name)
    eos = dict(chat.FORMATS[name].special_tokens)["eos_token"]
    assert _weighted_runs(ids, weights, tokenizer) == [turn + eos for turn in ASSISTANT_TURNS]


def test_weights_on_real_multi_turn_conversations(tokenizer_dirs, shared_data):
    directory = tokenizer_dirs["llama3"]
    tokenizer = tokenizers.Tokenizer.from_file(str(directory / "tokenizer.json"))
    path = shared_data / "tfds_jsonl" / "hh_rlhf_chat" / "train.jsonl"
    conversations = [m for m in itertools.islice(chat_sources.read_conversations(path, "messages"), 40)]
    multi_turn = [m for m in conversations if sum(t["role"] == "assistant" for t in m) >= 2][:3]
    assert multi_turn
    for messages in multi_turn:
        ids, weights = chat.tokenize_conversation(directory, messages)
        expected = [m["content"].strip() + "<|eot_id|>" for m in messages if m["role"] == "assistant"]
        assert _weighted_runs(ids, weights, tokenizer) == expected


def test_template_that_is_not_prefix_stable_is_refused(tmp_path, tokenizer_json):
    template = "{{ messages | length }}{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
    directory = _tokenizer_dir(tmp_path / "unstable", tokenizer_json, template, {"eos_token": "</s>"})
    with pytest.raises(chat.ChatTemplateError, match="not prefix-stable"):
        chat.tokenize_conversation(directory, CONVERSATION)


def test_bad_inputs_raise_clear_errors(tmp_path, tokenizer_dirs):
    with pytest.raises(chat.ChatTemplateError, match="messages\\[1\\].role"):
        chat.apply_chat_template("chatml", [CONVERSATION[0], {"role": "robot", "content": "hi"}])
    with pytest.raises(chat.ChatTemplateError, match="train_on"):
        chat.tokenize_conversation(tokenizer_dirs["chatml"], CONVERSATION, train_on="users")
    with pytest.raises(chat.ChatTemplateError, match="built-in chat format"):
        chat.apply_chat_template(tmp_path, CONVERSATION)
    (tmp_path / "tokenizer_config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(chat.ChatTemplateError, match="no chat_template"):
        chat.apply_chat_template(tmp_path, CONVERSATION)


def test_template_file_and_added_token_objects(tmp_path, tokenizer_json):
    directory = _tokenizer_dir(tmp_path / "zephyr", tokenizer_json, "ignored", {
        "eos_token": {"__type": "AddedToken", "content": "</s>", "special": True},
    })
    (directory / "chat_template.jinja").write_text(ZEPHYR_TEMPLATE, encoding="utf-8")
    assert chat.apply_chat_template(directory, CONVERSATION[1:2], add_generation_prompt=True) == (
        "<|user|>\nWhat is the capital of France?</s>\n<|assistant|>\n"
    )


def test_raise_exception_in_template_names_the_template(tokenizer_dirs):
    directory = tokenizer_dirs["llama3"]
    fmt = chat.chat_format(directory)
    with pytest.raises(chat.ChatTemplateError, match="unknown role tool"):
        chat.render(fmt, [{"role": "tool", "content": "42"}])


# Conversation readers.

def _first(path: pathlib.Path, layout: str, n: int = 5) -> list[list[dict]]:
    return list(itertools.islice(chat_sources.read_conversations(path, layout), n))


@pytest.mark.parametrize("name", ["alpaca", "self_instruct__seed"])
def test_alpaca_layout_on_real_records(shared_data, name):
    path = shared_data / "tfds_jsonl" / name / "train.jsonl"
    records = list(itertools.islice(sources.read_jsonl(path), 30))
    conversations = _first(path, "alpaca", 30)
    for record, messages in zip(records, conversations):
        assert [m["role"] for m in messages] == ["user", "assistant"]
        assert messages[1]["content"] == record["output"]
        user = record["instruction"] + (f"\n\n{record['input']}" if record["input"].strip() else "")
        assert messages[0]["content"] == user
    assert any(record["input"] for record in records)


@pytest.mark.parametrize("name, split", [("hh_rlhf_chat", "train"), ("oasst1_en_top1", "validation")])
def test_messages_layout_on_real_records(shared_data, name, split):
    path = shared_data / "tfds_jsonl" / name / f"{split}.jsonl"
    source = chat_sources.ConversationSource({split: path}, "messages")
    examples = list(itertools.islice(source.examples(split), 5))
    for example, record in zip(examples, sources.read_jsonl(path)):
        assert example["messages"] == record["messages"] and example["id"] == record["id"]
        assert [m["role"] for m in example["messages"]][:2] == ["user", "assistant"]
    assert source.num_examples(split) > 5


def _write_lines(path: pathlib.Path, lines: list[str]) -> pathlib.Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_dolly_and_sharegpt_layouts(tmp_path):
    dolly = _write_lines(tmp_path / "dolly.jsonl", [
        json.dumps({"instruction": "Summarize.", "context": "A long text.", "response": "Short.", "category": "x"}),
        json.dumps({"instruction": "Name a colour.", "context": "", "response": "Blue."}),
    ])
    assert _first(dolly, "dolly") == [
        [{"role": "user", "content": "Summarize.\n\nA long text."}, {"role": "assistant", "content": "Short."}],
        [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}],
    ]
    turns = [{"from": "system", "value": "Be kind."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hey"}]
    sharegpt = _write_lines(tmp_path / "sharegpt.jsonl", [json.dumps({"id": "a", "conversations": turns})])
    assert _first(sharegpt, "sharegpt") == [[
        {"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hey"},
    ]]


@pytest.mark.parametrize("layout, bad_record, field", [
    ("messages", {"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]},
     "messages[1].role"),
    ("messages", {"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
    ("messages", {"text": "hi"}, "'messages'"),
    ("alpaca", {"instruction": "Do it.", "input": ""}, "'output'"),
    ("alpaca", {"instruction": "", "input": "", "output": "x"}, "'instruction'"),
    ("dolly", {"instruction": "Do it.", "context": 5, "response": "x"}, "'context'"),
    ("sharegpt", {"conversations": [{"from": "human", "value": "hi"}, {"from": "bard", "value": "x"}]},
     "conversations[1].from"),
    ("sharegpt", {"conversations": []}, "'conversations'"),
])
def test_malformed_record_names_file_line_and_field(tmp_path, layout, bad_record, field):
    good = {"messages": {"messages": [{"role": "user", "content": "hi"}]},
            "alpaca": {"instruction": "a", "input": "", "output": "b"},
            "dolly": {"instruction": "a", "context": "", "response": "b"},
            "sharegpt": {"conversations": [{"from": "human", "value": "hi"}]}}[layout]
    path = _write_lines(tmp_path / "data.jsonl", [json.dumps(good), "", json.dumps(bad_record)])
    with pytest.raises(sources.SourceError) as error:
        list(chat_sources.read_conversations(path, layout))
    assert f"{path}:3:" in str(error.value) and field in str(error.value)


def test_invalid_json_and_unknown_layout(tmp_path):
    path = _write_lines(tmp_path / "data.jsonl", [json.dumps({"messages": []}) + "}", "{"])
    with pytest.raises(sources.SourceError, match=f"{path}:1: not valid JSON"):
        list(chat_sources.read_conversations(path, "messages"))
    with pytest.raises(sources.SourceError, match="unknown conversation layout"):
        chat_sources.read_conversations(path, "dialog").__next__()
