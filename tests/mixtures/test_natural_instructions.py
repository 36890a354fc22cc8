"""The NIv2 submix: the real miniature repository through seqio, its patterns, the MMLU exclusion, a missing
repository, the evaluation collection and ROUGE-L."""

import itertools
import json

import pytest
import seqio

import mixtures.natural_instructions as niv2
from it_jax import errors
from it_jax.data import tasks
from it_jax.data.context import TaskContext
from it_jax.evaluation import evaluate, evaluator, metrics
from mixtures import flan2022
from mixtures.natural_instructions import source as source_lib
from mixtures.natural_instructions.templates import FEW_SHOT, INLINE, ZERO_SHOT


def _split_list(root, which):
    return (root / "splits" / "default" / f"{which}_tasks.txt").read_text().split()


def _task_file(task_id, instances):
    return {
        "Definition": [f"Definition of task {task_id}: copy the input."],
        "Positive Examples": [{"input": f"pos{i}", "output": f"pos{i}", "explanation": f"why {i}"} for i in range(2)],
        "Instances": [
            {"id": f"{task_id}-{i}", "input": f"in{i}", "output": [f"in{i}", "alt"]} for i in range(instances)
        ],
    }


def _tiny_repo(root, train, test=("task002_test",), instances=5):
    """A hand-made repository: `train` and `test` (names) listed in the default split, each with a file."""
    (root / "tasks").mkdir(parents=True)
    (root / "splits" / "default").mkdir(parents=True)
    for name in (*train, *test):
        task_file = _task_file(name.split("_")[0], instances.get(name, 5) if isinstance(instances, dict) else instances)
        (root / "tasks" / f"{name}.json").write_text(json.dumps(task_file, indent=4))
    (root / "splits" / "default" / "train_tasks.txt").write_text("\n".join(train) + "\n")
    (root / "splits" / "default" / "test_tasks.txt").write_text("\n".join(test) + "\n")
    return root


@pytest.fixture
def repo(shared_data):
    """The real miniature, registered with the T5 SentencePiece vocabulary (tiny repositories' tasks removed)."""
    root = shared_data / "natural_instructions"
    for name in list(seqio.TaskRegistry.names()):
        if name.startswith("niv2_"):
            seqio.TaskRegistry.remove(name)
    vocabulary = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    niv2.register(TaskContext(vocabulary), root=root)
    return root


def _raw(root, name):
    return json.loads((root / "tasks" / f"{name}.json").read_text())


def test_the_split_lists_are_registered(repo):
    train = {info.name for info in tasks.registered_tasks("niv2")}
    expected = {f"niv2_{name}{suffix}" for name in _split_list(repo, "train") for suffix in ("", "_fs_opt")}
    assert train == expected and len(expected) == 20
    assert "niv2_task1575_amazon_reviews_multi_sentiment_classification" not in seqio.TaskRegistry.names()


@pytest.mark.parametrize("which", ["train", "test"])
def test_every_pattern_renders_real_instances_with_the_definition(repo, which):
    for name in _split_list(repo, which):
        raw = _raw(repo, name)
        for suffix in ("", "_fs_opt"):
            info = tasks.task_info(f"niv2_{name}{suffix}")
            split = info.source.splits[0]
            assert len(info.templates) == (len(ZERO_SHOT) + len(INLINE) if not suffix else len(FEW_SHOT))
            for k in range(len(info.templates)):
                for ex in itertools.islice(info.render(split, k), 3):
                    outputs = raw["Instances"][ex["idx"]]["output"]
                    assert raw["Definition"][0].strip() in ex["inputs"]
                    assert raw["Instances"][ex["idx"]]["input"].strip() in ex["inputs"]
                    assert ex["targets"] == outputs[0] and ex["references"][0] == outputs[0]
                    assert set(ex["references"]) == set(outputs)


def test_inline_patterns_hold_the_first_positive_example_and_its_explanation(repo):
    name = "task640_esnli_classification"
    positive = _raw(repo, name)["Positive Examples"][0]
    info = tasks.task_info(f"niv2_{name}")
    for k in range(len(ZERO_SHOT), len(info.templates)):
        inputs = next(info.render("validation", k))["inputs"]
        for part in (positive["input"].strip(), positive["output"], positive["explanation"]):
            assert part in inputs, (k, part)
    assert positive["explanation"] not in next(info.render("validation", 0))["inputs"]


@pytest.mark.parametrize(
    "name, split", [("task1332_check_leap_year", "train"), ("task640_esnli_classification", "test")]
)
def test_few_shot_inputs_hold_two_exemplars_then_the_query(repo, name, split):
    raw = _raw(repo, name)
    info = tasks.task_info(f"niv2_{name}_fs_opt")
    pool = raw["Instances"][:32] if split == "train" else raw["Positive Examples"]
    shots = [
        [
            exemplar.format(input=e["input"].strip(), output=e["output"] if split != "train" else e["output"][0])
            for e in pool
        ]
        for exemplar, _ in FEW_SHOT
    ]
    for k in range(len(FEW_SHOT)):
        for ex in itertools.islice(info.render(split, k), 10):
            inputs, query = ex["inputs"], raw["Instances"][ex["idx"]]["input"].strip()
            found = sorted((inputs.index(shot), i) for i, shot in enumerate(shots[k]) if shot in inputs)
            assert len(found) == 2, (k, inputs)
            assert inputs.index(raw["Definition"][0].strip()) < found[0][0]
            assert found[1][0] < inputs.rindex(query)
            if split == "train":
                assert ex["idx"] not in [i for _, i in found]  # never its own answer
    first = [ex["inputs"] for ex in itertools.islice(info.render(split), 5)]
    assert first == [ex["inputs"] for ex in itertools.islice(info.render(split), 5)]  # deterministic
    assert [
        ex["inputs"] for ex in itertools.islice(info.render("validation" if split == "test" else split), 5)
    ] == first


