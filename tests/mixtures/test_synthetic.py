"""The embedded synthetic collection: registered tasks and mixtures, renderable templates, exact answers."""

import itertools
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest
import seqio

import mixtures.synthetic as synthetic
from it_jax.data import mixing
from it_jax.data.context import TaskContext
from mixtures.synthetic import generators

pytestmark = pytest.mark.usefixtures("synthetic_tasks")
TASKS = {info.name: info for info in synthetic.register(TaskContext())}
SPECS = {spec.name: spec for spec in synthetic.SPECS}
MAX_INPUT_BYTES = 127  # the default byte-level model reads 128 input tokens, EOS included
MAX_CLASS_TARGET_BYTES = 31
MAX_GENERATED_TARGET_BYTES = 24


def _raw(name, split="validation", n=None):
    return list(itertools.islice(TASKS[name].source.examples(split), n))


def _rendered(name, template, split="validation", n=None):
    return list(itertools.islice(TASKS[name].render(split, template), n))


def test_collection_size_clusters_and_templates():
    assert len(TASKS) >= 12
    assert len(synthetic.CLUSTERS) >= 6
    for cluster in synthetic.CLUSTERS:
        assert sum(info.cluster == cluster for info in TASKS.values()) >= 2
    assert all(len(info.templates) >= 5 for info in TASKS.values())
    assert all(re.fullmatch(r"[a-z_]+", cluster) for cluster in synthetic.CLUSTERS)
    assert "entailment" in synthetic.CLUSTERS


def test_split_sizes_straddle_the_cap():
    train_sizes = [info.num_examples("train") for info in TASKS.values()]
    assert all(1_000 <= n <= 10_000 for n in train_sizes)
    assert any(n > mixing.DEFAULT_CAP for n in train_sizes) and any(n < mixing.DEFAULT_CAP for n in train_sizes)
    assert all(info.num_examples("validation") == 100 for info in TASKS.values())
    assert [info.num_examples("train") for info in TASKS.values()] == [s.train_size for s in synthetic.SPECS]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_template_renders_first_examples(name):
    info = TASKS[name]
    for k in range(len(info.templates)):
        for split in ("train", "validation"):
            for ex in _rendered(name, k, split, 20):
                assert ex["inputs"] and ex["targets"] and ex["template"] == k


@pytest.mark.parametrize("name", sorted(TASKS))
def test_lengths_fit_the_default_model(name):
    info = TASKS[name]
    max_target = MAX_CLASS_TARGET_BYTES if info.is_classification else MAX_GENERATED_TARGET_BYTES
    for k in range(len(info.templates)):
        for ex in _rendered(name, k) + _rendered(name, k, "train", 200):
            assert len(ex["inputs"].encode()) <= MAX_INPUT_BYTES, ex["inputs"]
            assert len(ex["targets"].encode()) <= max_target, ex["targets"]


@pytest.mark.parametrize("name", sorted(n for n, info in TASKS.items() if info.is_classification))
def test_classification_targets_are_options_and_templates_show_them(name):
    info = TASKS[name]
    for template in info.templates:
        assert template.inputs.endswith("\n{options_}"), template.name
    for k in range(len(info.templates)):
        for ex in _rendered(name, k) + _rendered(name, k, "train", 100):
            assert len(ex["options"]) >= 2 and len(set(ex["options"])) == len(ex["options"])
            assert ex["targets"] in ex["options"]
            assert ex["inputs"].endswith("OPTIONS:\n" + "\n".join(f"- {o}" for o in ex["options"]))
    if info.options:
        assert {ex["targets"] for ex in _rendered(name, 0)} == set(info.options)


def test_metrics_follow_task_kind():
    for info in TASKS.values():
        expected = "accuracy" if info.is_classification else "exact_match"
        assert [m.__name__ for m in info.metrics] == [expected]


def test_generators_are_deterministic_and_splits_differ():
    for name, spec in SPECS.items():
        sizes = {"train": 50, "validation": 50}
        first = list(generators.split_generator(name, spec.example_fn, sizes)("train"))
        again = list(generators.split_generator(name, spec.example_fn, sizes)("train"))
        validation = list(generators.split_generator(name, spec.example_fn, sizes)("validation"))
        assert first == again
        assert first != validation
    assert _raw("synthetic_addition", n=30) == _raw("synthetic_addition", n=30)


