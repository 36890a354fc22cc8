"""Tokenizer files of exported models: a Hugging Face tokenizer's files, the chat template and the generation ids.

An exported model carries the chat template its run renders conversations with, in its
`tokenizer_config.json` (field `chat_template`), so that transformers' `apply_chat_template` and
`it-jax-chat` give the same prompt. `--from_run` writes it into the pretrained directory (beside a copy of a
Hugging Face tokenizer's files, or alone for a byte or SentencePiece vocabulary); `--to_hf` copies it into the
Hugging Face directory, merged into the tokenizer config written there.

The template is self-contained: a built-in format's special-token strings (ChatML's none, Llama 3's
`<|begin_of_text|>`, Tulu's and Alpaca's `</s>`) that the destination's tokenizer config lacks or names
differently are set at the template's top (`{% set eos_token = "</s>" %}`), so it renders the same text
whatever tokenizer carries it. The tokenizer's own special tokens are never changed: they decide the ids a
vocabulary reads (e.g. its EOS), and a Hugging Face tokenizer run always has an EOS (`HFTokenizerVocabulary`
requires one), a byte or SentencePiece one its fixed EOS.

Chat training and `it-jax-chat` put a decoder layout's start token before a conversation that does not open
with it (`PromptLayout.conversation_start`: e.g. a BOS before ChatML); the Hugging Face template writes that
token's text first, where the exported tokenizer reads it back as that one id, so that the prompt transformers
tokenizes is the sequence the model was trained on.

For decoders, `generation_config.json` gets the vocabulary's BOS, EOS and pad ids (transformers' Llama and Qwen
configs otherwise default to ids of other tokenizers), and when the chat format's end-of-turn text is one token
other than the EOS (ChatML's `<|im_end|>` in a tokenizer that has it), that id too as a second EOS: generation
stops where `it-jax-chat` cuts the reply. The first EOS is the vocabulary's, which is what it_jax reads back.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from it_jax.convert import pretrained
from it_jax.models import registry

TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
CHAT_TEMPLATE_FIELD = "chat_template"
_PROBE = "\x00it_jax_reply\x00"  # a reply no template writes: what follows it is the end of the turn
BYT5_SPECIAL_TOKENS = {0: "<pad>", 1: "</s>", 2: "<unk>"}  # as `hf.to_hf` writes ByT5Tokenizer's config


def _read_json(path: pathlib.Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _write_json(path: pathlib.Path, data: Mapping[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _token_string(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def self_contained_template(format_name: str, tokenizer_config: Mapping[str, Any]) -> str:
    """The chat template of `format_name` (a built-in format or a tokenizer directory) for a tokenizer whose
    config is `tokenizer_config`: the format's special tokens that the config lacks or names differently are
    set at its top, so it renders as `it_jax.data.chat.apply_chat_template(format_name, ...)` does."""
    from it_jax.data import chat  # Imported here: it loads TensorFlow, which most conversions do not need.

    fmt = chat.chat_format(format_name)
    settings = [
        f"{{%- set {name} = {json.dumps(value)} %}}"
        for name, value in fmt.special_tokens
        if _token_string(tokenizer_config.get(name)) != value
    ]
    return "".join(settings) + fmt.template


def write_chat_template(directory: str | pathlib.Path, format_name: str) -> str:
    """Sets `chat_template` in `directory`'s tokenizer_config.json (created if absent, other fields kept) to
    `format_name`'s self-contained template; returns the template."""
    path = pathlib.Path(directory) / TOKENIZER_CONFIG_FILE
    config = _read_json(path)
    template = self_contained_template(format_name, config)
    _write_json(path, {**config, CHAT_TEMPLATE_FIELD: template})
    return template


def recorded_chat_template(directory: str | pathlib.Path) -> str | None:
    """The `chat_template` string of `directory`'s tokenizer_config.json, or None."""
    template = _read_json(pathlib.Path(directory) / TOKENIZER_CONFIG_FILE).get(CHAT_TEMPLATE_FIELD)
    return template if isinstance(template, str) else None


def end_of_turn(format_name: str) -> str:
    """The text a format writes after an assistant reply (e.g. "<|im_end|>", "<|eot_id|>", "</s>"), found by
    rendering a user turn and a reply; its special `eos_token` when it writes nothing there (or refuses that
    conversation), else ""."""
    from it_jax.data import chat

    fmt = chat.chat_format(format_name)
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _PROBE}]
    try:
        rendered = chat.render(fmt, messages)
    except chat.ChatTemplateError:  # a template that refuses this conversation: its EOS ends turns
        rendered = ""
    after = rendered[rendered.index(_PROBE) + len(_PROBE):].strip() if _PROBE in rendered else ""
    return after or dict(fmt.special_tokens).get("eos_token", "")


def copy_tokenizer_files(source: str | pathlib.Path, out: str | pathlib.Path) -> list[str]:
    """Copies the Hugging Face tokenizer files (`pretrained.HF_TOKENIZER_FILES`) `source` has into `out`; an
    existing tokenizer_config.json or generation_config.json in `out` is merged (`out`'s fields win).
    Returns the names copied."""
    source, out = pathlib.Path(source), pathlib.Path(out)
    if not (source / pretrained.HF_TOKENIZER_FILES[0]).is_file():
        raise FileNotFoundError(f"{source / pretrained.HF_TOKENIZER_FILES[0]} not found: not a tokenizer directory")
    copied = []
    for name in pretrained.HF_TOKENIZER_FILES:
        if not (source / name).is_file():
            continue
        if name in (TOKENIZER_CONFIG_FILE, GENERATION_CONFIG_FILE) and (out / name).is_file():
            _write_json(out / name, {**_read_json(source / name), **_read_json(out / name)})
        else:
            shutil.copyfile(source / name, out / name)
        copied.append(name)
    return copied


