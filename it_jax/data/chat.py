"""Chat rendering and chat-SFT loss weights: conversations -> text -> token ids and per-token weights.

A conversation is a list of messages `{"role": "system" | "user" | "assistant", "content": str}` (read from
JSONL by `chat_sources`). It is rendered either by a checkpoint's own chat template, the Jinja string
`chat_template` of its `tokenizer_config.json` (its `chat_template.jinja` file first, as transformers does),
or by a built-in format (`FORMATS`: chatml, llama3, tulu, alpaca). Checkpoint templates render as Hugging
Face renders them: a sandboxed Jinja environment with `trim_blocks` and `lstrip_blocks`, `raise_exception`,
`strftime_now` and a `tojson` filter, and the variables `messages`, `add_generation_prompt`, `tools` and
`documents` (None) and the config's named special tokens (`bos_token`, `eos_token`, ...).

Loss weights (`tokenize_conversation`) come from rendering prefixes of the conversation. For an assistant
message `i`, `render(messages[:i], add_generation_prompt=True)` ends where its content begins and
`render(messages[:i + 1])` ends after its end-of-turn text; that character span, less trailing whitespace, is
the turn (content and end-of-turn token). A system message's span runs from `render(messages[:i])` to
`render(messages[:i + 1])`. The whole conversation is tokenized once and a token belongs to a span when its
first character (from the tokenizer's offsets) does. This needs a prefix-stable template: every rendered
prefix must begin the rendered whole, else a `ChatTemplateError` says where they differ.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import json
import os
import pathlib
from collections.abc import Sequence
from typing import Any

import jinja2
import jinja2.ext
import jinja2.sandbox
import numpy as np
import tokenizers

from it_jax import errors
from it_jax.data import chat_sources, offsets

Message = chat_sources.Message
SPECIAL_TOKEN_NAMES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token")
TRAIN_ON = ("assistant", "all", "last_assistant")


class ChatTemplateError(errors.DataError):
    """A conversation cannot be rendered or weighted: a bad template, message or tokenizer directory."""


@dataclasses.dataclass(frozen=True)
class ChatFormat:
    """A Jinja chat template and the special-token strings it is rendered with."""

    name: str
    template: str
    special_tokens: tuple[tuple[str, str], ...] = ()


_CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_LLAMA3 = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + (message['content'] | trim)"
    " + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
_TULU = (
    "{% for message in messages %}"
    "{% if message['role'] == 'assistant' %}{{ '<|assistant|>\n' + message['content'] + eos_token + '\n' }}"
    "{% else %}{{ '<|' + message['role'] + '|>\n' + message['content'] + '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)
ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
_ALPACA = (
    "{% if messages and messages[0]['role'] != 'system' %}{{ '" + ALPACA_PREAMBLE + "\n\n' }}{% endif %}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + '\n\n' }}"
    "{% elif message['role'] == 'user' %}{{ '### Instruction:\n' + message['content'] + '\n\n' }}"
    "{% else %}{{ '### Response:\n' + message['content'] + eos_token + '\n\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '### Response:\n' }}{% endif %}"
)

FORMATS: dict[str, ChatFormat] = {
    # <|im_start|>{role}\n{content}<|im_end|>\n per message.
    "chatml": ChatFormat("chatml", _CHATML, (("eos_token", "<|im_end|>"),)),
    # <|begin_of_text|>, then <|start_header_id|>{role}<|end_header_id|>\n\n{content, stripped}<|eot_id|>.
    "llama3": ChatFormat(
        "llama3", _LLAMA3, (("bos_token", "<|begin_of_text|>"), ("eos_token", "<|eot_id|>"))
    ),
    # Tulu 2 / Open-Instruct: <|system|>\n, <|user|>\n{content}\n; <|assistant|>\n{content}</s>\n.
    "tulu": ChatFormat("tulu", _TULU, (("bos_token", "<s>"), ("eos_token", "</s>"))),
    # Alpaca: preamble (or the system message)\n\n, ### Instruction:\n{user}\n\n, ### Response:\n{reply}</s>\n\n.
    "alpaca": ChatFormat("alpaca", _ALPACA, (("eos_token", "</s>"),)),
}


def _token_string(value: Any) -> str | None:
    """A special token as the config writes it: a string or an added-token object with `content`."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


@functools.lru_cache(maxsize=32)
def _directory_format(directory: str) -> ChatFormat:
    path = pathlib.Path(directory)
    config_path = path / "tokenizer_config.json"
    if not config_path.is_file():
        raise ChatTemplateError(f"{directory} is neither a built-in chat format {sorted(FORMATS)} nor a "
                                f"tokenizer directory with a tokenizer_config.json")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": ..., "template": ...}]
        template = {t.get("name"): t.get("template") for t in template}.get("default")
    jinja_file = path / "chat_template.jinja"
    if jinja_file.is_file():
        template = jinja_file.read_text(encoding="utf-8")
    if not isinstance(template, str):
        raise ChatTemplateError(f"{config_path} has no chat_template string (and there is no {jinja_file.name}); "
                                f"name a built-in format instead: {sorted(FORMATS)}")
    specials = ((name, _token_string(config.get(name))) for name in SPECIAL_TOKEN_NAMES)
    return ChatFormat(str(path), template, tuple((k, v) for k, v in specials if v is not None))


def chat_format(tokenizer_dir_or_format: str | os.PathLike) -> ChatFormat:
    """A built-in format by name, or the chat template and special tokens of a tokenizer directory."""
    key = str(tokenizer_dir_or_format)
    return FORMATS[key] if key in FORMATS else _directory_format(key)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None,
            sort_keys: bool = False) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


