"""The FLAN 2022 t0 submix: templates render on Hugging Face-shaped examples, the real local mirrors (DREAM,
QuAIL, CoS-E, WebQuestions) flow through seqio, templates are original, and `t0_all` caps at 20,000."""

import itertools

import pytest
import seqio

from it_jax.data import fewshot, sources, tasks
from it_jax.data.context import TaskContext
from mixtures import flan2021, t0
from mixtures.t0.spec import CLUSTERS

_SQUAD_ANSWERS = {"text": ["the river", "a river"], "answer_start": [10, 8]}

# One example per Hugging Face dataset, with exactly its `datasets` Features' field names and types.
EXAMPLES = {
    "adversarial_qa": {
        "id": "a1", "title": "River_Thames", "context": "London lies on the river Thames.",
        "question": "What does London lie on?", "answers": _SQUAD_ANSWERS,
        "metadata": {"split": "train", "model_in_the_loop": "BiDAF"},
    },
    "amazon_polarity": {"label": 1, "title": "Great kettle", "content": "Boils fast and looks nice."},
    "app_reviews": {"package_name": "com.example.notes", "review": "Crashes every time.", "date": "October 12 2016", "star": 1},
    "cos_e": {
        "id": "c1", "question": "Where do fish live?", "choices": ["tree", "water", "sky", "desk", "oven"],
        "answer": "water", "abstractive_explanation": "Fish need water to breathe.", "extractive_explanation": "fish",
    },
    "dbpedia_14": {"label": 9, "title": "Red fox", "content": " The red fox is the largest of the true foxes."},
    "dream": {
        "id": 0, "dialogue_id": "1-1", "dialogue": ["M: Is it raining?", "W: Yes, take an umbrella."],
        "question": "What is the weather like?", "choice": ["Sunny.", "Rainy.", "Snowy."], "answer": "Rainy.",
    },
    "duorc": {
        "plot_id": "p1", "plot": "A girl finds a dragon egg and raises the dragon.", "title": "Dragon Girl",
        "question_id": "q1", "question": "What does the girl find?", "answers": ["a dragon egg"], "no_answer": False,
    },
    "kilt_tasks": {
        "id": "k1", "input": "Which river flows through the capital of England?",
        "meta": {"left_context": "", "mention": "", "right_context": "", "partial_evidence": [], "obj_surface": [],
                 "sub_surface": [], "subj_aliases": [], "template_questions": []},
        "output": [{"answer": "Thames", "meta": {"score": 0}, "provenance": []}, {"answer": "", "meta": {"score": 0}, "provenance": []}],
    },
    "qasc": {
        "id": "q1", "question": "What do plants need to grow?",
        "choices": {"text": ["rocks", "sunlight", "plastic", "noise", "sand", "glass", "metal", "smoke"],
                    "label": ["A", "B", "C", "D", "E", "F", "G", "H"]},
        "answerKey": "B", "fact1": "Plants need energy to grow.", "fact2": "Sunlight gives plants energy.",
        "combinedfact": "Plants need sunlight to grow.", "formatted_question": "What do plants need to grow? (A) rocks ...",
    },
    "quail": {
        "id": "f1_1", "context_id": "f1", "question_id": "1", "domain": "fiction",
        "metadata": {"author": "A. Writer", "title": "The Storm", "url": "http://example.com"},
        "context": "The storm broke the old oak.", "question": "What broke the oak?", "question_type": "Causality",
        "answers": ["wind", "the storm", "a saw", "not enough information"], "correct_answer_id": 1,
    },
    "quarel": {
        "id": "QuaRel_1", "answer_index": 1, "logical_forms": ["(infer ...)"], "logical_form_pretty": "qrel(...)",
        "world_literals": {"world1": ["carpet"], "world2": ["ice"]},
        "question": "A puck slides farther on ice than on carpet. Which surface has less friction? (A) carpet (B) ice",
    },
    "quartz": {
        "id": "qz1", "question": "If Tom heats water more, it will evaporate", "para": "Warmer water evaporates faster.",
        "choices": {"text": ["faster", "slower"], "label": ["A", "B"]}, "answerKey": "A", "para_id": "p1",
        "para_anno": {"effect_prop": "", "cause_dir_str": "", "effect_dir_str": "", "cause_dir_sign": "", "effect_dir_sign": "", "cause_prop": ""},
        "question_anno": {"more_effect_dir": "", "less_effect_dir": "", "less_cause_prop": "", "more_effect_prop": "",
                          "less_effect_prop": "", "less_cause_dir": ""},
    },
    "quoref": {
        "id": "r1", "question": "Who did Anna help?", "context": "Anna met Ben. She helped him carry boxes.",
        "title": "Boxes", "url": "http://example.com", "answers": {"answer_start": [9], "text": ["Ben"]},
    },
    "race": {
        "example_id": "high1.txt", "article": "Tom likes apples. He eats one every day.", "answer": "C",
        "question": "What does Tom eat every day?", "options": ["A pear.", "A plum.", "An apple.", "A banana."],
    },
    "ropes": {
        "id": "rp1", "background": "Fertilizer runoff causes algae blooms.",
        "situation": "Farm A uses fertilizer; farm B does not. Both are next to lakes.",
        "question": "Which farm's lake has more algae?", "answers": {"text": ["Farm A"]},
    },
    "sciq": {
        "question": "What gas do plants absorb?", "distractor3": "helium", "distractor1": "oxygen",
        "distractor2": "nitrogen", "correct_answer": "carbon dioxide", "support": "Plants take in carbon dioxide for photosynthesis.",
    },
    "social_i_qa": {
        "context": "Jordan gave Sam a gift.", "question": "How would Sam feel?",
        "answerA": "grateful", "answerB": "angry", "answerC": "bored", "label": "1",
    },
    "web_questions": {"url": "http://www.freebase.com/view/en/jamaica", "question": "what does jamaican people speak?",
                      "answers": ["Jamaican English", "Jamaican Creole English Language"]},
    "wiki_bio": {
        "input_text": {
            "table": {"column_header": ["name", "birth_date", "image", "occupation"], "row_number": [1, 1, 1, 1],
                      "content": ["ada lovelace", "10 december 1815", "ada.jpg", "mathematician"]},
            "context": "ada lovelace\n",
        },
        "target_text": "ada lovelace -lrb- 10 december 1815 -rrb- was an english mathematician .\n",
    },
    "wiki_hop": {
        "id": "w1", "question": "country_of_citizenship ada lovelace", "answer": "united kingdom",
        "candidates": ["france", "united kingdom"], "supports": ["Ada Lovelace was born in London.", "London is in the United Kingdom."],
        "annotations": [],
    },
    "wiki_qa": {
        "question_id": "Q1", "question": "how tall is the eiffel tower", "document_title": "Eiffel Tower",
        "answer": "The tower is 330 metres tall.", "label": 1,
    },
    "wiqa": {
        "question_stem": "suppose more rain falls happens, how will it affect more water in the river?",
        "question_para_step": ["Rain falls.", "Water flows into the river.", ""], "answer_label": "more",
        "answer_label_as_choice": "A", "choices": {"text": ["more", "less", "no effect"], "label": ["A", "B", "C"]},
        "metadata_question_id": "m1", "metadata_graph_id": "g1", "metadata_para_id": "p1",
        "metadata_question_type": "EXOGENOUS_EFFECT", "metadata_path_len": 2,
    },
}

