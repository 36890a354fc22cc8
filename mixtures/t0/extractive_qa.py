"""T0 extractive QA: AdversarialQA (dbidaf, dbert, droberta), DuoRC (SelfRC, ParaphraseRC), Quoref, ROPES."""

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec, with_answers

CLUSTER = "extractive_qa"
_SQUAD = (metrics.squad,)

_ADVERSARIAL_QA_TEMPLATES = (
    ("{context}\n\nCopy the span of the passage that answers: {question}", "{answer}"),
    ("Passage about {title}:\n{context}\n\nQuestion: {question}\nAnswer (quote the passage):", "{answer}"),
    ("This question was written to trick a reading model. Don't fall for it.\n\n{context}\n\n{question}", "{answer}"),
    ("Question: {question}\n\nLook for the exact words in this text:\n{context}", "{answer}"),
    ("{context}\n\nWhich phrase in the text above answers \"{question}\"?", "{answer}"),
    ("Context ({title}): {context}\nQ: {question}\nA:", "{answer}"),
)

_ADVERSARIAL_QA_INVERTED = (
    ("{context}\n\nWrite a hard question about this passage, one a careless reader would get wrong, whose answer is \"{answer}\".", "{question}"),
    ("{context}\n\nWhat is this passage mainly about? Give a short title.", "{title}"),
)


def adversarial_qa(example: Fields) -> Fields:
    """The first annotated answer span, every span in `answers`; Wikipedia titles lose their underscores."""
    return {
        "title": example["title"].replace("_", " "),
        "context": example["context"],
        "question": example["question"],
        **with_answers(example["answers"]["text"]),
    }


NO_ANSWER = "No answer"

_DUORC_TEMPLATES = (
    ("Movie plot of \"{title}\":\n{plot}\n\nAnswer from the plot, or say \"No answer\" if it doesn't tell: {question}", "{answer}"),
    ("{plot}\n\nQuestion about the film: {question}\n(If the plot above does not say, reply \"No answer\".)", "{answer}"),
    ("I'm trying to decide whether to watch {title}. Can you answer a question about it from the synopsis? If not, just say \"No answer\".\n\nSynopsis: {plot}\n\nQuestion: {question}", "{answer}"),
    ("Question: {question}\nFilm: {title}\n\nPlot summary:\n{plot}\n\nAnswer (or \"No answer\"):", "{answer}"),
    ("Read the summary of {title} and respond to the question; when the summary lacks the information, write \"No answer\".\n\n{plot}\n\n{question}", "{answer}"),
    ("{plot}\n\nBased on this story, {question} If it can't be told, answer \"No answer\".", "{answer}"),
)

_DUORC_INVERTED = (
    ("Here is the plot of a movie:\n{plot}\n\nSuggest a title for this movie.", "{title}"),
    ("{plot}\n\nAsk a question about this movie plot.", "{question}"),
)


def duorc(example: Fields) -> Fields:
    """The first human answer, every answer in `answers`; questions without one get "No answer"."""
    answers = [] if example["no_answer"] else list(example["answers"])
    return {
        "title": example["title"],
        "plot": example["plot"],
        "question": example["question"],
        **with_answers(answers or [NO_ANSWER]),
    }


_QUOREF_TEMPLATES = (
    ("{context}\n\nTo answer this you need to work out who or what each name and pronoun refers to. {question}", "{answer}"),
    ("Article: {title}\n\n{context}\n\nQuestion: {question}\nAnswer with words from the article:", "{answer}"),
    ("Question: {question}\n\nFind the answer in this text:\n{context}", "{answer}"),
    ("{context}\n\nQ: {question}\nA:", "{answer}"),
    ("Resolve the references in the passage below, then answer the question.\n\nPassage: {context}\n\nQuestion: {question}", "{answer}"),
    ("The following text comes from the Wikipedia article \"{title}\".\n{context}\n\nExtract the answer to: {question}", "{answer}"),
)

_QUOREF_INVERTED = (
    ("{context}\n\nWrite a question about this text that can only be answered by tracking who is who; its answer should be \"{answer}\".", "{question}"),
    ("{context}\n\nWhat would be a good title for this text?", "{title}"),
)


def quoref(example: Fields) -> Fields:
    """The first answer span, every span in `answers`."""
    return {
        "title": example["title"],
        "context": example["context"],
        "question": example["question"],
        **with_answers(example["answers"]["text"]),
    }


_ROPES_TEMPLATES = (
    ("Background: {background}\n\nSituation: {situation}\n\nUsing the background to reason about the situation, answer: {question}", "{answer}"),
    ("{background}\n\nNow apply this knowledge.\n{situation}\n\n{question}", "{answer}"),
    ("Situation: {situation}\nQuestion: {question}\n\nA paragraph that may help:\n{background}", "{answer}"),
    ("I learned this in class: {background}\n\nThen my teacher described a scenario: {situation}\n\nShe asked: {question} What should I answer?", "{answer}"),
    ("Read the background and the story, then answer with words from the story.\n\nBackground: {background}\nStory: {situation}\nQ: {question}\nA:", "{answer}"),
    ("{situation}\n\n{question}\n\nHint: {background}", "{answer}"),
)

_ROPES_INVERTED = (
    ("Background: {background}\n\nDescribe a new situation in which someone could apply this knowledge.", "{situation}"),
    ("Background: {background}\nSituation: {situation}\n\nWrite a question that requires using the background to reason about the situation, with the answer \"{answer}\".", "{question}"),
)


def ropes(example: Fields) -> Fields:
    """The first answer, every answer in `answers`."""
    return {
        "background": example["background"],
        "situation": example["situation"],
        "question": example["question"],
        **with_answers(example["answers"]["text"]),
    }


def _adversarial_qa_spec(config: str) -> T0Spec:
    return T0Spec(
        name=f"adversarial_qa_{config}",
        hf_name=f"adversarial_qa/{config}",
        cluster=CLUSTER,
        preprocessor=adversarial_qa,
        templates=_ADVERSARIAL_QA_TEMPLATES,
        inverted_templates=_ADVERSARIAL_QA_INVERTED,
        metrics=_SQUAD,
    )


def _duorc_spec(config: str) -> T0Spec:
    return T0Spec(
        name=f"duorc_{config.lower()}",
        hf_name=f"duorc/{config}",
        cluster=CLUSTER,
        preprocessor=duorc,
        templates=_DUORC_TEMPLATES,
        inverted_templates=_DUORC_INVERTED,
        metrics=_SQUAD,
    )


SPECS: tuple[T0Spec, ...] = (
    *(_adversarial_qa_spec(config) for config in ("dbidaf", "dbert", "droberta")),
    *(_duorc_spec(config) for config in ("SelfRC", "ParaphraseRC")),
    T0Spec(
        name="quoref",
        hf_name="quoref",
        cluster=CLUSTER,
        preprocessor=quoref,
        templates=_QUOREF_TEMPLATES,
        inverted_templates=_QUOREF_INVERTED,
        metrics=_SQUAD,
    ),
    T0Spec(
        name="ropes",
        hf_name="ropes",
        cluster=CLUSTER,
        preprocessor=ropes,
        templates=_ROPES_TEMPLATES,
        inverted_templates=_ROPES_INVERTED,
        metrics=_SQUAD,
    ),
)
