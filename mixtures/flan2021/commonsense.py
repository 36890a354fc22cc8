"""FLAN 2021 commonsense cluster: COPA, HellaSwag, PIQA, StoryCloze."""

from it_jax.evaluation.metrics import accuracy
from mixtures.flan2021.spec import DatasetSpec, choose_option


# COPA: is the answer the premise's cause or its effect?
_COPA_TEMPLATES = (
    ("{premise}\n\nWhich of these is the more likely {relation}?\n{options_}", "{answer}"),
    ("Premise: {premise}\nQuestion: {relation_question}\n{options_}", "{answer}"),
    (
        'Consider the event "{premise}" Pick the alternative that is more plausibly its {relation}.\n{options_}',
        "{answer}",
    ),
    (
        "{options_}\n\nOf the two alternatives above, which is the likelier {relation} of the following? {premise}",
        "{answer}",
    ),
    ("Choose the more sensible {relation}.\n\nSituation: {premise}\n{options_}", "{answer}"),
    ("Read this: {premise}\n{relation_question} Pick one.\n{options_}", "{answer}"),
    ("Causal reasoning ({relation}).\nEvent: {premise}\n{options_}\nAnswer:", "{answer}"),
    (
        "Think about what could explain or follow from this: {premise}\nWhat is its most plausible {relation}?\n{options_}",
        "{answer}",
    ),
    ("{premise}\n\nSelect the {relation} from the options below.\n{options_}", "{answer}"),
    (
        "Suppose this happened: {premise}\nWhich alternative is more likely to be its {relation}?\n{options_}",
        "{answer}",
    ),
)
_COPA_INVERTED_TEMPLATES = (
    ("Write a sentence describing a likely {inverse_relation} of this: {answer}", "{premise}"),
    ("{answer}\n\nWhat might be a {inverse_relation} of the event above?", "{premise}"),
)


def _copa(example):
    cause = example["question"] == "cause"
    return {
        "premise": example["premise"].strip(),
        "relation": "cause" if cause else "effect",
        "inverse_relation": "effect" if cause else "cause",
        "relation_question": "What was the cause of this?" if cause else "What happened as a result?",
        **choose_option([example["choice1"], example["choice2"]], example["label"]),
    }


_HELLASWAG_TEMPLATES = (
    ("{context}...\n\nHow does this description most likely continue?\n{options_}", "{answer}"),
    ('Finish the passage about "{activity}" with the most plausible ending.\n\n{context}\n{options_}', "{answer}"),
    ("Topic: {activity}\n{context}\n\nWhich ending fits best?\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of the endings above is the natural continuation of this text?\n{context}", "{answer}"),
    ("Complete the following: {context}\n{options_}", "{answer}"),
    (
        "Read the start of a description and choose the words that best complete it.\n\nStart: {context}\n{options_}",
        "{answer}",
    ),
    ("{context}\n\nPick the most sensible next part.\n{options_}", "{answer}"),
    ('Here is an unfinished description of "{activity}": {context}\nWhat comes next?\n{options_}', "{answer}"),
    ("Which continuation makes the most sense?\n\n{context}\n{options_}", "{answer}"),
    ("Context: {context}\nThe most likely continuation is:\n{options_}", "{answer}"),
)
_HELLASWAG_INVERTED_TEMPLATES = (
    ('Write the opening of a short description of "{activity}" that could be followed by: {answer}', "{context}"),
)


def _hellaswag(example):
    return {
        "context": example["context"].strip(),
        "activity": example["activity_label"].strip(),
        **choose_option(example["endings"], example["label"]),
    }


