"""FLAN 2021 misc cluster: CoQA, QuAC, TREC, CoLA, WiC, Math (linear 1d), Fix Punctuation."""

import re

from it_jax.evaluation.metrics import accuracy, exact_match, squad
from mixtures.flan2021.spec import DatasetSpec, with_answers


def _numbered(items):
    return "\n".join(f"{i}. {item.strip()}" for i, item in enumerate(items, 1))


# CoQA: FLAN turns a whole conversation into one example, the numbered answers to the numbered questions.
_COQA_TEMPLATES = (
    ("{story}\n\nAnswer these questions in order, numbering your answers:\n{questions}", "{answer}"),
    ("Read the passage and respond to each question.\n\n{story}\n\nQuestions:\n{questions}", "{answer}"),
    ("{questions}\n\nUse this text to answer the numbered questions above: {story}", "{answer}"),
    ("Story: {story}\n\n{questions}\n\nNumbered answers:", "{answer}"),
    ("Here is a text followed by a series of questions about it.\n\nText: {story}\n\n{questions}", "{answer}"),
    ("Passage:\n{story}\n\nGive short answers to the following questions, one per line.\n{questions}", "{answer}"),
    ("Answer each question based on the passage below. Keep the numbering.\n\n{story}\n\n{questions}", "{answer}"),
    ("{story}\n\n{questions}", "{answer}"),
    ("Questions about the text that follows:\n{questions}\n\nText: {story}\n\nAnswers:", "{answer}"),
    ("Read this and answer the questions; later ones may build on earlier ones.\n{story}\n\n{questions}", "{answer}"),
)
_COQA_INVERTED_TEMPLATES = (
    (
        "{story}\n\nWrite a numbered list of questions about the passage whose answers are, in order:\n{answer}",
        "{questions}",
    ),
)


def _coqa(example):
    return {
        "story": example["story"].strip(),
        "questions": _numbered(example["questions"]),
        "answer": _numbered(example["answers"]["input_text"]),
    }


# QuAC answers are spans of the section; unanswerable questions have the answer CANNOTANSWER.
_QUAC_TEMPLATES = (
    ("{title}: {section}\n\n{context}\n\nQuestion: {question}\nAnswer with a span from the text:", "{answer}"),
    ("Background: {background}\n\n{context}\n\n{question}", "{answer}"),
    (
        'Read the section "{section}" of the article about {title} and answer the question.\n\n{context}\n\nQ: {question}',
        "{answer}",
    ),
    ("{question}\n\nAnswer using this excerpt about {title}:\n{context}", "{answer}"),
    (
        'Article: {title}\nSection: {section}\nText: {context}\n\nWhat is the answer to "{question}"? Quote the text, or say CANNOTANSWER if it is not there.',
        "{answer}",
    ),
    ("{context}\n\nBased on the text above, answer this: {question}", "{answer}"),
    (
        'Here is some background on {title}: {background}\nAnd here is a passage from the section "{section}": {context}\nQuestion: {question}\nAnswer:',
        "{answer}",
    ),
    ("Answer the question with a quote from the passage.\nPassage: {context}\nQuestion: {question}", "{answer}"),
    ("{title} ({section})\n{context}\n\n{question}", "{answer}"),
    ('Someone reading about {title} asks: "{question}" Find the answer in this passage.\n\n{context}', "{answer}"),
)
_QUAC_INVERTED_TEMPLATES = (
    (
        "{context}\n\nWrite a question about {title} that this passage answers with: {answer}",
        "{question}",
    ),
)


def _quac(example):
    """The first annotated answer; `answers` adds the other annotators' answers (evaluation splits)."""
    return {
        "title": example["title"].strip(),
        "section": example["section_title"].strip(),
        "background": example["background"].strip(),
        "context": example["context"].strip(),
        "question": example["question"].strip(),
        **with_answers([text.strip() for text in example["answers"]["text"]]),
    }


