"""The FLAN 2022 CoT submix on the real local files: templates, targets, counts, SeqIO pipeline, mixture."""

import itertools

import pytest
import seqio

import mixtures.cot as cot
from it_jax.data import tasks
from it_jax.data.context import TaskContext

COUNTS = {
    "gsm8k": 7_473,
    "strategyqa": 2_061,
    "creak": 6_915,
    "qasc": 1_084,
    "ecqa": 7_112,
    "sensemaking": 6_070,
    "aqua": 2_728,
}


@pytest.fixture
def data_dir(shared_data):
    """The shared data; the submix registered to read its mirrors."""
    cot.register(TaskContext(data_dir=str(shared_data / "tfds_jsonl")))
    return shared_data


@pytest.mark.parametrize("name", COUNTS)
def test_every_template_renders_real_examples_with_an_answer_sentence(name, data_dir):
    info = tasks.task_info(f"cot_{name}")
    assert info.cluster == "cot" and not info.is_classification
    assert len(info.templates) == 8
    for j, example in enumerate(itertools.islice(info.source.examples("train"), 20)):
        fields = info.fields(example, j)
        assert fields["target"].startswith(fields["chain_of_thought"])
        assert fields["target"].endswith(cot.answer_sentence(fields["answer"]))
        for template in info.templates:
            rendered = template.render(fields)
            assert fields["question"] in rendered["inputs"], template.name
            assert rendered["inputs"] != fields["question"], template.name
            assert rendered["targets"] == fields["target"], template.name


@pytest.mark.parametrize("name", COUNTS)
def test_example_counts_match_the_data(name, data_dir):
    info = tasks.task_info(f"cot_{name}")
    assert info.num_examples("train") == COUNTS[name]
    assert seqio.get_mixture_or_task(f"cot_{name}").num_input_examples("train") == COUNTS[name]


def test_options_stay_inside_the_question(data_dir):
    info = tasks.task_info("cot_aqua")
    fields = info.fields(next(info.source.examples("train")), 0)
    assert "\n(A) " in fields["question"] and fields["answer"] == "(C)"


def test_the_task_flows_through_get_dataset_with_sentencepiece(data_dir):
    spm = seqio.SentencePieceVocabulary(str(data_dir / "tokenizers" / "t5" / "spiece.model"))
    cot.register(TaskContext(spm, data_dir=str(data_dir / "tfds_jsonl")))
    task = seqio.get_mixture_or_task("cot_gsm8k")
    dataset = task.get_dataset({"inputs": 512, "targets": 256}, split="train", shuffle=False)
    examples = list(dataset.take(8).as_numpy_iterator())
    assert len(examples) == 8
    assert [ex["template"] for ex in examples] == list(range(8))
    for ex in examples:
        assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
        assert ex["targets_pretokenized"].decode().endswith(".")
    assert examples[0]["targets_pretokenized"].decode().endswith("So the answer is 72.")


def test_cot_all_mixes_the_seven_tasks_and_their_inversions_at_0_3(data_dir):
    mixture = seqio.get_mixture_or_task("cot_all")
    assert {task.name for task in mixture.tasks} == {f"cot_{name}{kind}" for name in COUNTS for kind in ("", "_inverted")}
    assert mixture.get_rate(seqio.get_mixture_or_task("cot_gsm8k")) == COUNTS["gsm8k"]
    assert mixture.get_rate(seqio.get_mixture_or_task("cot_gsm8k_inverted")) == pytest.approx(0.3 * COUNTS["gsm8k"])


@pytest.mark.parametrize("name", COUNTS)
def test_inversion_templates_lead_from_the_answer_back_to_the_question(name, data_dir):
    info = tasks.task_info(f"cot_{name}_inverted")
    assert len(info.templates) == 6 and not info.is_classification
    for j, example in enumerate(itertools.islice(info.source.examples("train"), 5)):
        fields = info.fields(example, j)
        for template in info.templates:
            rendered = template.render(fields)
            assert fields["question"] in rendered["targets"], template.name
            assert fields["question"] not in rendered["inputs"], template.name
