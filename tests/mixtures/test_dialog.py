"""The FLAN 2022 dialog submix: cut rules, rendering, determinism, templates, the SeqIO pipeline, `dialog_all`.

Taskmaster runs on the real TM-4 mirror (skipped without the shared data); wiki_dialog and qrecc run on small
hand-made mirrors with their TFDS features.
"""

import itertools
import json
import random

import pytest
import seqio

from it_jax.data import tasks
from it_jax.data.context import TaskContext
from mixtures import dialog
from mixtures.dialog import dialogs


def markers_of(speaker):
    """Every marker a turn of `speaker` can open with."""
    return {"-", "+"} | {f"{pair[speaker]}:" for pair in dialogs.SPEAKER_NAMES}


def context_turns(fields):
    """The texts of the rendered context turns, markers and endings removed."""
    texts = []
    for line in fields["context"].split("\n"):
        _, text = line.split(" ", 1) if line[0] in "-+" else line.split(": ", 1)
        texts.append(text.rstrip(";."))
    return texts


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def wiki_dialog_record(i, num_turns):
    utterances = [f"Hi, ask me about topic {i}."] + [f"dialog {i} turn {t}" for t in range(num_turns)]
    return {
        "title": f"Topic {i}",
        "pid": f"p{i}",
        "passage": "A passage.",
        "sentences": ["A passage."],
        "utterances": utterances,
        "author_num": [t % 2 for t in range(len(utterances))],
    }


def qrecc_record(conversation, turn_id):
    return {
        "context": [f"conversation {conversation} turn {t}" for t in range(2 * (turn_id - 1))],
        "question": "q",
        "question_rewrite": "q",
        "answer": "a",
        "answer_url": "",
        "conversation_id": conversation,
        "turn_id": turn_id,
        "source": "quac",
    }


@pytest.fixture
def handmade(tmp_path):
    """Small wiki_dialog and qrecc mirrors; the submix registered to read them."""
    wiki = [wiki_dialog_record(i, num_turns) for i, num_turns in enumerate([2, 3, 5, 8, 13, 60, 61, 4] * 5)]
    qrecc = [qrecc_record(c, t) for c in range(6) for t in range(1, 13)]
    for split in ("train", "validation"):
        write_jsonl(tmp_path / "wiki_dialog" / f"{split}.jsonl", wiki)
    for split in ("train", "test"):
        write_jsonl(tmp_path / "q_re_cc" / f"{split}.jsonl", qrecc)
    dialog.register(TaskContext(data_dir=str(tmp_path)))
    return {"wiki_dialog": wiki, "qrecc": qrecc}


@pytest.fixture
def real_data(shared_data):
    """The shared data; the submix registered to read its mirrors."""
    dialog.register(TaskContext(data_dir=str(shared_data / "tfds_jsonl")))
    return shared_data


def fields_of(task, split="train", limit=None):
    info = tasks.task_info(task)
    examples = itertools.islice(info.source_examples(split), limit)
    return [info.fields(example, j, split) for j, example in enumerate(examples)]


