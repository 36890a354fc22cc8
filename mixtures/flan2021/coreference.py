"""FLAN 2021 coreference cluster: Definite Pronoun Resolution, WinoGrande, WSC273."""

from it_jax.evaluation.metrics import accuracy
from mixtures.flan2021.spec import DatasetSpec, choose_option


_DPR_TEMPLATES = (
    ('{sentence}\n\nWho or what does "{pronoun}" refer to in this sentence?\n{options_}', "{answer}"),
    ('In the sentence below, identify the antecedent of the pronoun "{pronoun}".\n{sentence}\n{options_}', "{answer}"),
    ("Sentence: {sentence}\nPronoun: {pronoun}\nWhich candidate does the pronoun point to?\n{options_}", "{answer}"),
    ('{options_}\n\nWhich of the above is "{pronoun}" in the following sentence? {sentence}', "{answer}"),
    ('Resolve the pronoun.\n{sentence}\nHere, "{pronoun}" means:\n{options_}', "{answer}"),
    ('Read: {sentence}\n\nWhen the writer says "{pronoun}", who are they talking about?\n{options_}', "{answer}"),
    ('Coreference question: in "{sentence}", what is the referent of "{pronoun}"?\n{options_}', "{answer}"),
    ('{sentence}\nThe word "{pronoun}" stands for which of these?\n{options_}', "{answer}"),
    ('Figure out what "{pronoun}" refers to.\n\n{sentence}\n{options_}', "{answer}"),
    ('Given the sentence "{sentence}", pick the noun phrase that "{pronoun}" replaces.\n{options_}', "{answer}"),
)
_DPR_INVERTED_TEMPLATES = (('Write a sentence in which the pronoun "{pronoun}" refers to {answer}.', "{sentence}"),)


def _definite_pronoun_resolution(example):
    return {
        "sentence": example["sentence"].strip(),
        "pronoun": example["pronoun"].strip(),
        **choose_option(example["candidates"], example["label"]),
    }


_WINOGRANDE_TEMPLATES = (
    ("{sentence}\n\nWhat should replace the blank (_)?\n{options_}", "{answer}"),
    ("Fill in the blank.\n{sentence}\n{options_}", "{answer}"),
    ("Which option correctly completes the sentence?\n\n{sentence}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of these belongs in the gap in the following sentence? {sentence}", "{answer}"),
    ("Sentence with a missing word: {sentence}\nThe missing word or phrase is:\n{options_}", "{answer}"),
    ('In the sentence "{sentence}", what does the underscore stand for?\n{options_}', "{answer}"),
    ("Use common sense to fill the _ in this sentence: {sentence}\n{options_}", "{answer}"),
    ("{sentence}\nWho or what is the _ in the sentence above?\n{options_}", "{answer}"),
    (
        "Choose the words that make this sentence sensible when placed in the blank.\n\n{sentence}\n{options_}",
        "{answer}",
    ),
    ("Complete: {sentence}\n{options_}\nAnswer:", "{answer}"),
)
_WINOGRANDE_INVERTED_TEMPLATES = (
    (
        'Write a sentence with a blank (_) that should be filled with "{answer}" rather than "{distractor}".',
        "{sentence}",
    ),
)


def _winogrande(example):
    fields = choose_option([example["option1"], example["option2"]], example["label"])
    return {
        "sentence": example["sentence"].strip(),
        "distractor": fields["options"][1 - example["label"]],
        **fields,
    }


_WSC273_TEMPLATES = (
    ('{text}\n\nIn the passage above, whom or what does the pronoun "{pronoun}" refer to?\n{options_}', "{answer}"),
    ('Winograd schema: {text}\nWhat is "{pronoun}"?\n{options_}', "{answer}"),
    ('Passage: {text}\nQuestion: what does "{pronoun}" stand for?\n{options_}', "{answer}"),
    ('{options_}\n\nWhich of these does "{pronoun}" mean in the text below?\n{text}', "{answer}"),
    ('Use common sense to decide who or what "{pronoun}" is.\n\n{text}\n{options_}', "{answer}"),
    ('Here is a short text: {text}\nReplace "{pronoun}" with the right noun phrase.\n{options_}', "{answer}"),
    ('"{text}"\nIn this text, "{pronoun}" is:\n{options_}', "{answer}"),
    ('Read the sentences and resolve the pronoun "{pronoun}".\n{text}\n{options_}', "{answer}"),
    ('{text}\nWho or what is meant by "{pronoun}"?\n{options_}', "{answer}"),
    ('Pronoun disambiguation. Text: {text}\nPronoun: "{pronoun}"\nReferent:\n{options_}', "{answer}"),
)
_WSC273_INVERTED_TEMPLATES = (('Write a short passage in which the pronoun "{pronoun}" refers to {answer}.', "{text}"),)


def _wsc273(example):
    return {
        "text": example["text"].strip(),
        "pronoun": example["pronoun_text"].strip(),
        **choose_option([example["option1"], example["option2"]], example["label"]),
    }


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="definite_pronoun_resolution",
        dataset="definite_pronoun_resolution",
        cluster="coreference",
        tfds_name="definite_pronoun_resolution:1.1.0",
        preprocessor=_definite_pronoun_resolution,
        templates=_DPR_TEMPLATES,
        inverted_templates=_DPR_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        options=(),
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="winogrande",
        dataset="winogrande",
        cluster="coreference",
        tfds_name="winogrande:1.2.0",
        preprocessor=_winogrande,
        templates=_WINOGRANDE_TEMPLATES,
        inverted_templates=_WINOGRANDE_INVERTED_TEMPLATES,
        # TFDS names WinoGrande's training sizes as splits; FLAN used the largest (XL, 40k examples).
        splits={"train": "train_xl", "validation": "validation"},
        options=(),
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="wsc273",
        dataset="wsc273",
        cluster="coreference",
        tfds_name="wsc273:1.0.0",
        preprocessor=_wsc273,
        templates=_WSC273_TEMPLATES,
        inverted_templates=_WSC273_INVERTED_TEMPLATES,
        # TFDS wsc273 has only its 273 test schemas, which FLAN both trained and evaluated on.
        splits={"train": "test", "validation": "test"},
        options=(),
        metrics=(accuracy,),
    ),
)
