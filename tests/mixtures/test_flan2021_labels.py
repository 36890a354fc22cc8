"""Label fidelity on real records: every FLAN 2021 task with a local TFDS mirror renders the gold answer.

For each mirrored dataset the expected answer is derived here, independently of the task's preprocessor,
from the label meanings documented in shared/data/README.md, spelled in the option words the task uses.
Every answer template of the task must render that answer as its target (and list it among the options,
for classification), and every gold answer among the `references` (multi-reference datasets). A
preprocessor that swaps labels or indexes the wrong choice fails here.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import pathlib
from collections.abc import Callable

import pytest

import mixtures.flan2021
from it_jax.data import sources, tasks
from it_jax.data.context import TaskContext

DATA = pathlib.Path(__file__).resolve().parents[3] / "shared" / "data" / "tfds_jsonl"
SCAN = 500  # records are chosen among the first SCAN validation records

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"no local TFDS mirrors at {DATA}")

Record = dict
NLI_WORDS = {
    "entailment": "yes",
    "neutral": "it is not possible to tell",
    "contradiction": "no",
    "not_entailment": "no",
}


def _collapse(text: str) -> str:
    return " ".join(text.split())


@dataclasses.dataclass(frozen=True)
class Case:
    """A mirrored dataset: its directory, the gold answers of a record (the primary first) and, for
    classification, the options a record must show (None: a generation task)."""

    mirror: str
    gold: Callable[[Record], list[str]]
    options: Callable[[Record], list[str]] | None = None
    key: Callable[[Record], object] = lambda record: record.get("label")  # check the first record of each key
    extra: Callable[[Record], bool] = lambda record: False  # and the first record where this holds
    multi_reference: bool = False  # some record in the scan has several distinct gold answers


def _label(names: tuple[str, ...], words: dict[str, str] | None = None) -> Callable[[Record], list[str]]:
    """The gold answer of a ClassLabel record: the name of its label, in the task's words."""
    words = words or {}
    return lambda record: [words.get(names[record["label"]], names[record["label"]])]


def _static(*options: str) -> Callable[[Record], list[str]]:
    return lambda record: list(options)


def _gem(record: Record) -> list[str]:
    return [record["target"], *record["references"]]


CASES = {
    "rte": Case("super_glue__rte", _label(("entailment", "not_entailment"), NLI_WORDS), _static("yes", "no")),
    "wnli": Case("glue__wnli", _label(("not_entailment", "entailment"), NLI_WORDS), _static("yes", "no")),
    "snli": Case(
        "snli",
        _label(("entailment", "neutral", "contradiction"), NLI_WORDS),
        _static("yes", "it is not possible to tell", "no"),
    ),
    "sst2": Case("glue__sst2", _label(("negative", "positive")), _static("negative", "positive")),
    "mrpc": Case(
        "glue__mrpc", _label(("not_equivalent", "equivalent"), {"not_equivalent": "no", "equivalent": "yes"}),
        _static("yes", "no"),
    ),
    "cola": Case("glue__cola", _label(("unacceptable", "acceptable")), _static("unacceptable", "acceptable")),
    # FLAN renders the similarity with tf.strings.as_string(label, precision=0), i.e. "%.0f" (halves to even).
    "stsb": Case(
        "glue__stsb", lambda r: [f"{r['label']:.0f}"], _static("0", "1", "2", "3", "4", "5"),
        key=lambda r: f"{r['label']:.0f}", extra=lambda r: (2 * r["label"]) % 2 == 1,
    ),
    "piqa": Case(
        "piqa", lambda r: [_collapse((r["sol1"], r["sol2"])[r["label"]])],
        lambda r: [_collapse(r["sol1"]), _collapse(r["sol2"])],
    ),
    "hellaswag": Case(
        "hellaswag", lambda r: [_collapse(r["endings"][r["label"]])], lambda r: [_collapse(e) for e in r["endings"]]
    ),
    "natural_questions_open": Case(
        "natural_questions_open", lambda r: list(r["answer"]), extra=lambda r: len(set(r["answer"])) > 1,
        multi_reference=True,
    ),
    "e2e_nlg": Case("gem__e2e_nlg", _gem),
    "dart": Case("gem__dart", _gem, extra=lambda r: len(set(_gem(r))) > 1, multi_reference=True),
}


def _chosen_records(case: Case) -> dict[int, Record]:
    """The first record of each distinct `key` (each label; generation records have none, so the first),
    and the first record for which `extra` holds."""
    chosen, seen, extra_found = {}, set(), False
    with (DATA / case.mirror / "validation.jsonl").open(encoding="utf-8") as f:
        for index, line in enumerate(itertools.islice(f, SCAN)):
            record = json.loads(line)
            key = case.key(record)
            if key not in seen or (not extra_found and case.extra(record)):
                chosen[index] = record
            seen.add(key)
            extra_found = extra_found or case.extra(record)
    return chosen


def test_every_flan2021_task_with_a_mirror_is_covered():
    mirrored = {
        spec.name
        for spec in mixtures.flan2021.SPECS
        if (DATA / sources.mirror_dir_name(spec.tfds_name) / "validation.jsonl").is_file()
    }
    assert mirrored == set(CASES)
    for name, case in CASES.items():
        spec = next(s for s in mixtures.flan2021.SPECS if s.name == name)
        assert sources.mirror_dir_name(spec.tfds_name) == case.mirror


@pytest.mark.parametrize("name", sorted(CASES))
def test_answer_templates_render_the_gold_answer(name):
    mixtures.flan2021.register(TaskContext(data_dir=str(DATA)))
    case = CASES[name]
    info = tasks.task_info(f"flan2021_{name}")
    assert info.is_classification == (case.options is not None)
    chosen = _chosen_records(case)
    if case.multi_reference:
        assert any(len(set(case.gold(r))) > 1 for r in chosen.values()), "no multi-reference record was checked"
    for k in info.eval_templates:
        rendered = itertools.islice(info.render("validation", k), max(chosen) + 1)
        for index, example in enumerate(rendered):
            if index not in chosen:
                continue
            gold = [g.strip() for g in case.gold(chosen[index])]
            where = f"{name} template {k}, validation record {index}"
            assert example["targets"] == gold[0], where
            assert example["references"][0] == gold[0], where
            assert set(gold) <= set(example["references"]), where
            if case.options is not None:
                assert example["options"] == case.options(chosen[index]), where
                assert gold[0] in example["options"], where
                assert example["references"] == gold, where