def test_generators_do_not_depend_on_python_hash_seed():
    """Another interpreter, with a different string-hash seed, generates the same examples."""
    path = pathlib.Path(generators.__file__)
    script = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('gen', {str(path)!r})\n"
        "gen = importlib.util.module_from_spec(spec); spec.loader.exec_module(gen)\n"
        "fns = json.loads(sys.argv[1])\n"
        "out = {name: list(gen.split_generator(name, getattr(gen, fn), {'validation': 5})('validation'))"
        " for name, fn in fns.items()}\n"
        "print(json.dumps(out))\n"
    )
    fns = {name: spec.example_fn.__name__ for name, spec in SPECS.items()}
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(fns)], env=env, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == {name: _raw(name, n=5) for name in SPECS}


def test_mixtures_hold_out_exactly_their_cluster():
    all_tasks = {t.name for t in seqio.get_mixture_or_task("synthetic_all").tasks}
    assert all_tasks == set(TASKS)
    assert set(synthetic.HELDOUT_MIXTURES) == set(synthetic.CLUSTERS)
    for cluster in synthetic.CLUSTERS:
        mixture = seqio.get_mixture_or_task(f"synthetic_heldout_{cluster}")
        assert synthetic.HELDOUT_MIXTURES[cluster] == mixture.name
        assert {t.name for t in mixture.tasks} == {n for n, info in TASKS.items() if info.cluster != cluster}


def test_mixture_rates_are_capped_examples():
    shares = mixing.mixture_shares(seqio.get_mixture_or_task("synthetic_all"))
    capped = {name: min(spec.train_size, mixing.DEFAULT_CAP) for name, spec in SPECS.items()}
    total = sum(capped.values())
    assert shares == pytest.approx({name: n / total for name, n in capped.items()})


def test_seqio_tasks_tokenize_without_truncation():
    vocabulary = seqio.ByteVocabulary()
    for name in TASKS:
        dataset = seqio.get_mixture_or_task(name).get_dataset(
            {"inputs": 128, "targets": 32}, split="validation", shuffle=False
        )
        for ex in itertools.islice(dataset.as_numpy_iterator(), 12):
            assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
            assert vocabulary.decode(ex["inputs"][:-1].tolist()) == ex["inputs_pretokenized"].decode()
            assert vocabulary.decode(ex["targets"][:-1].tolist()) == ex["targets_pretokenized"].decode()


def _numbers(text):
    return [int(n) for n in re.findall(r"\d+", text)]


def test_arithmetic_answers():
    for ex in _rendered("synthetic_addition", 0) + _rendered("synthetic_addition", 0, "train", 500):
        a, b = _numbers(ex["inputs"])
        assert int(ex["targets"]) == a + b
    for ex in _rendered("synthetic_addition", 6):
        a, total = _numbers(ex["inputs"])
        assert a + int(ex["targets"]) == total
    for ex in _rendered("synthetic_larger_number", 0):
        assert int(ex["targets"]) == max(int(o) for o in ex["options"])
    for ex in _rendered("synthetic_larger_number", 5):
        assert int(ex["targets"]) == min(int(o) for o in ex["options"])


def test_string_and_list_answers():
    for ex in _rendered("synthetic_reverse_word", 0):
        assert ex["targets"] == re.fullmatch(r'Reverse the word "(\w+)"\.', ex["inputs"]).group(1)[::-1]
    for ex in _rendered("synthetic_count_letter", 0):
        letter, word = re.fullmatch(r'.*letter "(\w)" appear in "(\w+)"\?', ex["inputs"]).groups()
        assert int(ex["targets"]) == sum(c == letter for c in word)
    for ex in _rendered("synthetic_sort_list", 0):
        assert _numbers(ex["targets"]) == sorted(_numbers(ex["inputs"]))
    for ex in _rendered("synthetic_sort_list", 5):
        assert _numbers(ex["targets"]) == sorted(_numbers(ex["inputs"]), reverse=True)
    for ex in _rendered("synthetic_list_extremes", 0):
        assert int(ex["targets"]) == max(_numbers(ex["inputs"]))
    for ex in _rendered("synthetic_list_extremes", 5):
        assert int(ex["targets"]) == min(_numbers(ex["inputs"]))


def test_comparison_answers():
    for ex in _rendered("synthetic_longer_word", 0):
        first, second = ex["options"]
        assert len(first) != len(second)
        assert ex["targets"] == max(first, second, key=len)
    answers = set()
    for ex in _rendered("synthetic_alphabetical_order", 0):
        first, second = re.fullmatch(r'Does "(\w+)" come before "(\w+)".*', ex["inputs"], re.S).groups()
        assert ex["targets"] == ("yes" if sorted([first, second])[0] == first else "no")
        answers.add(ex["targets"])
    assert answers == {"yes", "no"}