def test_the_tasks_flow_through_get_dataset_with_sentencepiece(repo):
    lengths = {"inputs": 512, "targets": 64}
    mixture = seqio.get_mixture_or_task("niv2_all")
    examples = list(mixture.get_dataset(lengths, split="train", shuffle=False, seed=0).take(16).as_numpy_iterator())
    assert len(examples) == 16 and all(ex["inputs"][-1] == 1 and ex["targets"][-1] == 1 for ex in examples)
    task = seqio.get_mixture_or_task("niv2_task1152_bard_analogical_reasoning_causation_fs_opt")
    ex = next(task.get_dataset(lengths, split="validation", shuffle=False).as_numpy_iterator())
    assert ex["inputs_pretokenized"].decode().endswith("Output:") and ex["targets"][-1] == 1


def test_niv2_all_mixes_zero_and_few_shot_half_and_half_capped_at_5000(tmp_path):
    root = _tiny_repo(tmp_path / "ni", ["task001_big", "task003_small"], instances={"task001_big": 5_001})
    niv2.register(TaskContext(), root=root)
    mixture = seqio.get_mixture_or_task("niv2_all")
    assert [(m.name, mixture.get_rate(m)) for m in mixture._sub_mixtures] == [
        ("niv2_zs_opt", 0.5),
        ("niv2_fs_opt", 0.5),
    ]
    zero_shot = seqio.get_mixture_or_task("niv2_zs_opt")
    assert [zero_shot.get_rate(t) for t in zero_shot.tasks] == [5_000, 5]
    composed = flan2022.compose(
        "niv2_flan2022_test",
        [flan2022.Submixture("niv2", niv2.register(TaskContext(), root=root), 0.2, 5_000, flan2022.ZERO_AND_FEW_SHOT)],
        TaskContext(),
    )
    assert {t.name for t in composed.tasks} == {
        f"niv2_{n}{s}" for n in ("task001_big", "task003_small") for s in ("", "_fs_opt")
    }


def test_mmlu_derived_tasks_are_excluded(tmp_path):
    root = _tiny_repo(tmp_path / "ni", ["task001_copy", "task700_mmlu_answer_generation_anatomy"])
    infos = niv2.register(TaskContext(), root=root)
    assert [info.name for info in infos] == ["niv2_task001_copy"]
    assert "niv2_task700_mmlu_answer_generation_anatomy" not in seqio.TaskRegistry.names()
    assert all(niv2.is_mmlu(f"task{i}_x") for i in (664, 667, 685, 737))
    assert not any(niv2.is_mmlu(f"task{i}_x") for i in (663, 668, 684, 738))


def test_the_data_directory_locates_the_repository(tmp_path):
    _tiny_repo(tmp_path / "data" / "natural_instructions", ["task001_copy"])
    infos = niv2.register(TaskContext(data_dir=str(tmp_path / "data")))
    assert infos[0].num_examples("train") == 5


def test_a_missing_repository_is_a_clear_error(tmp_path):
    with pytest.raises(errors.ConfigError, match="git clone https://github.com/allenai/natural-instructions") as info:
        niv2.register(TaskContext(data_dir=str(tmp_path)))
    assert str(tmp_path / "natural_instructions") in info.value.message
    with pytest.raises(errors.ConfigError, match="root given"):
        niv2.register(TaskContext(), root=tmp_path / "nowhere")
    with pytest.raises(errors.ConfigError, match="no data directory"):
        niv2.register(TaskContext())


def test_a_task_file_removed_after_registration_fails_when_read(tmp_path):
    root = _tiny_repo(tmp_path / "ni", ["task001_copy"])
    niv2.register(TaskContext(), root=root)
    (root / "tasks" / "task001_copy.json").unlink()
    with pytest.raises(errors.DataError, match="task001_copy.json"):
        next(tasks.task_info("niv2_task001_copy").render("train"))


def test_the_eval_collection_is_the_test_split_scored_with_rouge_l_and_exact_match(repo):
    names = evaluate.select_tasks(mixture="niv2_eval")
    assert sorted(names) == sorted(evaluate.select_tasks(cluster="niv2_test"))
    assert {tasks.task_info(n).name.removesuffix("_fs_opt") for n in names} == {
        f"niv2_{name}" for name in _split_list(repo, "test")
    }
    for job in evaluator.jobs_for(names):
        assert job.info.metrics == (metrics.rouge_l, metrics.exact_match) and not job.info.is_classification
        assert job.info.num_examples("validation") == job.info.num_examples("test") == source_lib.EVAL_INSTANCES


def test_rouge_l_scores_the_best_reference():
    assert metrics.rouge_l(["the cat sat"], ["the cat sat"]) == {"rougeL": 100.0}
    assert metrics.rouge_l([["a dog ran", "the cat sat"]], ["the cat sat"]) == {"rougeL": 100.0}
    assert metrics.rouge_l(["the cat sat down"], ["the cat"])["rougeL"] == pytest.approx(100 * 2 / 3)
    assert metrics.rouge_l([], []) == {"rougeL": 0.0}
