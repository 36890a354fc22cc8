"""T0 multiple-choice science and qualitative-reasoning QA: QASC, QuaRel, QuaRTz, SciQ, WIQA."""

import re
import zlib

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec, choose_option

CLUSTER = "multiple_choice_qa"
_ACCURACY = (metrics.accuracy,)


def _by_label(choices: Fields, key: str) -> Fields:
    """Options from a `choices` {text, label} feature and the answer whose label is `key` (e.g. "C")."""
    return choose_option(choices["text"], list(choices["label"]).index(key.strip()))


_QASC_TEMPLATES = (
    ("{question}\nEight choices, one correct:\n{options_}", "{answer}"),
    ("Fact 1: {fact1}\nFact 2: {fact2}\n\nPutting the two facts together, {question}\n{options_}", "{answer}"),
    ("Grade-school science. {question}\nChoose one:\n{options_}", "{answer}"),
    ("Knowing that {combined_fact}, answer the question.\n\n{question}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of the choices above correctly completes this? {question}", "{answer}"),
    ("You are told two things: \"{fact1}\" and \"{fact2}\"\nQ: {question}\n{options_}\nA:", "{answer}"),
)

_QASC_INVERTED = (
    ("Fact 1: {fact1}\nFact 2: {fact2}\n\nWhat single fact follows from combining these two?", "{combined_fact}"),
    ("Write a science question that can be answered by combining \"{fact1}\" with \"{fact2}\"; its answer should be \"{answer}\".", "{question}"),
)


def qasc(example: Fields) -> Fields:
    """The two facts, their combination, and the eight choices (labelled A-H) as options."""
    return {
        "question": example["question"],
        "fact1": example["fact1"],
        "fact2": example["fact2"],
        "combined_fact": example["combinedfact"],
        **_by_label(example["choices"], example["answerKey"]),
    }


_QUAREL_TEMPLATES = (
    ("{question}\nOf the two answers below, which is right?\n{options_}", "{answer}"),
    ("Think about friction, speed, heat, distance and similar qualities. {question}\nPick one:\n{options_}", "{answer}"),
    ("Question: {question}\n\nCompare \"{world1}\" with \"{world2}\" to decide.\n{options_}", "{answer}"),
    ("A physics puzzle about everyday things: {question}\nWhich is right?\n{options_}", "{answer}"),
    ("{options_}\n\nOnly one of the answers above is consistent with the story. {question}", "{answer}"),
    ("Here is a comparison question between two situations.\n\n{question}\n\nAnswer:\n{options_}", "{answer}"),
)

_QUAREL_INVERTED = (
    ("Write a short story comparing {world1} and {world2}, ending with a question whose answer is \"{answer}\".", "{question}"),
)

_QUAREL_OPTIONS = re.compile(r"^(?P<stem>.*?)\s*\(A\)\s*(?P<a>.*?)\s*\(B\)\s*(?P<b>.*?)\s*$", re.DOTALL)


def quarel(example: Fields) -> Fields:
    """QuaRel's question ends with its two options, "(A) ... (B) ..."; they are split off. `world1` and
    `world2` are the names the question gives the two situations."""
    match = _QUAREL_OPTIONS.match(example["question"])
    if match is None:
        raise ValueError(f"no (A)/(B) options in the question {example['question']!r}")
    worlds = example["world_literals"]
    return {
        "question": match["stem"],
        "world1": worlds["world1"][0],
        "world2": worlds["world2"][0],
        **choose_option([match["a"], match["b"]], example["answer_index"]),
    }


