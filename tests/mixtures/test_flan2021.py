"""The FLAN 2021 collection: every template renders on TFDS-shaped examples; counts; held-out mixtures."""

import collections
import functools

import pytest
import seqio
import tensorflow_datasets as tfds

import mixtures.flan2021 as flan
from it_jax.data import fewshot, mixing, tasks
from it_jax.data.context import TaskContext
from it_jax.data.sources import _to_python
from mixtures.flan2021.spec import CLUSTERS

SPEC_IDS = [spec.name for spec in flan.SPECS]


@pytest.fixture(autouse=True)
def registered():
    """The collection registered as a run without a data directory would (TFDS, byte vocabulary)."""
    return flan.register(TaskContext())


def _register_mirrored(shared_data, vocabulary=None):
    """The collection registered to read the shared mirrors (with `vocabulary`, default bytes)."""
    settings = {"vocabulary": vocabulary} if vocabulary is not None else {}
    flan.register(TaskContext(data_dir=str(shared_data / "tfds_jsonl"), **settings))


@functools.cache
def _mock_examples(tfds_name: str, split: str, n: int = 3) -> list[dict]:
    """Random examples shaped exactly like the TFDS features (no download).

    Mock data fills plain integer features with random values; a plain-int `label` (an index into the
    example's own candidates, e.g. HellaSwag's endings) is set to 1, valid for every such dataset.
    """
    with tfds.testing.mock_data(num_examples=n, policy=tfds.testing.MockPolicy.USE_CODE):
        examples = [_to_python(ex) for ex in tfds.as_numpy(tfds.load(tfds_name, split=split))]
    features = tfds.builder(tfds_name).info.features
    if "label" in features and not isinstance(features["label"], tfds.features.ClassLabel):
        for example in examples:
            example["label"] = 1
    return examples


@pytest.mark.parametrize("spec", flan.SPECS, ids=SPEC_IDS)
def test_every_template_renders_on_tfds_shaped_examples(spec):
    assert len(spec.templates) >= 7, "FLAN style: about ten templates per dataset"
    assert len(spec.inverted_templates) <= 3
    info = tasks.task_info(f"flan2021_{spec.name}")
    for split in dict.fromkeys(spec.splits.values()):
        for example in _mock_examples(spec.tfds_name, split):
            fields = info.fields(example, 0)
            for k, template in enumerate(info.templates):
                rendered = template.render(fields)
                assert rendered["inputs"], template.name
                if info.is_classification and k in info.eval_templates:
                    assert template.uses_options, f"{template.name}: classification templates show the options"
                    assert rendered["targets"] in fields["options"], (template.name, rendered, fields["options"])


def test_the_collection_has_62_datasets_in_12_clusters():
    datasets = {(spec.dataset, spec.cluster) for spec in flan.SPECS}
    assert len({d for d, _ in datasets}) == 62
    assert {c for _, c in datasets} == set(CLUSTERS)
    assert len(set(SPEC_IDS)) == len(SPEC_IDS)


def test_tfds_names_carry_versions():
    for spec in flan.SPECS:
        assert ":" in spec.tfds_name, spec.name


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_heldout_mixtures_drop_exactly_the_right_clusters(cluster):
    mixture = seqio.get_mixture_or_task(f"flan2021_heldout_{cluster}")
    kept = {tasks.task_info(t.name).cluster for t in mixture.tasks}
    removed = mixing.heldout_clusters(cluster, flan.OVERLAPS)
    assert kept == set(CLUSTERS) - removed
    assert cluster in removed
    if cluster == "nli":
        assert "paraphrase" in removed
    if cluster in ("reading_comprehension", "commonsense"):
        assert "read_comp_with_commonsense" in removed


def test_clusters_are_balanced_enough_to_hold_out():
    per_cluster = collections.Counter(spec.cluster for spec in flan.SPECS)
    assert all(per_cluster[c] >= 1 for c in CLUSTERS)


@pytest.mark.parametrize("name", ["rte", "sst2", "mrpc", "snli", "piqa"])
def test_local_mirrors_flow_through_get_dataset_with_sentencepiece(name, shared_data):
    spm = seqio.SentencePieceVocabulary(str(shared_data / "tokenizers" / "t5" / "spiece.model"))
    _register_mirrored(shared_data, spm)
    task = seqio.get_mixture_or_task(f"flan2021_{name}")
    dataset = task.get_dataset({"inputs": 512, "targets": 64}, split="validation", shuffle=False)
    examples = list(dataset.take(4).as_numpy_iterator())
    assert len(examples) == 4
    for ex in examples:
        assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
        # SentencePiece normalizes runs of spaces, so compare word sequences.
        assert spm.decode(ex["targets"].tolist()).split() == ex["targets_pretokenized"].decode().split()
        if tasks.task_info(task.name).is_classification:
            assert ex["targets_pretokenized"] in list(ex["options"])


@pytest.mark.parametrize("cluster", CLUSTERS)
def test_eval_mixtures_cover_the_cluster_uncapped_on_validation(cluster):
    mixture = seqio.get_mixture_or_task(f"flan2021_eval_{cluster}")
    expected = {
        f"flan2021_{s.name}_scoring" if s.options is not None else f"flan2021_{s.name}"
        for s in flan.SPECS
        if s.cluster == cluster
    }
    assert {t.name for t in mixture.tasks} == expected


def test_variants_render_from_the_mirrors(shared_data):
    _register_mirrored(shared_data)
    info = tasks.task_info("flan2021_rte")
    zero = next(info.render("validation", 0))
    no_options = next(info.render("validation", 0, fewshot.VARIANTS[1]))
    few = next(info.render("validation", 0, fewshot.VARIANTS[2]))
    assert "OPTIONS:" in zero["inputs"] and "OPTIONS:" not in no_options["inputs"]
    assert few["inputs"].endswith(zero["inputs"]) and few["inputs"].count("OPTIONS:") > 1
    assert len(few["inputs"]) <= fewshot.VARIANTS[2].max_input_chars
    for suffix in ("_zs_noopt", "_fs_opt", "_fs_noopt"):
        assert seqio.TaskRegistry.get(f"flan2021_rte{suffix}")


def test_choose_option_collapses_spaces_and_rejects_a_bad_index():
    from mixtures.flan2021.spec import choose_option

    assert choose_option(["a  b", " c"], 0) == {"options": ["a b", "c"], "answer": "a b"}
    with pytest.raises(ValueError, match="answer index 2 is out of range for 2 options"):
        choose_option(["a", "b"], 2)
