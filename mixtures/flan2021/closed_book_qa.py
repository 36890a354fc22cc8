"""FLAN 2021 closed_book_qa cluster: ARC (Easy and Challenge), Natural Questions (open), TriviaQA."""

from it_jax.evaluation import metrics
from mixtures.flan2021.spec import DatasetSpec, Fields, with_answers

CLUSTER = "closed_book_qa"

_ARC_TEMPLATES = (
    ("{question}\n{options_}", "{answer}"),
    ("Answer this science question.\n\n{question}\n{options_}", "{answer}"),
    ("Question: {question}\n\nWhich of these is the right answer?\n{options_}", "{answer}"),
    ("Q: {question}\n{options_}\nA:", "{answer}"),
    ("Here is a question from a grade-school science exam: {question}\n\nPick the correct choice.\n{options_}", "{answer}"),
    ("{options_}\n\nChoose the option above that best answers: {question}", "{answer}"),
    ("Use what you know about science to answer.\n{question}\n{options_}", "{answer}"),
    ("{question}\n\nSelect one answer.\n{options_}", "{answer}"),
    ("A student was asked: \"{question}\" What should the student answer?\n{options_}", "{answer}"),
    ("Multiple choice: {question}\n{options_}\nThe answer is:", "{answer}"),
)

_ARC_INVERTED = (
    ("Write a grade-school science question whose correct answer is \"{answer}\".", "{question}"),
)


def arc(example: Fields) -> Fields:
    """Options are the choice texts; the answer is the one whose label equals `answerKey`."""
    choices = example["choices"]
    options = [text.strip() for text in choices["text"]]
    return {
        "question": example["question"],
        "options": options,
        "answer": options[choices["label"].index(example["answerKey"])],
    }


_NATURAL_QUESTIONS_TEMPLATES = (
    ("{question}", "{answer}"),
    ("Answer this question: {question}", "{answer}"),
    ("Q: {question}\nA:", "{answer}"),
    ("Please give a short answer to the following. {question}", "{answer}"),
    ("Question: {question}\nAnswer:", "{answer}"),
    ("I was searching the web for this: {question} What is the answer?", "{answer}"),
    ("Here's a question people often ask: {question}\n\nWhat's the answer?", "{answer}"),
    ("Answer from memory, in a few words.\n\n{question}", "{answer}"),
    ("What is the answer to this question? {question}", "{answer}"),
    ("Tell me: {question}", "{answer}"),
)

_NATURAL_QUESTIONS_INVERTED = (
    ("Write a question that someone might type into a search engine whose answer is \"{answer}\".", "{question}"),
    ("The answer is {answer}. What might the question be?", "{question}"),
)


def natural_questions_open(example: Fields) -> Fields:
    """NQ questions are lower-cased and unpunctuated; they get a question mark. The answer is the first of
    the annotated answers; `answers` lists them all (each is correct)."""
    return {"question": example["question"].rstrip("?") + "?", **with_answers(example["answer"])}


_TRIVIA_QA_TEMPLATES = (
    ("{question}", "{answer}"),
    ("Answer the following trivia question: {question}", "{answer}"),
    ("Q: {question}\nA:", "{answer}"),
    ("Quiz question: {question}\nWhat is the answer?", "{answer}"),
    ("Here is a general-knowledge question. {question}", "{answer}"),
    ("Question: {question}\nAnswer:", "{answer}"),
    ("Test your knowledge: {question}", "{answer}"),
    ("At a pub quiz, the host asks: \"{question}\" What's the correct reply?", "{answer}"),
    ("Give a short answer. {question}", "{answer}"),
    ("Without looking anything up, answer this: {question}", "{answer}"),
)

_TRIVIA_QA_INVERTED = (
    ("Write a trivia question whose answer is {answer}.", "{question}"),
    ("Answer: {answer}\n\nWhat could the quiz question have been?", "{question}"),
)


def trivia_qa(example: Fields) -> Fields:
    """Closed-book: only the question, no evidence documents; the answer is TriviaQA's canonical value,
    and `answers` adds its aliases (TriviaQA's official evaluation accepts any of them)."""
    answer = example["answer"]
    return {"question": example["question"], **with_answers([answer["value"], *answer["aliases"]])}


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="arc_easy",
        dataset="arc",
        cluster=CLUSTER,
        tfds_name="ai2_arc/ARC-Easy:1.0.0",
        preprocessor=arc,
        templates=_ARC_TEMPLATES,
        inverted_templates=_ARC_INVERTED,
        options=(),
        metrics=(metrics.accuracy,),
    ),
    DatasetSpec(
        name="arc_challenge",
        dataset="arc",
        cluster=CLUSTER,
        tfds_name="ai2_arc/ARC-Challenge:1.0.0",
        preprocessor=arc,
        templates=_ARC_TEMPLATES,
        inverted_templates=_ARC_INVERTED,
        options=(),
        metrics=(metrics.accuracy,),
    ),
    DatasetSpec(
        name="natural_questions_open",
        dataset="natural_questions_open",
        cluster=CLUSTER,
        tfds_name="natural_questions_open:1.0.0",
        preprocessor=natural_questions_open,
        templates=_NATURAL_QUESTIONS_TEMPLATES,
        inverted_templates=_NATURAL_QUESTIONS_INVERTED,
        metrics=(metrics.exact_match,),
    ),
    DatasetSpec(
        name="trivia_qa",
        dataset="trivia_qa",
        cluster=CLUSTER,
        tfds_name="trivia_qa/rc:1.1.0",
        preprocessor=trivia_qa,
        templates=_TRIVIA_QA_TEMPLATES,
        inverted_templates=_TRIVIA_QA_INVERTED,
        metrics=(metrics.exact_match,),
    ),
)
