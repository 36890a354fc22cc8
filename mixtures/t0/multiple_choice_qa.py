"""T0 multiple-choice QA over a text: DREAM, QuAIL, CoS-E v1.11, RACE (high, middle), Social IQa, WikiHop."""

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec, choose_by_text, choose_option

CLUSTER = "multiple_choice_qa"
_ACCURACY = (metrics.accuracy,)

_DREAM_TEMPLATES = (
    ("Listen in on this conversation:\n{dialogue}\n\n{question}\n{options_}", "{answer}"),
    ("{dialogue}\n\nBased on what the speakers say, pick the best answer to the question \"{question}\"\n{options_}", "{answer}"),
    ("Question: {question}\n\nThe answer is somewhere in this exchange:\n{dialogue}\n\nChoose one:\n{options_}", "{answer}"),
    ("Here is a short dialogue between two people.\n\n{dialogue}\n\nAfter hearing it, a student was asked: {question}\nWhich reply is right?\n{options_}", "{answer}"),
    ("Choices:\n{options_}\n\nConversation:\n{dialogue}\n\nWhich choice answers \"{question}\"?", "{answer}"),
    ("Transcript:\n{dialogue}\n\nListening comprehension. {question}\n{options_}\nAnswer:", "{answer}"),
)

_DREAM_INVERTED = (
    ("{dialogue}\n\nWrite a listening-test question about this conversation whose correct answer is \"{answer}\".", "{question}"),
    ("Write a plausible conversation between two people that answers the question \"{question}\" with \"{answer}\".", "{dialogue}"),
)


def dream(example: Fields) -> Fields:
    """The dialogue's turns, one per line; the options are the example's `choice` list."""
    return {
        "dialogue": "\n".join(example["dialogue"]),
        "question": example["question"],
        **choose_by_text(example["choice"], example["answer"]),
    }


