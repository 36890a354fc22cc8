"""Decontamination: n-gram overlap of evaluation examples with a training mixture, and the clean-id file."""

import json
import os
import pathlib
import random
import subprocess
import sys

import pytest

from it_jax.data import mixing, tasks
from it_jax.data.context import TaskContext
from mixtures import flan2021
from it_jax.evaluation import decontamination

REPO = pathlib.Path(__file__).resolve().parents[2]
VOCAB = [f"w{i:04d}" for i in range(5000)]
BOILERPLATE = "Read the passage below with great care and then answer the question that follows it, please."
LONG_OPTIONS = ("yes, the passage answers the question completely and without any doubt at all", "no")


def _words(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    return [rng.choice(VOCAB) for _ in range(count)]


def _train_passage(i: int) -> str:
    return " ".join(_words(i, 30))


def _examples(offset: int, count: int, plant: dict[int, str] | None = None):
    """`count` examples with passages of fresh random words; `plant` replaces some passages."""
    plant = plant or {}
    for i in range(count):
        passage = plant.get(i, " ".join(_words(offset + i, 30)))
        yield {"passage": passage, "question": f"What about item {i}?", "label": i % 2}


def _train_source(split):
    return _examples(0, 20 if split == "train" else 5)


def _eval_source(split):
    copied = _train_passage(5).split()[3:18]  # 15 words of training example 5, inside other text
    planted = {3: "Earlier: " + " ".join(_words(900, 6) + copied + _words(901, 6)) + "!"}
    return _examples(1000, 10, planted)


def _disjoint_source(split):
    return _examples(2000, 8)


def _register(name: str, source, **kwargs) -> tasks.TaskInfo:
    return tasks.register_task(
        name,
        source=source,
        templates=[(BOILERPLATE + "\n{passage}\n{question}\n{options_}", "{answer}")],
        cluster="test_decon",
        preprocessor=lambda ex: {**ex, "answer": LONG_OPTIONS[ex["label"]]},
        options=LONG_OPTIONS,
        **kwargs,
    )


@pytest.fixture(scope="module")
def train_index() -> decontamination.TrainIndex:
    _register("test_decon_train", _train_source)
    mixing.register_mixture("test_decon_train_mix", ["test_decon_train", "test_decon_train_template_0"], rate=1.0)
    infos = decontamination.resolve_tasks(["test_decon_train_mix"])
    return decontamination.build_train_index(infos)


def test_normalize_lowercases_and_splits_punctuation():
    assert decontamination.normalize("The S&P's 500 -- up 0.32%!") == ["the", "s", "p", "s", "500", "up", "0", "32"]
    assert decontamination.normalize("Poor's") == decontamination.normalize("Poor 's")


@pytest.fixture(scope="module")
def eval_info() -> tasks.TaskInfo:
    return tasks.register_task(
        "test_decon_eval", source=_eval_source, cluster="test_decon",
        templates=[("Passage: {passage}\nQuestion: {question}", "{label}")],
    )


def test_a_copied_passage_in_other_text_is_flagged_with_its_index(train_index, eval_info):
    assert train_index.tasks == ("test_decon_train",)  # the mixture's tasks share one TaskInfo
    result = decontamination.check_task(train_index, eval_info, "validation")
    assert (result.task, result.split, result.total) == ("test_decon_eval", "validation", 10)
    assert result.contaminated == (3,)
    assert result.clean == (0, 1, 2, 4, 5, 6, 7, 8, 9)
    assert result.share == pytest.approx(10.0)


def test_disjoint_data_with_shared_template_options_and_labels_is_clean(train_index):
    info = _register("test_decon_disjoint", _disjoint_source)  # same boilerplate, long options, answers
    result = decontamination.check_task(train_index, info, "validation")
    assert result.total == 8 and result.contaminated == ()


def _short_fields_source(split):
    shared = "the shared sentence has exactly nine words in it"
    yield {"a": "yes", "b": "the answer is yes", "c": shared if split == "train" else "a different sentence"}
    yield {"a": "yes", "b": "the answer is yes", "c": shared}


def test_short_strings_count_only_from_min_words_and_only_whole():
    info = tasks.register_task(
        "test_decon_short", source=_short_fields_source, cluster="test_decon", templates=[("{a} {b}", "{c}")]
    )
    index = decontamination.build_train_index([info])
    assert decontamination.check_task(index, info).contaminated == (1,)  # the nine-word sentence, not "yes"
    strict = decontamination.build_train_index([info], min_words=10)
    assert decontamination.check_task(strict, info).contaminated == ()
    with pytest.raises(ValueError, match="min_words <= ngram"):
        decontamination.build_train_index([info], ngram=5, min_words=8)


def test_the_train_split_is_trimmed_as_in_training(eval_info):
    trimmed = _register("test_decon_trimmed", _train_source, max_train_examples=5)  # cuts training example 5
    index = decontamination.build_train_index([trimmed])
    assert decontamination.check_task(index, eval_info, "validation").contaminated == ()


def test_unknown_names_fail_with_close_matches(train_index):
    with pytest.raises(ValueError, match="unknown task or mixture 'test_decon_trian'.*test_decon_train"):
        decontamination.resolve_tasks(["test_decon_trian"])


def test_report_round_trips_through_load_excluded(tmp_path, train_index):
    results = [
        decontamination.TaskContamination("test_decon_eval", "validation", 10, (3,)),
        decontamination.TaskContamination("test_decon_disjoint", "validation", 8, ()),
    ]
    path = tmp_path / "clean.json"
    decontamination.write_report(path, train_index, results, train="test_decon_train_mix")
    report = json.loads(path.read_text())
    assert report["ngram"] == 13 and report["train"] == "test_decon_train_mix" and report["split"] == "validation"
    assert report["tasks"]["test_decon_eval"] == {"total": 10, "contaminated": [3]}
    assert decontamination.load_excluded(path) == {"test_decon_eval": {3}, "test_decon_disjoint": set()}
    path.write_text('{"ngram": 13}')
    with pytest.raises(ValueError, match="not a decontamination report"):
        decontamination.load_excluded(path)


def test_script_writes_the_report_for_synthetic_tasks(tmp_path):
    output = tmp_path / "contamination.json"
    result = subprocess.run(
        [sys.executable, "scripts/decontaminate.py", "synthetic_heldout_entailment",
         "synthetic_syllogism,synthetic_addition", "--task_module", "mixtures.synthetic", "--output", str(output)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line for line in result.stdout.splitlines() if line.startswith("| synthetic_")]
    assert [row.split(" | ")[0] for row in rows] == ["| synthetic_syllogism", "| synthetic_addition"]
    assert all(row.split(" | ")[2] == "100" for row in rows)
    report = json.loads(output.read_text())
    assert report["train"] == "synthetic_heldout_entailment" and report["split"] == "validation"
    assert {name: entry["total"] for name, entry in report["tasks"].items()} == {
        "synthetic_syllogism": 100, "synthetic_addition": 100,
    }
    assert "elapsed:" in result.stdout


def test_flan_mirror_rte_train_against_validation(shared_data):
    flan2021.register(TaskContext(data_dir=str(shared_data / "tfds_jsonl")))
    rte, wnli = decontamination.resolve_tasks(["flan2021_rte_scoring", "flan2021_wnli"])
    result = decontamination.check_task(decontamination.build_train_index([rte]), rte, "validation")
    assert result.total == 277
    assert 5 in result.contaminated  # "The Israel-Egypt Peace Agreement was signed in 1979." is in train too
    assert 10 < result.share < 40  # RTE reuses premises and hypotheses across its splits
    assert decontamination.check_task(decontamination.build_train_index([wnli]), rte).contaminated == ()
