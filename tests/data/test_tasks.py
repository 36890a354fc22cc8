"""Task registration: seqio tasks per template and spread over templates, tokenized with the run's vocabulary."""

import json

import pytest
import seqio

from it_jax.data import tasks
from it_jax.data.templates import TemplateError
from it_jax.data.context import TaskContext
from it_jax.evaluation import metrics

LENGTHS = {"inputs": 64, "targets": 16}
TEMPLATES = [
    ("Is {a} even?\n{options_}", "{answer}"),
    ("{a}: even or odd?\n{options_}", "{answer}"),
    ("Tell me if the number {a} is even.\n{options_}", "{answer}"),
]


def _parity_examples(split):
    count = 10 if split == "train" else 7
    offset = 0 if split == "train" else 100
    return ({"a": n, "answer": "yes" if n % 2 == 0 else "no"} for n in range(offset, offset + count))


def _register_parity(name, **kwargs):
    return tasks.register_task(
        name,
        source=_parity_examples,
        templates=TEMPLATES,
        cluster="test_parity",
        options=["yes", "no"],
        metrics=[metrics.accuracy],
        **kwargs,
    )


def _examples(name, split="validation", lengths=LENGTHS):
    dataset = seqio.get_mixture_or_task(name).get_dataset(lengths, split=split, shuffle=False)
    return list(dataset.as_numpy_iterator())


def test_registration_creates_spread_and_per_template_seqio_tasks():
    info = _register_parity("test_tasks_registered")
    names = seqio.TaskRegistry.names()
    assert "test_tasks_registered" in names
    assert all(f"test_tasks_registered_template_{k}" in names for k in range(3))
    assert "test_tasks_registered_template_3" not in names
    assert tasks.task_info("test_tasks_registered") is info
    assert info in tasks.registered_tasks("test_parity")
    assert info.is_classification and info.template_task_name(2) == "test_tasks_registered_template_2"
    assert seqio.get_mixture_or_task("test_tasks_registered").num_input_examples("train") == 10


def test_unknown_task_info_raises_key_error():
    with pytest.raises(KeyError, match="no instruction task 'test_tasks_never_registered'"):
        tasks.task_info("test_tasks_never_registered")


def test_byte_vocabulary_tokenizes_with_eos_appended():
    _register_parity("test_tasks_bytes")
    vocabulary = seqio.ByteVocabulary()
    examples = _examples("test_tasks_bytes_template_0")
    assert len(examples) == 7
    first = examples[0]
    assert first["inputs_pretokenized"].decode() == "Is 100 even?\nOPTIONS:\n- yes\n- no"
    assert list(first["inputs"]) == vocabulary.encode("Is 100 even?\nOPTIONS:\n- yes\n- no") + [1]
    assert list(first["targets"]) == vocabulary.encode("yes") + [1]
    assert [o.decode() for o in first["options"]] == ["yes", "no"]
    assert first["task"].decode() == "test_tasks_bytes" and first["template"] == 0
    assert all(ex["inputs"][-1] == 1 and ex["targets"][-1] == 1 for ex in examples)


def test_a_task_tokenizes_with_its_contexts_vocabulary(shared_data):
    vocabulary = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    _register_parity("test_tasks_spm", context=TaskContext(vocabulary))
    assert seqio.get_mixture_or_task("test_tasks_spm").output_features["inputs"].vocabulary == vocabulary
    examples = _examples("test_tasks_spm_template_1")
    for ex in examples:
        assert list(ex["inputs"]) == vocabulary.encode(ex["inputs_pretokenized"].decode()) + [1]
        assert list(ex["targets"]) == vocabulary.encode(ex["targets_pretokenized"].decode()) + [1]
    assert len(examples[0]["targets"]) == len(vocabulary.encode("yes")) + 1
    _register_parity("test_tasks_spm")  # registering again with no context: bytes
    assert seqio.get_mixture_or_task("test_tasks_spm").output_features["inputs"].vocabulary == seqio.ByteVocabulary()


def test_spread_task_is_deterministic_and_round_robin():
    info = _register_parity("test_tasks_spread")
    first, second = _examples("test_tasks_spread", "train"), _examples("test_tasks_spread", "train")
    assert len(first) == 10
    for a, b in zip(first, second):
        assert a.keys() == b.keys()
        assert all((a[k] == b[k]).all() if hasattr(a[k], "all") else a[k] == b[k] for k in a)
    raw = list(_parity_examples("train"))
    for j, ex in enumerate(first):
        k = j % 3
        assert ex["template"] == k
        expected = info.templates[k].render({**raw[j], "options": ["yes", "no"]})
        assert ex["inputs_pretokenized"].decode() == expected["inputs"]
        assert ex["targets_pretokenized"].decode() == expected["targets"]


def test_per_template_task_uses_one_template():
    _register_parity("test_tasks_single")
    examples = _examples("test_tasks_single_template_2")
    assert {ex["template"] for ex in examples} == {2}
    assert all(ex["inputs_pretokenized"].decode().startswith("Tell me if the number") for ex in examples)