_QUAIL_TEMPLATES = (
    ("{context}\n\nAnswer from the story (or say there is not enough information): {question}\n{options_}", "{answer}"),
    ("Read this passage from \"{title}\" and answer the question.\n\n{context}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("Question: {question}\nPossible answers:\n{options_}\n\nThink about the text below before answering.\n\n{context}", "{answer}"),
    ("{context}\n\nSome questions about a story need guessing from clues, and some cannot be answered at all. {question}\n{options_}", "{answer}"),
    ("Text ({domain}):\n{context}\n\nWhich of these is the best reply to \"{question}\"?\n{options_}", "{answer}"),
    ("I'm reading {title}. Here's the part I'm on:\n{context}\n\nCan you help? {question}\n{options_}", "{answer}"),
)

_QUAIL_INVERTED = (
    ("{context}\n\nCome up with a reading-comprehension question about this text whose answer is \"{answer}\".", "{question}"),
)


def quail(example: Fields) -> Fields:
    """The text's title (from its metadata) and domain, and the four answers as options."""
    return {
        "title": example["metadata"]["title"],
        "domain": example["domain"],
        "context": example["context"],
        "question": example["question"],
        **choose_option(example["answers"], example["correct_answer_id"]),
    }


_COS_E_TEMPLATES = (
    ("{question}\nThe possible answers are:\n{options_}", "{answer}"),
    ("Use common sense to choose the right answer.\n\n{question}\n{options_}", "{answer}"),
    ("Q: {question}\nWhich option is most sensible?\n{options_}\nA:", "{answer}"),
    ("Here's an everyday question: {question}\n\nThe candidates are:\n{options_}\n\nWhat would most people answer?", "{answer}"),
    ("{options_}\n\nOnly one of the above is a reasonable answer to this: {question}", "{answer}"),
    ("Pick the answer that a thoughtful person would give. {question}\n{options_}", "{answer}"),
)

_COS_E_INVERTED = (
    ("Question: {question}\nAnswer: {answer}\n\nIn one sentence, why does this answer make sense?", "{explanation}"),
    ("{question}\n{options_}\n\nThe answer is \"{answer}\". Give a short common-sense justification.", "{explanation}"),
    ("Write a common-sense question with these answer choices, whose best answer is \"{answer}\".\n{options_}", "{question}"),
)


def cos_e(example: Fields) -> Fields:
    """The five choices as options, the answer text, and the human-written (abstractive) explanation."""
    return {
        "question": example["question"],
        "explanation": example["abstractive_explanation"],
        **choose_by_text(example["choices"], example["answer"]),
    }


_RACE_TEMPLATES = (
    ("{article}\n\n{question}\n{options_}", "{answer}"),
    ("Read the article and select the best answer.\n\nArticle: {article}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("This is an English exam question for Chinese middle- and high-school students.\n\n{article}\n\n{question}\nOptions:\n{options_}", "{answer}"),
    ("Question: {question}\n\nChoose from:\n{options_}\n\nThe passage the question is about:\n{article}", "{answer}"),
    ("{article}\n\nAccording to the passage, which answer fits? {question}\n{options_}", "{answer}"),
    ("Passage:\n{article}\n\nA reader was asked \"{question}\". Which of these would a careful reader choose?\n{options_}", "{answer}"),
)

_RACE_INVERTED = (
    ("{article}\n\nWrite an exam question about this passage whose correct answer is \"{answer}\".", "{question}"),
    ("Question: {question}\nAnswer: {answer}\n\nWrite a short school-level reading passage for which this is a fair exam question.", "{article}"),
)


def race(example: Fields) -> Fields:
    """The answer letter (A-D) picks one of the four options."""
    return {
        "article": example["article"],
        "question": example["question"],
        **choose_option(example["options"], "ABCD".index(example["answer"].strip())),
    }


_SOCIAL_IQA_TEMPLATES = (
    ("{context}\n\nThinking about the people involved: {question}\n{options_}", "{answer}"),
    ("Context: {context}\nQuestion: {question}\nWhich answer best fits the situation?\n{options_}", "{answer}"),
    ("Think about how people feel and act. {context} {question}\n{options_}", "{answer}"),
    ("Here's what happened: {context}\n\nGiven that, {question}\n\nPick one:\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of these is the most likely answer to \"{question}\", given that {context}", "{answer}"),
    ("Social reasoning.\n{context}\nQ: {question}\n{options_}\nA:", "{answer}"),
)

_SOCIAL_IQA_INVERTED = (
    ("{context}\n\nAsk a question about this situation whose answer is \"{answer}\".", "{question}"),
)


def social_i_qa(example: Fields) -> Fields:
    """`label` is the 1-based number ("1"-"3") of the right answer among answerA, answerB, answerC."""
    candidates = [example["answerA"], example["answerB"], example["answerC"]]
    return {
        "context": example["context"],
        "question": example["question"],
        **choose_option(candidates, int(example["label"]) - 1),
    }


_WIKI_HOP_TEMPLATES = (
    ("Facts:\n{supports}\n\nWhat is the {relation} of {subject}?\n{options_}", "{answer}"),
    ("{supports}\n\nCombining the passages above, which entity is related to \"{subject}\" by \"{relation}\"?\n{options_}", "{answer}"),
    ("Question: {subject} -- {relation} -- ?\nCandidates:\n{options_}\n\nEvidence:\n{supports}", "{answer}"),
    ("Read these snippets and link the pieces of information together.\n\n{supports}\n\nFill in the blank: the {relation} of {subject} is ___.\n{options_}", "{answer}"),
    ("{supports}\n\nSeveral hops of reasoning may be needed. {subject}: {relation}?\n{options_}", "{answer}"),
    ("Knowledge-base completion. Subject: {subject}. Relation: {relation}.\nSupporting documents:\n{supports}\n\nWhich object completes the triple?\n{options_}", "{answer}"),
)

_WIKI_HOP_INVERTED = (
    ("{supports}\n\nName the relation between \"{subject}\" and \"{answer}\" that these passages support.", "{relation}"),
)


def wiki_hop(example: Fields) -> Fields:
    """The question is `<relation with underscores> <subject>`: it is split and the relation spelled out."""
    relation, _, subject = example["question"].partition(" ")
    return {
        "relation": relation.replace("_", " "),
        "subject": subject,
        "supports": "\n".join(example["supports"]),
        **choose_by_text(example["candidates"], example["answer"]),
    }


def _race_spec(level: str) -> T0Spec:
    return T0Spec(
        name=f"race_{level}",
        hf_name=f"race/{level}",
        cluster=CLUSTER,
        preprocessor=race,
        templates=_RACE_TEMPLATES,
        inverted_templates=_RACE_INVERTED,
        options=(),
        metrics=_ACCURACY,
    )


SPECS: tuple[T0Spec, ...] = (
    T0Spec(
        name="dream",
        hf_name="dream",
        cluster=CLUSTER,
        preprocessor=dream,
        templates=_DREAM_TEMPLATES,
        inverted_templates=_DREAM_INVERTED,
        options=(),
        metrics=_ACCURACY,
    ),
    T0Spec(
        name="quail",
        hf_name="quail",
        cluster=CLUSTER,
        preprocessor=quail,
        templates=_QUAIL_TEMPLATES,
        inverted_templates=_QUAIL_INVERTED,
        options=(),
        metrics=_ACCURACY,
    ),
    T0Spec(
        name="cos_e_v1_11",
        hf_name="cos_e/v1.11",
        cluster=CLUSTER,
        preprocessor=cos_e,
        templates=_COS_E_TEMPLATES,
        inverted_templates=_COS_E_INVERTED,
        options=(),
        metrics=_ACCURACY,
    ),
    _race_spec("high"),
    _race_spec("middle"),
    T0Spec(
        name="social_i_qa",
        hf_name="social_i_qa",
        cluster=CLUSTER,
        preprocessor=social_i_qa,
        templates=_SOCIAL_IQA_TEMPLATES,
        inverted_templates=_SOCIAL_IQA_INVERTED,
        options=(),
        metrics=_ACCURACY,
    ),
    T0Spec(
        name="wiki_hop_original",
        hf_name="wiki_hop/original",
        cluster=CLUSTER,
        preprocessor=wiki_hop,
        templates=_WIKI_HOP_TEMPLATES,
        inverted_templates=_WIKI_HOP_INVERTED,
        options=(),
        metrics=_ACCURACY,
    ),
)