@functools.lru_cache(maxsize=32)
def _compile(template: str) -> jinja2.Template:
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    return env.from_string(template)


def _checked(messages: Sequence[Message]) -> list[Message]:
    try:
        return chat_sources.from_messages({"messages": list(messages)})
    except chat_sources.RecordError as e:
        raise ChatTemplateError(f"bad conversation: {e}") from None


def render(fmt: ChatFormat, messages: Sequence[Message], add_generation_prompt: bool = False) -> str:
    """`messages` rendered by `fmt`'s template; template errors (raise_exception included) name the format."""
    try:
        return _compile(fmt.template).render(
            messages=list(messages), add_generation_prompt=add_generation_prompt, tools=None, documents=None,
            **dict(fmt.special_tokens),
        )
    except jinja2.exceptions.TemplateError as e:
        raise ChatTemplateError(f"chat template of {fmt.name} failed on {len(messages)} message(s): {e}") from e


def apply_chat_template(tokenizer_dir_or_format: str | os.PathLike, messages: Sequence[Message],
                        add_generation_prompt: bool = False) -> str:
    """The conversation as text, as transformers' `apply_chat_template(messages, tokenize=False)` gives it."""
    return render(chat_format(tokenizer_dir_or_format), _checked(messages), add_generation_prompt)


def _prefix(fmt: ChatFormat, messages: Sequence[Message], whole: str, *, generation_prompt: bool) -> str:
    """`render(messages)`, checked to begin `whole` (the rendering of the full conversation)."""
    try:
        text = render(fmt, messages, generation_prompt)
    except ChatTemplateError:
        if messages:
            raise
        return ""  # a template that needs at least one message: nothing precedes the first
    if not whole.startswith(text):
        at = next((i for i, (a, b) in enumerate(zip(text, whole)) if a != b), min(len(text), len(whole)))
        raise ChatTemplateError(
            f"chat template of {fmt.name} is not prefix-stable: rendering the first {len(messages)} message(s)"
            f"{' with a generation prompt' if generation_prompt else ''} differs from the whole conversation at "
            f"character {at} ({text[at:at + 30]!r} vs {whole[at:at + 30]!r}); loss weights need templates whose "
            f"renderings of a conversation's prefixes begin its full rendering"
        )
    return text


Span = tuple[int, int, int]  # start character, end character, weight


def turn_spans(fmt: ChatFormat, messages: Sequence[Message], train_on: str = "assistant") -> tuple[str, list[Span]]:
    """The rendered conversation and the `(start, end, weight)` character spans that `train_on` sets.

    `assistant`: each assistant turn (content and end-of-turn text) weighs 1, the rest 0; `last_assistant`:
    only the last assistant turn; `all`: everything weighs 1 except system turns.
    """
    if train_on not in TRAIN_ON:
        raise ChatTemplateError(f"train_on must be one of {list(TRAIN_ON)}, got {train_on!r}")
    messages = _checked(messages)
    whole = render(fmt, messages)
    role = "system" if train_on == "all" else "assistant"
    indices = [i for i, m in enumerate(messages) if m["role"] == role]
    if train_on == "last_assistant":
        indices = indices[-1:]
    spans: list[Span] = [(0, len(whole), 1)] if train_on == "all" else []
    for i in indices:
        start = len(_prefix(fmt, messages[:i], whole, generation_prompt=role == "assistant"))
        text = _prefix(fmt, messages[:i + 1], whole, generation_prompt=False)
        end = len(text) if role == "system" else max(start, len(text.rstrip()))
        spans.append((start, end, 0 if role == "system" else 1))
    return whole, spans


@functools.lru_cache(maxsize=8)
def _tokenizer(directory: str) -> tokenizers.Tokenizer:
    path = pathlib.Path(directory) / "tokenizer.json"
    if not path.is_file():
        raise ChatTemplateError(f"no tokenizer.json in {directory}")
    return tokenizers.Tokenizer.from_file(str(path))


def weigh_tokens(starts: np.ndarray, spans: Sequence[Span]) -> np.ndarray:
    """Per-token loss weights (float32): a token takes the weight of the span holding its first character, the
    last span listed winning; 0 outside every span."""
    weights = np.zeros(len(starts), dtype=np.float32)
    for start, end, weight in spans:
        weights[(starts >= start) & (starts < end)] = weight
    return weights


def conversation_tokens(fmt: ChatFormat, messages: Sequence[Message], vocabulary: Any, *,
                        train_on: str = "assistant") -> tuple[np.ndarray, np.ndarray]:
    """Token ids (int32) of the conversation rendered by `fmt` and their loss weights (see `turn_spans`).

    `vocabulary`: anything `offsets.encode_with_starts` takes (a seqio Byte or SentencePiece vocabulary, an HF
    tokenizer vocabulary, a `tokenizers.Tokenizer`); no special tokens are added beyond those the template writes.
    """
    whole, spans = turn_spans(fmt, messages, train_on)
    ids, starts = offsets.encode_with_starts(vocabulary, whole)
    return ids, weigh_tokens(starts, spans)


def tokenize_conversation(tokenizer_dir: str | os.PathLike, messages: Sequence[Message], *,
                          train_on: str = "assistant", chat_format_name: str | None = None,
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Token ids (int32) of the rendered conversation and per-token loss weights (float32, 0 or 1).

    Renders with the directory's chat template, or the built-in `chat_format_name`; tokenizes with the
    directory's `tokenizer.json` (see `conversation_tokens`).
    """
    fmt = chat_format(chat_format_name if chat_format_name is not None else tokenizer_dir)
    return conversation_tokens(fmt, messages, _tokenizer(str(tokenizer_dir)), train_on=train_on)