_QUARTZ_TEMPLATES = (
    ("{para}\n\n{question}\n{options_}", "{answer}"),
    ("Use this fact to answer the question.\nFact: {para}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("Question: {question}\n{options_}\n\nHint: {para}", "{answer}"),
    ("Here is a rule about how one quantity affects another: {para}\n\nApply it. {question}\n{options_}", "{answer}"),
    ("{para}\n\nGiven the statement above, which word correctly completes the sentence? {question}\n{options_}", "{answer}"),
    ("Qualitative reasoning.\nKnowledge: {para}\nQ: {question}\n{options_}\nA:", "{answer}"),
)

_QUARTZ_INVERTED = (
    ("Write a question testing whether a reader can apply this statement, with the answer choices \"{option_a}\" and \"{option_b}\".\n\n{para}", "{question}"),
)


def quartz(example: Fields) -> Fields:
    """The background sentence `para` and the two choices as options."""
    fields = _by_label(example["choices"], example["answerKey"])
    return {
        "para": example["para"],
        "question": example["question"],
        "option_a": fields["options"][0],
        "option_b": fields["options"][1],
        **fields,
    }


_SCIQ_TEMPLATES = (
    ("{question}\nSelect the scientifically correct answer:\n{options_}", "{answer}"),
    ("{support}\n\nUsing the paragraph above, answer: {question}\n{options_}", "{answer}"),
    ("Science quiz. {question}\nChoose the correct answer:\n{options_}", "{answer}"),
    ("Question: {question}\nPossible answers:\n{options_}\n\nBackground reading: {support}", "{answer}"),
    ("Read carefully, then pick one.\n\n{support}\n\nQ: {question}\n{options_}\nA:", "{answer}"),
    ("{options_}\n\nOne of these is the answer to the following exam question. Which? {question}", "{answer}"),
)

_SCIQ_INVERTED = (
    ("{support}\n\nWrite a multiple-choice science question based on this paragraph whose answer is \"{answer}\".", "{question}"),
    ("Question: {question}\nAnswer: {answer}\n\nWrite a short paragraph that explains the science behind this answer.", "{support}"),
)


def sciq(example: Fields) -> Fields:
    """The correct answer placed among the three distractors at a position fixed by the question's hash
    (the dataset always stores it separately, which would otherwise make it always first or last)."""
    distractors = [example["distractor1"], example["distractor2"], example["distractor3"]]
    position = zlib.crc32(example["question"].encode("utf-8")) % 4
    candidates = [*distractors[:position], example["correct_answer"], *distractors[position:]]
    return {"question": example["question"], "support": example["support"], **choose_option(candidates, position)}


_WIQA_TEMPLATES = (
    ("Process:\n{steps}\n\nQuestion: {question}\nHow does the first change affect the second?\n{options_}", "{answer}"),
    ("{steps}\n\nSuppose the following happens: {question}\n{options_}", "{answer}"),
    ("Here are the steps of a process.\n{steps}\n\nPerturbation question: {question}\nAnswer with more, less or no effect.\n{options_}", "{answer}"),
    ("{question}\n\nThink about this process when you answer:\n{steps}\n{options_}", "{answer}"),
    ("Cause and effect. Given the process\n{steps}\nwhat is the answer to: {question}\n{options_}", "{answer}"),
    ("{options_}\n\nChoose the effect that best answers \"{question}\" for this process:\n{steps}", "{answer}"),
)

_WIQA_INVERTED = (
    ("Here is a process:\n{steps}\n\nWrite a what-if question about it whose answer is \"{answer}\".", "{question}"),
)


def wiqa(example: Fields) -> Fields:
    """The process steps as a bulleted list; options "more", "less", "no effect" labelled A-C."""
    return {
        "steps": "\n".join(f"- {step}" for step in example["question_para_step"] if step),
        "question": example["question_stem"],
        **_by_label(example["choices"], example["answer_label_as_choice"]),
    }


def _spec(name: str, preprocessor, templates, inverted_templates) -> T0Spec:
    return T0Spec(
        name=name,
        hf_name=name,
        cluster=CLUSTER,
        preprocessor=preprocessor,
        templates=templates,
        inverted_templates=inverted_templates,
        options=(),
        metrics=_ACCURACY,
    )


SPECS: tuple[T0Spec, ...] = (
    _spec("qasc", qasc, _QASC_TEMPLATES, _QASC_INVERTED),
    _spec("quarel", quarel, _QUAREL_TEMPLATES, _QUAREL_INVERTED),
    _spec("quartz", quartz, _QUARTZ_TEMPLATES, _QUARTZ_INVERTED),
    _spec("sciq", sciq, _SCIQ_TEMPLATES, _SCIQ_INVERTED),
    _spec("wiqa", wiqa, _WIQA_TEMPLATES, _WIQA_INVERTED),
)