def test_jsonl_path_source_with_split_placeholder(tmp_path):
    splits = {"train": ["alpha", "beta", "gamma"], "validation": ["delta"]}
    for split, words in splits.items():
        lines = [json.dumps({"word": w, "length": len(w)}) for w in words]
        (tmp_path / f"{split}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = tasks.register_task(
        "test_tasks_jsonl",
        source=str(tmp_path / "{split}.jsonl"),
        preprocessor=lambda ex: {**ex, "length": str(ex["length"])},
        templates=[("How many letters does {word} have?", "{length}")],
        cluster="test_jsonl",
        metrics=[metrics.exact_match],
    )
    assert info.num_examples("train") == 3 and not info.is_classification
    assert info.source.splits == ("train", "validation")
    examples = _examples("test_tasks_jsonl")
    assert [ex["inputs_pretokenized"].decode() for ex in examples] == ["How many letters does delta have?"]
    assert examples[0]["targets_pretokenized"].decode() == "5"
    assert list(examples[0]["options"]) == []


class _UncountedSource:
    """Yields examples but refuses to count them, as a large or remote dataset should not be at import."""

    splits = ("train",)

    def examples(self, split):
        yield {"a": "x", "b": "y"}

    def num_examples(self, split):
        raise RuntimeError(f"registration counted split {split!r}")


def test_registration_counts_no_examples():
    info = tasks.register_task(
        "test_tasks_lazy", source=_UncountedSource(), templates=[("{a}", "{b}")], cluster="test_lazy"
    )
    assert [ex["inputs"] for ex in info.render("train")] == ["x"]


def test_jsonl_path_without_split_placeholder_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="'{split}' placeholder"):
        tasks.register_task(
            "test_tasks_jsonl_bad",
            source=str(tmp_path / "train.jsonl"),
            templates=[("{a}", "{b}")],
            cluster="test_rejected",
        )


def test_max_train_examples_trims_train_split_only():
    info = _register_parity("test_tasks_trimmed", max_train_examples=4)
    assert info.num_examples("train") == 4
    assert info.num_examples("validation") == 7
    assert len(_examples("test_tasks_trimmed", "train")) == 4
    assert seqio.get_mixture_or_task("test_tasks_trimmed").num_input_examples("train") == 4


def test_per_example_options_come_from_preprocessor():
    info = tasks.register_task(
        "test_tasks_dynamic_options",
        source=lambda split: iter([{"a": 3, "b": 8}, {"a": 9, "b": 2}]),
        preprocessor=lambda ex: {**ex, "larger": str(max(ex.values())), "options": [str(ex["a"]), str(ex["b"])]},
        templates=[("Which is larger?\n{options_}", "{larger}")],
        cluster="test_dynamic",
        options=(),
    )
    rendered = list(info.render("train"))
    assert rendered[0]["inputs"] == "Which is larger?\nOPTIONS:\n- 3\n- 8"
    assert [(r["targets"], r["options"]) for r in rendered] == [("8", ["3", "8"]), ("9", ["9", "2"])]


def test_classification_example_without_options_is_an_error():
    info = tasks.register_task(
        "test_tasks_no_options",
        source=lambda split: iter([{"q": "?", "answer": "yes"}]),
        templates=[("{q}\n{options_}", "{answer}")],
        cluster="test_dynamic",
        options=(),
    )
    with pytest.raises(TemplateError, match="'test_tasks_no_options', example 0: classification example with no"):
        list(info.render("train"))


def test_task_name_with_space_is_rejected():
    with pytest.raises(ValueError, match="must not contain spaces"):
        tasks.register_task("test tasks", source=_parity_examples, templates=TEMPLATES, cluster="test_rejected")


def test_inverted_templates_are_trained_on_but_not_evaluated():
    info = tasks.register_task(
        "test_tasks_inverted",
        source=lambda split: iter([{"q": "2+2", "answer": "4"}] * 4),
        templates=[("What is {q}?", "{answer}"), ("Compute {q}.", "{answer}")],
        inverted_templates=[("Write a sum that equals {answer}.", "{q}")],
        cluster="test_inverted",
    )
    assert len(info.templates) == 3 and list(info.eval_templates) == [0, 1]
    assert [ex["template"] for ex in info.render("train")] == [0, 1, 2, 0]
    assert list(info.render("train"))[2]["targets"] == "2+2"


def test_classification_tasks_get_a_rank_classification_scoring_task():
    info = tasks.register_task(
        "test_tasks_scoring",
        source=lambda split: iter([{"n": str(i), "answer": ["no", "yes"][i % 2]} for i in range(3)]),
        templates=[("Odd {n}?\n{options_}", "{answer}"), ("{n} odd?\n{options_}", "{answer}")],
        inverted_templates=[("Give an odd number.", "{n}")],
        cluster="test_scoring",
        options=["yes", "no"],
    )
    examples = list(
        seqio.get_mixture_or_task(info.scoring_task_name).get_dataset(
            {"inputs": 32, "targets": 8}, split="validation", shuffle=False
        ).as_numpy_iterator()
    )
    assert [(int(e["idx"]), e["targets_pretokenized"].decode(), bool(e["is_correct"])) for e in examples] == [
        (0, "yes", False), (0, "no", True), (1, "yes", True), (1, "no", False), (2, "yes", False), (2, "no", True),
    ]
    assert [int(e["template"]) for e in examples] == [0, 0, 1, 1, 0, 0]