def _item_inference_label(premise, hypothesis):
    """An independent reading of the item-counting NLI task."""
    name, a, x, b, y = re.fullmatch(r"(\w+) has (\d) (\w+?)s? and (\d) (\w+?)s?", premise).groups()
    counts = {x: int(a), y: int(b)}
    if not hypothesis.startswith(name + " ") or " bought " in hypothesis:
        return "it is not possible to tell"
    if m := re.fullmatch(r"\w+ has (more|fewer) (\w+)s than (\w+)s", hypothesis):
        holds = counts[m[2]] > counts[m[3]] if m[1] == "more" else counts[m[2]] < counts[m[3]]
    elif m := re.fullmatch(r"\w+ has as many (\w+)s as (\w+)s", hypothesis):
        holds = counts[m[1]] == counts[m[2]]
    elif m := re.fullmatch(r"\w+ has no (\w+)s", hypothesis):
        holds = counts[m[1]] == 0
    elif m := re.fullmatch(r"\w+ has at least (\d) (\w+?)s?", hypothesis):
        holds = counts[m[2]] >= int(m[1])
    else:
        count, item = re.fullmatch(r"\w+ has (\d) (\w+?)s?", hypothesis).groups()
        if item not in counts:
            return "it is not possible to tell"
        holds = counts[item] == int(count)
    return "yes" if holds else "no"


def _syllogism_label(facts, question):
    """Forward chaining over the facts about one individual: yes / no when settled, else maybe."""
    known = {}
    rules = []
    for sentence in re.findall(r"[^.]+", facts):
        sentence = sentence.strip()
        if m := re.fullmatch(r"(All|No|Some) (\w+)s are (\w+?)", sentence):
            rules.append((m[1], m[2], m[3][:-1] if m[3][:-1] in generators.NONCE_NOUNS else m[3]))
        elif m := re.fullmatch(r"Every (\w+) is (\w+)", sentence):
            rules.append(("All", m[1], m[2]))
        else:
            m = re.fullmatch(r"\w+ is (not )?(a )?(\w+)", sentence)
            known[m[3]] = m[1] is None
    for _ in range(len(rules) + 1):
        for quantifier, subject, predicate in rules:
            if quantifier == "All" and known.get(subject) is True:
                known[predicate] = True
            if quantifier == "All" and known.get(predicate) is False:
                known[subject] = False
            if quantifier == "No" and known.get(subject) is True:
                known[predicate] = False
            if quantifier == "No" and known.get(predicate) is True:
                known[subject] = False
    asked = re.fullmatch(r"Is \w+ (a )?(\w+)\?", question)[2]
    return {True: "yes", False: "no", None: "maybe"}[known.get(asked)]


def test_entailment_answers():
    for ex in _raw("synthetic_item_inference") + _raw("synthetic_item_inference", "train", 1000):
        assert ex["answer"] == _item_inference_label(ex["premise"], ex["hypothesis"]), ex
    for ex in _raw("synthetic_syllogism") + _raw("synthetic_syllogism", "train", 1000):
        assert ex["answer"] == _syllogism_label(ex["facts"], ex["question"]), ex
        assert ex["question"] == f"Is {ex['claim'].replace(' is ', ' ', 1)}?"
    for name in ("synthetic_item_inference", "synthetic_syllogism"):
        assert {ex["answer"] for ex in _raw(name)} == set(TASKS[name].options)


def _shift_back(text):
    return "".join(chr((ord(c) - ord("a") - 3) % 26 + ord("a")) if c.isalpha() else c for c in text)


def test_translation_answers():
    for ex in _raw("synthetic_caesar_cipher") + _raw("synthetic_caesar_cipher", "train", 500):
        assert _shift_back(ex["cipher"]) == ex["text"]
    assert generators.caesar("xyz abc") == "abc def"
    assert [generators.pig_latin(w) for w in ("apple", "bread", "string", "egg tiger")] == [
        "appleway", "eadbray", "ingstray", "eggway igertay"
    ]
    for ex in _raw("synthetic_pig_latin"):
        words = ex["translation"].split()
        assert len(words) == len(ex["text"].split())
        for original, translated in zip(ex["text"].split(), words):
            onset = re.match(r"[^aeiou]*", original).group(0)
            assert translated == (original + "way" if not onset else original[len(onset):] + onset + "ay")