# TREC coarse classes in TFDS order: DESC, ENTY, ABBR, HUM, NUM, LOC.
_TREC_CLASSES = ("description", "entity", "abbreviation", "human", "numeric", "location")
_TREC_TEMPLATES = (
    ("What kind of answer does this question expect?\n\n{text}\n{options_}", "{answer}"),
    ("{text}\n\nClassify the question by the type of its answer.\n{options_}", "{answer}"),
    ("Question: {text}\nAnswer type:\n{options_}", "{answer}"),
    ("{options_}\n\nWhich category above describes what the following question is looking for? {text}", "{answer}"),
    ('Which answer category fits the question "{text}"?\n{options_}', "{answer}"),
    ("Label the question below with its expected answer category.\n{text}\n{options_}", "{answer}"),
    ('If you answered "{text}", what sort of thing would your answer be?\n{options_}', "{answer}"),
    ("Question classification.\n\n{text}\n{options_}", "{answer}"),
    ("{text}\nWhat category does the answer to this question fall into?\n{options_}", "{answer}"),
    ("Determine the coarse answer type of: {text}\n{options_}", "{answer}"),
)
_TREC_INVERTED_TEMPLATES = (('Write a question whose answer would be of the type "{answer}".', "{text}"),)


def _trec(example):
    return {"text": example["text"].strip(), "answer": _TREC_CLASSES[example["label-coarse"]]}


_COLA_LABELS = ("unacceptable", "acceptable")
_COLA_TEMPLATES = (
    ("{sentence}\n\nIs this sentence grammatically acceptable?\n{options_}", "{answer}"),
    ("Judge the grammaticality of the following sentence.\n{sentence}\n{options_}", "{answer}"),
    ('Would a native English speaker consider this sentence well-formed? "{sentence}"\n{options_}', "{answer}"),
    ("{options_}\n\nHow would a linguist rate the following sentence? {sentence}", "{answer}"),
    ("Sentence: {sentence}\nAcceptability:\n{options_}", "{answer}"),
    ("Check the grammar: {sentence}\n{options_}", "{answer}"),
    ("Is the following English sentence acceptable or unacceptable?\n\n{sentence}\n{options_}", "{answer}"),
    (
        "Here is a sentence: {sentence}\nSetting aside whether it is true, is it grammatically acceptable?\n{options_}",
        "{answer}",
    ),
    ("{sentence}\nRate this sentence's grammar.\n{options_}", "{answer}"),
    ('Linguistic acceptability test.\n"{sentence}"\n{options_}', "{answer}"),
)
_COLA_INVERTED_TEMPLATES = (("Write an example of a grammatically {answer} English sentence.", "{sentence}"),)


def _cola(example):
    return {"sentence": example["sentence"].strip(), "answer": _COLA_LABELS[example["label"]]}


_WIC_LABELS = ("no", "yes")
_WIC_TEMPLATES = (
    ('{sentence1}\n{sentence2}\n\nDoes "{word}" have the same meaning in both sentences?\n{options_}', "{answer}"),
    (
        'Is the word "{word}" used in the same sense in these two sentences?\n\nA: {sentence1}\nB: {sentence2}\n{options_}',
        "{answer}",
    ),
    ("Sentence 1: {sentence1}\nSentence 2: {sentence2}\nTarget word: {word}\nSame meaning?\n{options_}", "{answer}"),
    ('{options_}\n\nIn "{sentence1}" and "{sentence2}", does the word "{word}" mean the same thing?', "{answer}"),
    (
        'Word sense question. Compare how "{word}" is used here:\n{sentence1}\n{sentence2}\nIs it the same sense?\n{options_}',
        "{answer}",
    ),
    (
        'Here are two sentences that both contain "{word}".\n{sentence1}\n{sentence2}\nWould a dictionary give the same definition for it in each?\n{options_}',
        "{answer}",
    ),
    (
        'First: {sentence1}\nSecond: {sentence2}\n\nDoes the meaning of "{word}" stay the same from the first sentence to the second?\n{options_}',
        "{answer}",
    ),
    (
        'Decide whether "{word}" has one meaning across both sentences.\n\n{sentence1}\n{sentence2}\n{options_}',
        "{answer}",
    ),
    ('"{sentence1}" / "{sentence2}"\nSame sense of "{word}"?\n{options_}', "{answer}"),
    ('Can "{word}" be understood the same way in "{sentence1}" as in "{sentence2}"?\n{options_}', "{answer}"),
)
_WIC_INVERTED_TEMPLATES = (
    (
        'Write two sentences that use the word "{word}" with {sense}.',
        "{sentence1}\n{sentence2}",
    ),
)


def _wic(example):
    return {
        "word": example["word"].strip(),
        "sentence1": example["sentence1"].strip(),
        "sentence2": example["sentence2"].strip(),
        "sense": "the same meaning" if example["label"] else "different meanings",
        "answer": _WIC_LABELS[example["label"]],
    }


