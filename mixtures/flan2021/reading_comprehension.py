"""FLAN 2021 reading_comprehension cluster: BoolQ, DROP, MultiRC, OpenBookQA, SQuAD v1.1 and v2.0."""

import re

from it_jax.evaluation import metrics
from mixtures.flan2021.spec import DatasetSpec, Fields, with_answers

CLUSTER = "reading_comprehension"

# BoolQ: TFDS answer is a bool; False -> "no", True -> "yes".
_YES_NO = ("no", "yes")

_BOOL_Q_TEMPLATES = (
    ("{passage}\n\nBased on the passage above, {question}\n{options_}", "{answer}"),
    ("Read this text about {title} and answer the question.\n\n{passage}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("{passage}\n\nIs the answer to the following question yes or no? {question}\n{options_}", "{answer}"),
    ("Passage: {passage}\nQuestion: {question}\nAnswer yes or no.\n{options_}", "{answer}"),
    ("Question: {question}\n\nUse this article to decide:\n{passage}\n{options_}", "{answer}"),
    ("Here is some background on {title}:\n{passage}\n\nGiven that, {question}\n{options_}", "{answer}"),
    ("{passage}\n\nCan you tell from the text? {question}\n{options_}", "{answer}"),
    ("Article: {passage}\n\n{options_}\nAccording to the article, {question}", "{answer}"),
    ("I just read this: \"{passage}\"\n\nSo, {question}\n{options_}", "{answer}"),
    ("Answer the yes/no question using the passage.\n\nPassage about {title}: {passage}\n\n{question}\n{options_}", "{answer}"),
)

_BOOL_Q_INVERTED = (
    ("{passage}\n\nWrite a yes-or-no question about this passage whose answer is \"{answer}\".", "{question}"),
    ("Read the text about {title} below and ask a question that it answers with {answer}.\n\n{passage}", "{question}"),
)


def bool_q(example: Fields) -> Fields:
    """BoolQ questions are lower-cased and unpunctuated; they get a question mark."""
    return {
        "title": example["title"],
        "passage": example["passage"],
        "question": example["question"].rstrip("?") + "?",
        "answer": _YES_NO[int(example["answer"])],
    }


_DROP_TEMPLATES = (
    ("{passage}\n\nAnswer this question using the passage: {question}", "{answer}"),
    ("Read the passage and answer the question.\n\nPassage: {passage}\n\nQuestion: {question}", "{answer}"),
    ("Question: {question}\n\nThe answer can be worked out from this text:\n{passage}", "{answer}"),
    ("{passage}\n\n{question}", "{answer}"),
    ("Here is a passage:\n{passage}\n\nWork out the answer (you may need to count, add or compare): {question}", "{answer}"),
    ("Passage: {passage}\nQ: {question}\nA:", "{answer}"),
    ("{passage}\n\nBased on the text above, what is the answer to \"{question}\"?", "{answer}"),
    ("Using the facts in this passage, reply with a short answer.\n\n{passage}\n\n{question}", "{answer}"),
    ("I need help with a question about a text. The text:\n{passage}\n\nMy question: {question}", "{answer}"),
    ("Here's a question: {question}\n\nAnd here's a passage that contains the information:\n{passage}\n\nWhat's the answer?", "{answer}"),
)

_DROP_INVERTED = (
    ("{passage}\n\nWrite a question about this passage whose answer is \"{answer}\".", "{question}"),
    ("Read the passage below, then make up a question that requires reasoning over it and is answered by {answer}.\n\n{passage}", "{question}"),
)


def drop(example: Fields) -> Fields:
    """The answer, and in `answers` also the validated answers of other annotators (DROP's evaluation
    takes the best match)."""
    candidates = [example["answer"], *example["validated_answers"]]
    return {"passage": example["passage"], "question": example["question"], **with_answers(candidates)}


# MultiRC: label 0 = the candidate answer is wrong, 1 = it is correct.
_MULTIRC_TEMPLATES = (
    ("{paragraph}\n\nQuestion: {question}\nProposed answer: {candidate}\nIs the proposed answer correct?\n{options_}", "{answer}"),
    ("Read the text and decide whether the answer is right.\n\n{paragraph}\n\n{question}\nAnswer: {candidate}\n{options_}", "{answer}"),
    ("{paragraph}\n\nSomeone answered the question \"{question}\" with \"{candidate}\". Are they right?\n{options_}", "{answer}"),
    ("Paragraph: {paragraph}\n\nQ: {question}\nA: {candidate}\n\nDoes the paragraph support this answer?\n{options_}", "{answer}"),
    ("Question: {question}\nCandidate answer: {candidate}\n\nCheck it against this text:\n{paragraph}\n\nIs the candidate answer true?\n{options_}", "{answer}"),
    ("{paragraph}\n\nAfter reading the above, is \"{candidate}\" a correct answer to \"{question}\"?\n{options_}", "{answer}"),
    ("{paragraph}\n\n{options_}\nGiven the text, would \"{candidate}\" be an acceptable answer to the question \"{question}\"?", "{answer}"),
    ("Here is a passage:\n{paragraph}\n\nI think the answer to \"{question}\" is \"{candidate}\". Am I right?\n{options_}", "{answer}"),
    ("Text: {paragraph}\n\nQuestion: {question}\n\nIs \"{candidate}\" correct?\n{options_}", "{answer}"),
    ("Decide if the answer fits the question, based on the paragraph.\n\n{paragraph}\n\nQuestion: {question}\nAnswer: {candidate}\n{options_}", "{answer}"),
)


def multirc(example: Fields) -> Fields:
    """SuperGLUE's MultiRC paragraphs mark sentences with `<b>Sent N: </b>` and `<br>`; they are removed."""
    paragraph = re.sub(r"<b>Sent \d+: </b>|<br>", " ", example["paragraph"])
    return {
        "paragraph": " ".join(paragraph.split()),
        "question": example["question"],
        "candidate": example["answer"],
        "answer": _YES_NO[example["label"]],
    }


_OPENBOOKQA_TEMPLATES = (
    ("{question}\n{options_}", "{answer}"),
    ("Fact: {fact}\n\nUse the fact to answer this question: {question}\n{options_}", "{answer}"),
    ("Pick the best way to complete or answer the following.\n\n{question}\n{options_}", "{answer}"),
    ("This is an elementary science question. {question}\n\nWhich choice is correct?\n{options_}", "{answer}"),
    ("Q: {question}\n{options_}\nA:", "{answer}"),
    ("Knowing that \"{fact}\", how would you answer this?\n\n{question}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of the options above fits best? {question}", "{answer}"),
    ("Here is a multiple-choice question: {question}\n\nChoose one of the following.\n{options_}", "{answer}"),
    ("Given {fact}, select the correct answer.\n\n{question}\n{options_}", "{answer}"),
    ("Answer with common sense and basic science: {question}\n{options_}", "{answer}"),
)

_OPENBOOKQA_INVERTED = (
    ("Write a science question, based on the fact \"{fact}\", whose answer is \"{answer}\".", "{question}"),
    ("Make up a quiz question that has the answer: {answer}", "{question}"),
)


def openbookqa(example: Fields) -> Fields:
    question = example["question"]
    options = [question[f"choice_{letter}"].strip() for letter in "ABCD"]
    return {
        "question": question["stem"],
        "fact": example["fact1"],
        "options": options,
        "answer": options[example["answerKey"]],
    }


_SQUAD_V1_TEMPLATES = (
    ("{context}\n\nAnswer this question using the passage: {question}", "{answer}"),
    ("Read the text about {title} and answer the question.\n\n{context}\n\nQuestion: {question}", "{answer}"),
    ("Question: {question}\n\nFind the answer in this passage:\n{context}", "{answer}"),
    ("{context}\n\n{question}", "{answer}"),
    ("Here's a paragraph about {title}:\n{context}\n\nCopy the words from it that answer: {question}", "{answer}"),
    ("Passage: {context}\nQ: {question}\nA:", "{answer}"),
    ("{context}\n\nFrom the passage above, what is the answer to \"{question}\"?", "{answer}"),
    ("The following is an excerpt on the topic of {title}.\n\n{context}\n\nPlease answer: {question}", "{answer}"),
    ("I'm studying {title}. My notes say:\n{context}\n\nWith that in mind, {question}", "{answer}"),
    ("Extract the answer to the question from the context.\n\nQuestion: {question}\nContext: {context}", "{answer}"),
)

_SQUAD_V1_INVERTED = (
    ("{context}\n\nWrite a question about this passage whose answer is \"{answer}\".", "{question}"),
    ("Here's an answer: {answer}\n\nAsk a question about {title} that this passage answers with it.\n\n{context}", "{question}"),
)

_SQUAD_V2_TEMPLATES = (
    ("{context}\n\nAnswer this question using the passage, or say \"unanswerable\" if you can't: {question}", "{answer}"),
    ("Read the text about {title} and answer the question. If the text doesn't say, answer \"unanswerable\".\n\n{context}\n\nQuestion: {question}", "{answer}"),
    ("Question: {question}\n\nLook for the answer in this passage (it may not be there):\n{context}", "{answer}"),
    ("{context}\n\n{question} (If the passage doesn't tell us, reply \"unanswerable\".)", "{answer}"),
    ("Here's a paragraph about {title}:\n{context}\n\nCan the following be answered from it? If so, give the answer; if not, write unanswerable. {question}", "{answer}"),
    ("Passage: {context}\nQ: {question}\nA:", "{answer}"),
    ("{context}\n\nDoes the passage above answer \"{question}\"? Give the answer, or \"unanswerable\".", "{answer}"),
    ("The following is an excerpt on the topic of {title}.\n\n{context}\n\nPlease answer, if possible: {question}", "{answer}"),
    ("Some questions about a text can't be answered from it. Answer this one if you can, otherwise say unanswerable.\n\nText: {context}\n\nQuestion: {question}", "{answer}"),
    ("Extract the answer to the question from the context, or write \"unanswerable\".\n\nQuestion: {question}\nContext: {context}", "{answer}"),
)

_SQUAD_V2_INVERTED = (
    ("{context}\n\nAsk a question about this passage on {title}.", "{question}"),
)


def squad(example: Fields) -> Fields:
    """The first reference answer, with every reference in `answers` (SQuAD takes the best match); SQuAD
    v2.0's unanswerable questions have none and get "unanswerable"."""
    answers = example["answers"]["text"]
    return {
        "title": example["title"].replace("_", " "),
        "context": example["context"],
        "question": example["question"],
        **with_answers(answers or ["unanswerable"]),
    }


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="bool_q",
        dataset="bool_q",
        cluster=CLUSTER,
        tfds_name="bool_q:1.0.0",
        preprocessor=bool_q,
        templates=_BOOL_Q_TEMPLATES,
        inverted_templates=_BOOL_Q_INVERTED,
        options=_YES_NO,
        metrics=(metrics.accuracy,),
    ),
    DatasetSpec(
        name="drop",
        dataset="drop",
        cluster=CLUSTER,
        tfds_name="drop:2.0.0",
        preprocessor=drop,
        templates=_DROP_TEMPLATES,
        inverted_templates=_DROP_INVERTED,
        splits={"train": "train", "validation": "dev"},
        metrics=(metrics.squad,),
    ),
    DatasetSpec(
        name="multirc",
        dataset="multirc",
        cluster=CLUSTER,
        tfds_name="super_glue/multirc:1.0.2",
        preprocessor=multirc,
        templates=_MULTIRC_TEMPLATES,
        options=_YES_NO,
        metrics=(metrics.accuracy, metrics.f1),
    ),
    DatasetSpec(
        name="openbookqa",
        dataset="openbookqa",
        cluster=CLUSTER,
        tfds_name="openbookqa:0.1.0",
        preprocessor=openbookqa,
        templates=_OPENBOOKQA_TEMPLATES,
        inverted_templates=_OPENBOOKQA_INVERTED,
        options=(),
        metrics=(metrics.accuracy,),
    ),
    DatasetSpec(
        name="squad_v1",
        dataset="squad",
        cluster=CLUSTER,
        tfds_name="squad/v1.1:3.0.0",
        preprocessor=squad,
        templates=_SQUAD_V1_TEMPLATES,
        inverted_templates=_SQUAD_V1_INVERTED,
        metrics=(metrics.squad,),
    ),
    DatasetSpec(
        name="squad_v2",
        dataset="squad",
        cluster=CLUSTER,
        tfds_name="squad/v2.0:3.0.0",
        preprocessor=squad,
        templates=_SQUAD_V2_TEMPLATES,
        inverted_templates=_SQUAD_V2_INVERTED,
        metrics=(metrics.squad,),
    ),
)