def test_cut_rules():
    rng = random.Random(0)
    for num_turns in range(2, 70):
        odd = {dialogs.odd_cut(num_turns, rng) for _ in range(300)}
        assert all(cut % 2 == 1 and cut < num_turns for cut in odd)
        assert odd == set(range(1, 2 * min(num_turns // 2, 20), 2))
        uniform = {dialogs.uniform_cut(num_turns, rng) for _ in range(300)}
        assert uniform == set(range(1, min(num_turns, 20)))


def test_wiki_dialog_drops_utterance_0_and_ends_on_a_user_turn(handmade):
    for record, fields in zip(handmade["wiki_dialog"], fields_of("dialog_wiki_dialog")):
        turns = record["utterances"][1:]
        cut = turns.index(fields["next_turn"])
        assert cut % 2 == 1 and cut < 2 * min(len(turns) // 2, 20)
        assert context_turns(fields) == turns[:cut]  # utterance 0 never appears; the last context turn is a user's
        assert fields["previous_turn"] == turns[cut - 1]
        assert fields["dialog"].split("\n")[-1] in markers_of(dialogs.ASSISTANT)
        assert fields["dialog"].endswith(fields["dialog"].split("\n")[-1])


def test_qrecc_uses_turns_after_the_sixth_only(handmade):
    late = [record for record in handmade["qrecc"] if record["turn_id"] > 6]
    info = tasks.task_info("dialog_qrecc")
    assert info.num_examples("train") == len(late) == 36
    for record, fields in zip(late, fields_of("dialog_qrecc")):
        cut = record["context"].index(fields["next_turn"])
        assert cut % 2 == 1 and context_turns(fields) == record["context"][:cut]
        assert fields["dialog"].split("\n")[-1] in markers_of(dialogs.ASSISTANT)


def test_taskmaster_examples_end_on_the_marker_of_the_turn_to_predict(real_data):
    source = dialog.dialog_source("taskmaster", TaskContext(data_dir=str(real_data / "tfds_jsonl")))
    records = list(source.source.examples("train"))
    examples = fields_of("dialog_taskmaster")
    assert len(examples) == len(records) == 500
    for record, fields in zip(records, examples):
        turns = dialogs.taskmaster_turns(record)
        cut = len(fields["context"].split("\n"))
        assert 1 <= cut < min(len(turns), 20)
        assert fields["next_turn"] == turns[cut].text and fields["previous_turn"] == turns[cut - 1].text
        last = fields["dialog"].split("\n")[-1]
        assert last in markers_of(turns[cut].speaker)
        if last.endswith(":"):  # each turn is named after its own speaker, from one pair of names
            pair = next(p for p in dialogs.SPEAKER_NAMES if p[turns[cut].speaker] == last[:-1])
            names = [line.split(":")[0] for line in fields["context"].split("\n")]
            assert names == [pair[turn.speaker] for turn in turns[:cut]]


def test_rendering_varies_and_reruns_are_identical(real_data):
    examples = fields_of("dialog_taskmaster")
    lasts = {fields["dialog"].split("\n")[-1] for fields in examples}
    assert {"-", "+"} <= lasts and lasts - {"-", "+"}
    firsts = {fields["dialog"].split("\n")[0] for fields in examples}
    assert {header for header in dialogs.HEADERS if header} <= firsts
    assert any(fields["context"].split("\n")[0].endswith(";") for fields in examples)
    dialog.register(TaskContext(data_dir=str(real_data / "tfds_jsonl")))
    assert fields_of("dialog_taskmaster") == examples
    assert fields_of("dialog_taskmaster_inverted") == examples


@pytest.mark.parametrize("source", ["wiki_dialog", "qrecc"])
def test_every_template_renders(source, handmade):
    next_turn, inverted = tasks.task_info(f"dialog_{source}"), tasks.task_info(f"dialog_{source}_inverted")
    assert len(next_turn.templates) == len(inverted.templates) == 10
    assert len({t.inputs for t in next_turn.templates + inverted.templates}) == 20
    for fields in fields_of(f"dialog_{source}", limit=10):
        for template in next_turn.templates:
            rendered = template.render(fields)
            assert rendered["inputs"].endswith(fields["dialog"]) and rendered["targets"] == fields["next_turn"]
        for template in inverted.templates:
            rendered = template.render(fields)
            assert fields["next_turn"] in rendered["inputs"] and fields["context"] not in rendered["inputs"]
            assert rendered["targets"] in (fields["context"], fields["previous_turn"])


def test_variants_and_dialog_all(real_data):
    names = set(seqio.TaskRegistry.names())
    for source in dialog.SOURCES:
        for task in (f"dialog_{source}", f"dialog_{source}_inverted"):
            assert {task, f"{task}_fs_opt", f"{task}_template_9"} <= names
            assert f"{task}_zs_noopt" not in names and f"{task}_fs_noopt" not in names
    mixture = seqio.get_mixture_or_task("dialog_all")
    assert len(mixture.tasks) == 6
    rate = mixture.get_rate
    assert rate(seqio.get_mixture_or_task("dialog_taskmaster")) == 500
    assert rate(seqio.get_mixture_or_task("dialog_taskmaster_inverted")) == pytest.approx(150)


def test_taskmaster_flows_through_get_dataset_with_sentencepiece(real_data):
    spm = seqio.SentencePieceVocabulary(str(real_data / "tokenizers" / "t5" / "spiece.model"))
    dialog.register(TaskContext(spm, data_dir=str(real_data / "tfds_jsonl")))
    lengths = {"inputs": 512, "targets": 128}
    for name in ("dialog_taskmaster", "dialog_taskmaster_inverted_fs_opt"):
        dataset = seqio.get_mixture_or_task(name).get_dataset(lengths, split="train", shuffle=False)
        examples = list(dataset.take(10).as_numpy_iterator())
        assert [ex["template"] for ex in examples] == list(range(10))
        for ex in examples:
            assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
            assert len(ex["targets"]) > 1 and ex["targets_pretokenized"]
    expected = fields_of("dialog_taskmaster", limit=1)[0]
    first = next(
        seqio.get_mixture_or_task("dialog_taskmaster")
        .get_dataset(lengths, split="train", shuffle=False)
        .as_numpy_iterator()
    )
    assert first["inputs_pretokenized"].decode().endswith(expected["dialog"])
    assert first["targets_pretokenized"].decode() == expected["next_turn"]
