"""The pieces of exported tokenizer files: end-of-turn texts, self-contained templates, merged configs, staging."""

import json

import pytest

from it_jax.convert import hf_tokenizer_files
from it_jax.data import chat


@pytest.mark.parametrize(
    "fmt, expected", [("chatml", "<|im_end|>"), ("llama3", "<|eot_id|>"), ("tulu", "</s>"), ("alpaca", "</s>")]
)
def test_end_of_turn_of_the_built_in_formats(fmt, expected):
    assert hf_tokenizer_files.end_of_turn(fmt) == expected


def test_end_of_turn_of_a_template_that_refuses_the_probe_is_its_eos(tmp_path):
    template = "{% if messages[-1]['role'] == 'assistant' %}{{ raise_exception('no') }}{% endif %}x"
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": template, "eos_token": "<e>"}))
    assert hf_tokenizer_files.end_of_turn(str(tmp_path)) == "<e>"


def test_self_contained_template_renders_the_same_in_another_tokenizer(tmp_path):
    messages = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<|endoftext|>", "unk_token": "?"}))
    template = hf_tokenizer_files.write_chat_template(tmp_path, "tulu")
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config == {"eos_token": "<|endoftext|>", "unk_token": "?", "chat_template": template}
    # Rendered with the directory's own special tokens (EOS <|endoftext|>), it still writes Tulu's </s>.
    assert chat.apply_chat_template(tmp_path, messages) == chat.apply_chat_template("tulu", messages)
    assert "</s>" in chat.apply_chat_template(tmp_path, messages)


def test_copy_tokenizer_files_merges_configs(tmp_path):
    source, out = tmp_path / "source", tmp_path / "out"
    source.mkdir(), out.mkdir()
    (source / "tokenizer.json").write_text("{}")
    (source / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>", "model_max_length": 8}))
    (out / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 16}))
    assert hf_tokenizer_files.copy_tokenizer_files(source, out) == ["tokenizer.json", "tokenizer_config.json"]
    assert json.loads((out / "tokenizer_config.json").read_text()) == {"eos_token": "</s>", "model_max_length": 16}
    with pytest.raises(FileNotFoundError, match="not a tokenizer directory"):
        hf_tokenizer_files.copy_tokenizer_files(out / "missing", out)


def test_generation_ids_keep_other_fields(tmp_path):
    (tmp_path / "generation_config.json").write_text(json.dumps({"temperature": 0.6, "eos_token_id": 9}))
    config = hf_tokenizer_files.write_generation_ids(tmp_path, bos_id=None, eos_ids=[2, 5, 2], pad_id=0)
    assert config == {"temperature": 0.6, "eos_token_id": [2, 5], "pad_token_id": 0}
    with pytest.raises(ValueError, match="EOS"):
        hf_tokenizer_files.write_generation_ids(tmp_path, bos_id=None, eos_ids=[], pad_id=0)


def test_a_failed_staged_export_leaves_nothing_behind(tmp_path):
    with pytest.raises(RuntimeError):
        with hf_tokenizer_files.staged_directory(tmp_path / "out") as staging:
            (staging / "half").mkdir(parents=True)
            raise RuntimeError("interrupted")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and not any((tmp_path / "out").iterdir())
    with hf_tokenizer_files.staged_directory(tmp_path / "out") as staging:
        staging.mkdir()
        (staging / "model.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"] and (tmp_path / "out" / "model.json").is_file()
    with pytest.raises(FileExistsError):
        with hf_tokenizer_files.staged_directory(tmp_path / "out"):
            pass