_MATH_TEMPLATES = (
    ("{question}", "{answer}"),
    ("Math problem: {question}\nAnswer:", "{answer}"),
    ("Solve this: {question}", "{answer}"),
    ("{question}\nWhat is the solution?", "{answer}"),
    ("Work out the answer to the following algebra question.\n\n{question}", "{answer}"),
    ("Here is a linear equation problem. {question} Give only the final number.", "{answer}"),
    ("Find the value asked for.\n{question}", "{answer}"),
    ("Q: {question}\nA:", "{answer}"),
    ("{question}\n\nReply with just the answer.", "{answer}"),
    ("Algebra: {question}", "{answer}"),
)
_MATH_INVERTED_TEMPLATES = (("Write a linear equation problem whose solution is {answer}.", "{question}"),)


def _math(example):
    return {"question": example["question"].strip(), "answer": example["answer"].strip()}


# Fix punctuation: the input is an LM1B sentence lowercased and stripped of punctuation; the target is the
# original. (LM1B's text is tokenized, so the target keeps spaces around punctuation marks.)
_PUNCTUATION = re.compile(r"[^\w\s]")
_FIX_PUNCT_TEMPLATES = (
    ("Restore the punctuation and capital letters in this text:\n\n{unpunctuated}", "{answer}"),
    ("{unpunctuated}\n\nRewrite the text above with proper punctuation and capitalization.", "{answer}"),
    (
        "This sentence has lost its punctuation and case: {unpunctuated}\nWhat is the properly written version?",
        "{answer}",
    ),
    ("Punctuate and capitalize: {unpunctuated}", "{answer}"),
    ("Fix the formatting of this sentence so that it reads like edited English.\n{unpunctuated}", "{answer}"),
    ("Input (lowercase, no punctuation): {unpunctuated}\nCorrected:", "{answer}"),
    ("Please put back the missing commas, periods, quotation marks and capital letters.\n\n{unpunctuated}", "{answer}"),
    ("{unpunctuated}\nHow should this be written with correct punctuation?", "{answer}"),
    ("Turn this raw lowercase text into a properly punctuated sentence: {unpunctuated}", "{answer}"),
    ("Text: {unpunctuated}\n\nSame text, punctuated:", "{answer}"),
)
_FIX_PUNCT_INVERTED_TEMPLATES = (
    ("Remove every punctuation mark from this sentence and lowercase it:\n\n{answer}", "{unpunctuated}"),
)


def _fix_punct(example):
    text = example["text"].strip()
    return {"unpunctuated": " ".join(_PUNCTUATION.sub("", text).lower().split()), "answer": text}


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="coqa",
        dataset="coqa",
        cluster="misc",
        tfds_name="coqa:1.0.0",
        preprocessor=_coqa,
        templates=_COQA_TEMPLATES,
        inverted_templates=_COQA_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        metrics=(squad,),
    ),
    DatasetSpec(
        name="quac",
        dataset="quac",
        cluster="misc",
        tfds_name="quac:1.0.0",
        preprocessor=_quac,
        templates=_QUAC_TEMPLATES,
        inverted_templates=_QUAC_INVERTED_TEMPLATES,
        metrics=(squad,),
    ),
    DatasetSpec(
        name="trec",
        dataset="trec",
        cluster="misc",
        tfds_name="trec:1.0.0",
        preprocessor=_trec,
        templates=_TREC_TEMPLATES,
        inverted_templates=_TREC_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        options=_TREC_CLASSES,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="cola",
        dataset="cola",
        cluster="misc",
        tfds_name="glue/cola:2.0.0",
        preprocessor=_cola,
        templates=_COLA_TEMPLATES,
        inverted_templates=_COLA_INVERTED_TEMPLATES,
        options=_COLA_LABELS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="wic",
        dataset="wic",
        cluster="misc",
        tfds_name="super_glue/wic:1.0.2",
        preprocessor=_wic,
        templates=_WIC_TEMPLATES,
        inverted_templates=_WIC_INVERTED_TEMPLATES,
        options=_WIC_LABELS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="math_dataset",
        dataset="math_dataset",
        cluster="misc",
        tfds_name="math_dataset/algebra__linear_1d:1.0.0",
        preprocessor=_math,
        templates=_MATH_TEMPLATES,
        inverted_templates=_MATH_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        metrics=(exact_match,),
    ),
    DatasetSpec(
        name="fix_punct",
        dataset="fix_punct",
        cluster="misc",
        tfds_name="lm1b:1.1.0",
        preprocessor=_fix_punct,
        templates=_FIX_PUNCT_TEMPLATES,
        inverted_templates=_FIX_PUNCT_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        metrics=(exact_match,),
    ),
)