def write_generation_ids(
    out: str | pathlib.Path, *, bos_id: int | None, eos_ids: Sequence[int], pad_id: int | None
) -> dict[str, Any]:
    """Sets `bos_token_id`, `eos_token_id` (one id, or a list when several) and `pad_token_id` in `out`'s
    generation_config.json (created if absent, other fields kept); returns the config written."""
    if not eos_ids:
        raise ValueError("eos_ids is empty: a generation config needs the vocabulary's EOS id")
    path = pathlib.Path(out) / GENERATION_CONFIG_FILE
    eos = list(dict.fromkeys(int(i) for i in eos_ids))
    ids = {"bos_token_id": bos_id, "eos_token_id": eos[0] if len(eos) == 1 else eos, "pad_token_id": pad_id}
    config = {**_read_json(path), **{key: value for key, value in ids.items() if value is not None}}
    _write_json(path, config)
    return config


def end_of_turn_id(encode: Any, format_name: str, eos_id: int) -> int | None:
    """The id of the format's end-of-turn text when `encode` (text -> ids) makes it one token other than
    `eos_id`; else None."""
    text = end_of_turn(format_name)
    ids = list(encode(text)) if text else []
    return int(ids[0]) if len(ids) == 1 and int(ids[0]) != eos_id else None


def export_tokenizer_files(
    source: str | pathlib.Path, loaded: pretrained.Pretrained, out: str | pathlib.Path, vocabulary: Any
) -> list[str]:
    """--to_hf's tokenizer files beside what `hf.to_hf` wrote into `out`, from the pretrained directory `source`
    (read as `loaded`, with `vocabulary`, or None when it records none): its Hugging Face tokenizer's files, its
    chat template merged into the tokenizer config, and for decoders the generation ids. Returns what was
    written, for the summary."""
    written = copy_tokenizer_files(source, out) if loaded.tokenizer_dir else []
    template = recorded_chat_template(source)
    if template is not None:
        path = pathlib.Path(out) / TOKENIZER_CONFIG_FILE
        start = start_token_text(loaded, vocabulary, str(source))
        template = template if start is None else f"{{{{- {json.dumps(start)} }}}}" + template
        _write_json(path, {**_read_json(path), CHAT_TEMPLATE_FIELD: template})
        written.append(CHAT_TEMPLATE_FIELD)
    if vocabulary is not None and registry.family(loaded.config) == "decoder":
        eos_ids = [vocabulary.eos_id]
        turn_id = end_of_turn_id(vocabulary.encode, str(source), vocabulary.eos_id) if template else None
        eos_ids += [] if turn_id is None else [turn_id]
        bos_id = getattr(vocabulary, "bos_id", None)
        write_generation_ids(out, bos_id=bos_id if bos_id is not None and bos_id >= 0 else None, eos_ids=eos_ids,
                             pad_id=vocabulary.pad_id)
        written.append(GENERATION_CONFIG_FILE)
    return list(dict.fromkeys(written))


def start_token_text(loaded: pretrained.Pretrained, vocabulary: Any, chat_format: str) -> str | None:
    """The text of the start token a decoder's layout puts before conversations that do not open with it
    (`PromptLayout.conversation_start`, as chat training and `it-jax-chat` do), when `chat_format`'s
    renderings do not and the exported tokenizer reads that text back as the one id: a Hugging Face token
    (e.g. a BOS before ChatML), or ByT5Tokenizer's `<pad>` (id 0, seqio's decoder start). None otherwise,
    SentencePiece control pieces included (text does not encode to them)."""
    from it_jax.data import chat
    from it_jax.data import layout as layout_lib

    if vocabulary is None or registry.family(loaded.config) != "decoder":
        return None
    layout = (layout_lib.PromptLayout.from_dict(loaded.layout) if loaded.layout
              else layout_lib.default_layout(registry.architecture(loaded.config), vocabulary))
    probe = [{"role": "user", "content": "hi"}]
    rendered = list(vocabulary.encode(chat.apply_chat_template(chat_format, probe, add_generation_prompt=True)))
    if not layout.decoder_only or not layout.conversation_start(rendered):
        return None
    if loaded.tokenizer_dir:
        text = vocabulary.tokenizer.id_to_token(layout.start_id)
        ids = vocabulary.tokenizer.encode(text, add_special_tokens=False).ids if text else []
        return text if ids == [layout.start_id] else None
    return BYT5_SPECIAL_TOKENS.get(layout.start_id) if loaded.byte_vocabulary else None


@contextlib.contextmanager
def staged_directory(out: str | pathlib.Path) -> Iterator[pathlib.Path]:
    """A fresh sibling directory to write `out` in; on success it becomes `out` (which must be new or empty),
    on failure it is removed: `out` never holds a half-written export."""
    out = pretrained.new_directory(out)
    staging = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        yield staging
        out.rmdir()
        os.replace(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