REAL_DATA = {"dream": 2_040, "quail": 2_164, "cos_e_v1_11": 1_221, "web_questions": 2_032}
SPEC_IDS = [spec.name for spec in t0.SPECS]


@pytest.fixture(autouse=True)
def registered():
    """The submix registered as a run without a data directory would (TFDS, byte vocabulary)."""
    return t0.register(TaskContext())


def _dataset(spec) -> str:
    return spec.hf_name.split("/")[0]


@pytest.mark.parametrize("spec", t0.SPECS, ids=SPEC_IDS)
def test_every_template_renders_on_a_hugging_face_shaped_example(spec):
    assert 6 <= len(spec.templates) and len(spec.templates) + len(spec.inverted_templates) >= 7
    info = tasks.task_info(f"t0_{spec.name}")
    fields = info.fields(EXAMPLES[_dataset(spec)], 0)
    for k, template in enumerate(info.templates):
        rendered = template.render(fields)
        assert rendered["inputs"].strip() and rendered["targets"].strip(), template.name
        if info.is_classification and k in info.eval_templates:
            assert template.uses_options, f"{template.name}: multiple-choice templates show the options"
            assert rendered["targets"] in fields["options"], (template.name, rendered, fields["options"])


def test_preprocessors_read_the_right_answer():
    expected = {
        "adversarial_qa_dbidaf": "the river", "amazon_polarity": "positive", "app_reviews": "1",
        "cos_e_v1_11": "water", "dbpedia_14": "animal", "dream": "Rainy.", "duorc_selfrc": "a dragon egg",
        "kilt_tasks_hotpotqa": "Thames", "qasc": "sunlight", "quail": "the storm", "quarel": "ice",
        "quartz": "faster", "quoref": "Ben", "race_high": "An apple.", "ropes": "Farm A", "sciq": "carbon dioxide",
        "social_i_qa": "grateful", "web_questions": "Jamaican English", "wiki_hop_original": "united kingdom",
        "wiki_qa": "yes", "wiqa": "more",
    }
    by_name = {spec.name: spec for spec in t0.SPECS}
    for name, answer in expected.items():
        spec = by_name[name]
        assert spec.preprocessor(EXAMPLES[_dataset(spec)])["answer"] == answer, name
    quarel = by_name["quarel"].preprocessor(EXAMPLES["quarel"])
    assert quarel["options"] == ["carpet", "ice"] and quarel["question"].endswith("less friction?")
    wiki_bio = by_name["wiki_bio"].preprocessor(EXAMPLES["wiki_bio"])
    assert wiki_bio["facts"] == "name: ada lovelace\nbirth date: 10 december 1815\noccupation: mathematician"
    assert by_name["duorc_selfrc"].preprocessor({**EXAMPLES["duorc"], "no_answer": True})["answer"] == "No answer"