_PIQA_TEMPLATES = (
    ("Goal: {goal}\n\nWhich method achieves this goal?\n{options_}", "{answer}"),
    ("I want to do the following: {goal}\nWhich of these approaches would actually work?\n{options_}", "{answer}"),
    ("{goal}\n\nPick the more practical solution.\n{options_}", "{answer}"),
    ('{options_}\n\nOnly one of the solutions above is physically sensible for "{goal}". Which one?', "{answer}"),
    ("Physical commonsense question.\nTask: {goal}\n{options_}\nBest solution:", "{answer}"),
    ("Choose the better way to accomplish the task below.\n\n{goal}\n{options_}", "{answer}"),
    ("To reach this goal: {goal}\nwhat should someone do?\n{options_}", "{answer}"),
    ("Which is the right procedure for the following? {goal}\n{options_}", "{answer}"),
    ("Task: {goal}\n\nSelect the solution that would succeed in the real world.\n{options_}", "{answer}"),
    ("{goal}\nTwo people suggest different ways to do this. Whose idea is better?\n{options_}", "{answer}"),
)
_PIQA_INVERTED_TEMPLATES = (
    ("Describe a goal that this procedure achieves: {answer}", "{goal}"),
    ("{answer}\n\nWhat is this a way to do?", "{goal}"),
)


def _piqa(example):
    return {"goal": example["goal"].strip(), **choose_option([example["sol1"], example["sol2"]], example["label"])}


_STORY_CLOZE_TEMPLATES = (
    ("{context}\n\nWhich sentence best ends this story?\n{options_}", "{answer}"),
    ("Choose the right ending for the story.\n\nStory: {context}\n{options_}", "{answer}"),
    ("Read the story and pick its final sentence.\n{context}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of these is the more fitting conclusion to the following story?\n{context}", "{answer}"),
    ("Here are the first four sentences of a short story: {context}\nHow does it end?\n{options_}", "{answer}"),
    ("Story beginning: {context}\nMost sensible ending:\n{options_}", "{answer}"),
    ("Complete the story with a coherent final sentence.\n\n{context}\n{options_}", "{answer}"),
    ("{context}\nWhat would be a logical fifth sentence?\n{options_}", "{answer}"),
    ("Which ending keeps this story consistent?\n\n{context}\n{options_}", "{answer}"),
    ("Finish this short story: {context}\n{options_}", "{answer}"),
)
_STORY_CLOZE_INVERTED_TEMPLATES = (
    (
        "Write the first four sentences of a story that ends like this: {answer}",
        "{context}",
    ),
)


def _story_cloze(example):
    # The label is the 1-based number of the right ending (the CSV's AnswerRightEnding).
    return {"context": example["context"].strip(), **choose_option(example["endings"], example["label"] - 1)}


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="copa",
        dataset="copa",
        cluster="commonsense",
        tfds_name="super_glue/copa:1.0.2",
        preprocessor=_copa,
        templates=_COPA_TEMPLATES,
        inverted_templates=_COPA_INVERTED_TEMPLATES,
        options=(),
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="hellaswag",
        dataset="hellaswag",
        cluster="commonsense",
        tfds_name="hellaswag:1.1.0",
        preprocessor=_hellaswag,
        templates=_HELLASWAG_TEMPLATES,
        inverted_templates=_HELLASWAG_INVERTED_TEMPLATES,
        options=(),
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="piqa",
        dataset="piqa",
        cluster="commonsense",
        tfds_name="piqa:1.0.0",
        preprocessor=_piqa,
        templates=_PIQA_TEMPLATES,
        inverted_templates=_PIQA_INVERTED_TEMPLATES,
        options=(),
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="story_cloze",
        dataset="story_cloze",
        cluster="commonsense",
        tfds_name="story_cloze/2016:1.0.0",
        preprocessor=_story_cloze,
        templates=_STORY_CLOZE_TEMPLATES,
        inverted_templates=_STORY_CLOZE_INVERTED_TEMPLATES,
        # TFDS has no train split (validation and test only, manual download): FLAN trained on validation.
        splits={"train": "validation", "validation": "test"},
        options=(),
        metrics=(accuracy,),
    ),
)
