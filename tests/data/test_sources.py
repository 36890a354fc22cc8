"""Sources: JSONL files, Python generators, and TFDS datasets read from their local JSONL mirrors."""

import json
import re

import pytest

from it_jax.data.sources import (
    GeneratorSource,
    HeldOut,
    JsonlSource,
    SourceError,
    TfdsSource,
    mirror_dir_name,
    read_jsonl,
)

RTE_FIELDS = {"sentence1", "sentence2", "label", "idx"}


def _write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_read_jsonl_yields_dicts_and_skips_blank_lines(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "héllo", "label": 1}\n\n  \n{"text": "b", "label": 0}\n', encoding="utf-8")
    assert list(read_jsonl(path)) == [{"text": "héllo", "label": 1}, {"text": "b", "label": 0}]


def test_malformed_jsonl_line_names_file_and_line_number(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2\n{"a": 3}\n', encoding="utf-8")
    records = read_jsonl(path)
    assert next(records) == {"a": 1}
    with pytest.raises(SourceError, match=re.escape(f"{path}:3: not valid JSON")):
        next(records)


def test_jsonl_line_that_is_not_an_object_is_rejected(tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"a": 1}\n[1, 2]\n', encoding="utf-8")
    with pytest.raises(SourceError, match=re.escape(f"{path}:2: expected a JSON object, got list")):
        list(read_jsonl(path))


def test_jsonl_source_reads_and_counts_splits(tmp_path):
    train = _write_jsonl(tmp_path / "train.jsonl", [{"x": i} for i in range(7)])
    validation = _write_jsonl(tmp_path / "validation.jsonl", [{"x": -1}])
    source = JsonlSource({"train": train, "validation": validation})
    assert source.splits == ("train", "validation")
    assert [r["x"] for r in source.examples("train")] == list(range(7))
    assert source.num_examples("train") == 7
    assert source.num_examples("validation") == 1
    with pytest.raises(SourceError, match="no split 'test'"):
        source.num_examples("test")


def test_jsonl_source_missing_file_names_path_and_description(tmp_path):
    missing = tmp_path / "nowhere" / "train.jsonl"
    source = JsonlSource({"train": missing}, description="my dataset")
    with pytest.raises(SourceError, match=re.escape(f"missing JSONL file {missing} for split 'train' (my dataset)")):
        list(source.examples("train"))


def test_generator_source_calls_function_per_split():
    def generate(split):
        return ({"split": split, "i": i} for i in range(3 if split == "train" else 2))

    source = GeneratorSource(generate)
    assert [ex["i"] for ex in source.examples("train")] == [0, 1, 2]
    assert source.num_examples("validation") == 2
    with pytest.raises(SourceError, match="'generate' has no split 'test'"):
        list(source.examples("test"))


def test_mirror_dir_name_drops_version_and_slashes():
    assert mirror_dir_name("glue/rte") == "glue__rte"
    assert mirror_dir_name("super_glue/rte:1.0.2") == "super_glue__rte"
    assert mirror_dir_name("piqa") == "piqa"


def test_missing_mirror_file_names_expected_path_and_tfds_name(tmp_path):
    source = TfdsSource("glue/rte", splits=("train", "validation"), data_dir=str(tmp_path))
    expected = tmp_path / "glue__rte" / "validation.jsonl"
    with pytest.raises(SourceError) as error:
        next(source.examples("validation"))
    assert str(expected) in str(error.value)
    assert "'glue/rte'" in str(error.value)
    with pytest.raises(SourceError, match="'glue/rte'"):
        source.num_examples("validation")


def test_tfds_source_rejects_unknown_split(tmp_path):
    source = TfdsSource("glue/rte", splits=("train",), data_dir=str(tmp_path))
    with pytest.raises(SourceError, match="TFDS 'glue/rte' has no split 'test'"):
        next(source.examples("test"))


def test_tfds_source_reads_shared_mirror(shared_data):
    source = TfdsSource("glue/rte", splits=("train", "validation"), data_dir=str(shared_data / "tfds_jsonl"))
    assert source.num_examples("train") == 2490
    records = list(source.examples("train"))
    assert len(records) == 2490
    assert all(set(r) == RTE_FIELDS for r in records)
    assert {r["label"] for r in records} == {0, 1}
    assert all(isinstance(r["sentence1"], str) and r["sentence1"] for r in records)
    assert [r["idx"] for r in records[:3]] == [0, 1, 2]
    assert source.num_examples("validation") == sum(1 for _ in source.examples("validation"))


def test_tfds_source_reads_its_mirror_only_with_a_data_directory(tmp_path):
    _write_jsonl(tmp_path / "my_corpus__config" / "train.jsonl", [{"text": "a"}, {"text": "b"}])
    assert TfdsSource("my_corpus/config", splits=("train",)).mirror() is None
    source = TfdsSource("my_corpus/config", splits=("train",), data_dir=str(tmp_path))
    assert list(source.examples("train")) == [{"text": "a"}, {"text": "b"}]
    assert source.num_examples("train") == 2


def test_the_environment_does_not_choose_the_data(tmp_path, monkeypatch):
    _write_jsonl(tmp_path / "ds" / "train.jsonl", [{"v": "env"}])
    monkeypatch.setenv("IT_JAX_DATA_DIR", str(tmp_path))
    assert TfdsSource("ds", splits=("train",)).mirror() is None


def test_held_out_split_takes_every_nth_record_and_keeps_locations(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(45)))
    source = HeldOut(JsonlSource({"train": path}), every=10)
    held = [e["i"] for e in source.examples("validation")]
    kept = [e["i"] for e in source.examples("train")]
    assert held == [0, 10, 20, 30, 40]
    assert sorted(held + kept) == list(range(45)) and not set(held) & set(kept)
    assert (source.num_examples("validation"), source.num_examples("train")) == (5, 40)
    assert source.location("validation", 2) == f"{path}:21"
    assert source.location("train", 9) == f"{path}:12"  # kept record 9 is source record 11
    with pytest.raises(SourceError, match="test"):
        next(source.examples("test"))