def test_the_submix_covers_the_t0_configurations():
    assert len(t0.SPECS) == 26 and len(set(SPEC_IDS)) == 26
    assert {spec.cluster for spec in t0.SPECS} == set(CLUSTERS)
    assert {spec.tfds_name for spec in t0.SPECS} >= {"huggingface:adversarial_qa/dbidaf", "huggingface:duorc/ParaphraseRC"}


def test_mirror_directories_match_the_shared_data():
    names = {spec.name: sources.mirror_dir_name(spec.tfds_name) for spec in t0.SPECS}
    assert [names[n] for n in REAL_DATA] == ["hf__dream", "hf__quail", "hf__cos_e__v1.11", "hf__web_questions"]
    assert sources.mirror_dir_name("super_glue/rte:1.0.2") == "super_glue__rte"


def test_templates_are_not_flan2021_templates():
    flan_patterns = {
        pattern for spec in flan2021.SPECS for pair in (*spec.templates, *spec.inverted_templates) for pattern in pair
    }
    for spec in t0.SPECS:
        for inputs, _ in (*spec.templates, *spec.inverted_templates):
            assert inputs not in flan_patterns, (spec.name, inputs)


def test_t0_all_has_one_task_per_configuration_capped_at_20000(tmp_path):
    """Stand-in mirrors: a 25,000-example train split is mixed at the cap, a 50-example one at its size."""
    for directory, count in (("hf__app_reviews", 25_000), ("hf__sciq", 50)):
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "train.jsonl").write_text("{}\n" * count)
    t0.register(TaskContext(data_dir=str(tmp_path)))
    mixture = seqio.get_mixture_or_task(t0.MIXTURE)
    assert {task.name for task in mixture.tasks} == {f"t0_{name}" for name in SPEC_IDS}
    assert mixture.get_rate(seqio.get_mixture_or_task("t0_app_reviews")) == t0.CAP == 20_000
    assert mixture.get_rate(seqio.get_mixture_or_task("t0_sciq")) == 50


def test_every_task_has_the_four_variants():
    for name in SPEC_IDS:
        for variant in fewshot.VARIANTS:
            assert f"t0_{name}{variant.suffix}" in seqio.TaskRegistry.names()


@pytest.fixture
def data_dir(shared_data):
    """The submix registered to read the shared mirrors."""
    t0.register(TaskContext(data_dir=str(shared_data / "tfds_jsonl")))
    return shared_data


@pytest.mark.parametrize("name", REAL_DATA)
def test_every_template_renders_the_real_examples(name, data_dir):
    info = tasks.task_info(f"t0_{name}")
    assert info.num_examples("validation") == REAL_DATA[name]
    for j, example in enumerate(info.source.examples("validation")):
        fields = info.fields(example, j, "validation")
        for k, template in enumerate(info.templates):
            rendered = template.render(fields)
            if info.is_classification and k in info.eval_templates:
                assert rendered["targets"] in fields["options"], (template.name, j)


@pytest.mark.parametrize("name", REAL_DATA)
def test_real_data_flows_through_get_dataset_with_sentencepiece(name, data_dir):
    spm = seqio.SentencePieceVocabulary(str(data_dir / "tokenizers" / "t5" / "spiece.model"))
    t0.register(TaskContext(spm, data_dir=str(data_dir / "tfds_jsonl")))
    task = seqio.get_mixture_or_task(f"t0_{name}")
    assert task.num_input_examples("validation") == REAL_DATA[name]
    dataset = task.get_dataset({"inputs": 1024, "targets": 128}, split="validation", shuffle=False)
    examples = list(itertools.islice(dataset.as_numpy_iterator(), 16))
    assert len(examples) == 16
    n_templates = len(tasks.task_info(task.name).templates)
    assert [ex["template"] for ex in examples] == [j % n_templates for j in range(16)]
    for ex in examples:
        assert ex["inputs"][-1] == 1 and ex["targets"][-1] == 1
        options = [option.decode() for option in ex["options"]]
        if name != "web_questions" and ex["template"] < len(t0.SPECS[SPEC_IDS.index(name)].templates):
            assert ex["targets_pretokenized"].decode() in options
        assert spm.decode(ex["targets"][:-1].tolist()).strip()
