"""T0 closed-book QA: WebQuestions, KILT HotpotQA, and WikiQA (is a Wikipedia sentence an answer?)."""

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec, with_answers

CLUSTER = "closed_book_qa"

_WEB_QUESTIONS_TEMPLATES = (
    ("{question} (answer with the name of an entity)", "{answer}"),
    ("Answer this question from general knowledge: {question}", "{answer}"),
    ("Someone typed this into a search engine: \"{question}\"\nWhat is the answer they were looking for?", "{answer}"),
    ("Web question: {question}\nShort answer:", "{answer}"),
    ("Trivia time! {question}", "{answer}"),
    ("Give a short, factual answer (an entity or a name will do).\n\n{question}", "{answer}"),
)

_WEB_QUESTIONS_INVERTED = (
    ("Write a question that a person might search the web for, whose answer is \"{answer}\".", "{question}"),
)


def web_questions(example: Fields) -> Fields:
    """The first Freebase answer, every answer in `answers`; the question gets a capital letter."""
    question = example["question"].strip()
    return {"question": question[:1].upper() + question[1:], **with_answers(example["answers"])}


_HOTPOTQA_TEMPLATES = (
    ("{question}\n\n(Two-step question: find the bridge fact first.)", "{answer}"),
    ("Answer the following question; you may need to combine two facts. {question}", "{answer}"),
    ("Question (from HotpotQA): {question}\nAnswer:", "{answer}"),
    ("Multi-hop trivia: {question}\n\nAnswer:", "{answer}"),
    ("Here is a question that links two Wikipedia articles.\n\n{question}\n\nWhat is the answer?", "{answer}"),
    ("Without looking anything up, answer briefly: {question}", "{answer}"),
)

_HOTPOTQA_INVERTED = (
    ("Write a question that needs two facts to answer and whose answer is \"{answer}\".", "{question}"),
)


def _kilt_answers(output) -> list[str]:
    """KILT's `output` list as Hugging Face gives it (a list of dicts) or as TFDS does (a dict of lists)."""
    answers = output["answer"] if isinstance(output, dict) else [item["answer"] for item in output]
    return [answer for answer in answers if answer]


def kilt_hotpotqa(example: Fields) -> Fields:
    """The question is KILT's `input`; the answers are the non-empty `answer`s of its `output` list."""
    return {"question": example["input"], **with_answers(_kilt_answers(example["output"]))}


# WikiQA: label 0 = the sentence does not answer the question, 1 = it does.
_YES_NO = ("no", "yes")

_WIKI_QA_TEMPLATES = (
    ("Question: {question}\nSentence: {sentence}\n\nDoes the sentence answer the question?\n{options_}", "{answer}"),
    ("I searched for \"{question}\" and the Wikipedia article on {title} said: \"{sentence}\"\nIs that an answer to my question?\n{options_}", "{answer}"),
    ("{sentence}\n\nIs the text above a correct answer to \"{question}\"?\n{options_}", "{answer}"),
    ("Decide whether the candidate answers the question.\n\nQ: {question}\nCandidate: {sentence}\n{options_}", "{answer}"),
    ("From the article about {title}: {sentence}\n\nWould this sentence satisfy someone asking \"{question}\"?\n{options_}", "{answer}"),
    ("{options_}\n\nQuestion: {question}\nProposed answer: {sentence}\nIs the proposed answer right?", "{answer}"),
)

_WIKI_QA_INVERTED = (
    ("Here is a sentence from the Wikipedia article on {title}:\n{sentence}\n\nWrite a question someone might ask a search engine that leads to this article.", "{question}"),
    ("Question: {question}\n\nWhich Wikipedia article would you look in to answer this?", "{title}"),
)


def wiki_qa(example: Fields) -> Fields:
    """The candidate sentence (`answer` in the dataset) and whether it answers the question."""
    return {
        "question": example["question"].rstrip("?") + "?",
        "title": example["document_title"],
        "sentence": example["answer"],
        "answer": _YES_NO[example["label"]],
    }


SPECS: tuple[T0Spec, ...] = (
    T0Spec(
        name="web_questions",
        hf_name="web_questions",
        cluster=CLUSTER,
        preprocessor=web_questions,
        templates=_WEB_QUESTIONS_TEMPLATES,
        inverted_templates=_WEB_QUESTIONS_INVERTED,
        splits={"train": "train", "validation": "test"},
        metrics=(metrics.squad,),
    ),
    T0Spec(
        name="kilt_tasks_hotpotqa",
        hf_name="kilt_tasks/hotpotqa",
        cluster=CLUSTER,
        preprocessor=kilt_hotpotqa,
        templates=_HOTPOTQA_TEMPLATES,
        inverted_templates=_HOTPOTQA_INVERTED,
        metrics=(metrics.squad,),
    ),
    T0Spec(
        name="wiki_qa",
        hf_name="wiki_qa",
        cluster=CLUSTER,
        preprocessor=wiki_qa,
        templates=_WIKI_QA_TEMPLATES,
        inverted_templates=_WIKI_QA_INVERTED,
        options=_YES_NO,
        metrics=(metrics.accuracy,),
    ),
)
