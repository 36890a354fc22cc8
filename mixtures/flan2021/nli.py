"""FLAN 2021 nli cluster: ANLI (rounds 1-3), CB, MNLI (matched, mismatched), QNLI, RTE, SNLI, WNLI."""

from it_jax.evaluation.metrics import accuracy, f1
from mixtures.flan2021.spec import DatasetSpec, Fields

THREE_WAY_OPTIONS = ("yes", "it is not possible to tell", "no")
TWO_WAY_OPTIONS = ("yes", "no")

# Each label becomes (answer, relation): the answer among the options, and how the hypothesis relates to
# the premise, which the inverted templates ask for ("Write a sentence that contradicts ...").
_ENTAILMENT = ("yes", "follows from")
_NEUTRAL = ("it is not possible to tell", "is neither implied nor contradicted by")
_CONTRADICTION = ("no", "contradicts")
_NOT_ENTAILMENT = ("no", "does not follow from")

# Label names in TFDS order.
_ANLI_LABELS = (_ENTAILMENT, _NEUTRAL, _CONTRADICTION)  # e, n, c
_CB_LABELS = (_ENTAILMENT, _CONTRADICTION, _NEUTRAL)
_MNLI_LABELS = (_ENTAILMENT, _NEUTRAL, _CONTRADICTION)
_SNLI_LABELS = (_ENTAILMENT, _NEUTRAL, _CONTRADICTION)
_RTE_LABELS = (_ENTAILMENT, _NOT_ENTAILMENT)
_WNLI_LABELS = (_NOT_ENTAILMENT, _ENTAILMENT)
_QNLI_LABELS = (("yes", "answers"), ("no", "does not answer"))  # entailment, not_entailment


def _pair(premise: str, hypothesis: str, label: tuple[str, str]) -> Fields:
    answer, relation = label
    return {"premise": premise, "hypothesis": hypothesis, "answer": answer, "relation": relation}


def anli_fields(example: Fields) -> Fields:
    return _pair(example["context"], example["hypothesis"], _ANLI_LABELS[example["label"]])


def cb_fields(example: Fields) -> Fields:
    return _pair(example["premise"], example["hypothesis"], _CB_LABELS[example["label"]])


def mnli_fields(example: Fields) -> Fields:
    return _pair(example["premise"], example["hypothesis"], _MNLI_LABELS[example["label"]])


def snli_fields(example: Fields) -> Fields:
    # TFDS keeps pairs whose annotators reached no consensus, with label -1: they count as undecided.
    label = _NEUTRAL if example["label"] == -1 else _SNLI_LABELS[example["label"]]
    return _pair(example["premise"], example["hypothesis"], label)


def rte_fields(example: Fields) -> Fields:
    return _pair(example["premise"], example["hypothesis"], _RTE_LABELS[example["label"]])


def wnli_fields(example: Fields) -> Fields:
    return _pair(example["sentence1"], example["sentence2"], _WNLI_LABELS[example["label"]])


def qnli_fields(example: Fields) -> Fields:
    answer, relation = _QNLI_LABELS[example["label"]]
    return {"question": example["question"], "sentence": example["sentence"], "answer": answer, "relation": relation}


# Premise/hypothesis pairs with three answers (MNLI, SNLI, CB).
_NLI_TEMPLATES = (
    (
        "{premise}\n\nIf the passage above is accurate, is it also accurate that \"{hypothesis}\"?\n{options_}",
        "{answer}",
    ),
    (
        "Statement A: {premise}\nStatement B: {hypothesis}\n\nIf statement A holds, is statement B true?\n{options_}",
        "{answer}",
    ),
    ("Assume this is true: {premise}\n\nMust the following be true as well?\n{hypothesis}\n{options_}", "{answer}"),
    ("Given that \"{premise}\", should we believe that \"{hypothesis}\"?\n{options_}", "{answer}"),
    (
        "Read the first sentence, then say whether the second one is true.\n\nFirst: {premise}\nSecond: {hypothesis}\n"
        "{options_}",
        "{answer}",
    ),
    (
        "Someone tells you: \"{premise}\"\nGoing by what they said, is it the case that \"{hypothesis}\"?\n{options_}",
        "{answer}",
    ),
    ("{options_}\n\nChoose one. Taking \"{premise}\" as fact, is \"{hypothesis}\" true?", "{answer}"),
    ("Evidence: {premise}\nClaim: {hypothesis}\nGoing by the evidence, is the claim correct?\n{options_}", "{answer}"),
    ("Is \"{hypothesis}\" true, given \"{premise}\"?\n{options_}", "{answer}"),
    ("{premise}\nWith that in mind, would you say this is true: {hypothesis}\n{options_}", "{answer}"),
)

# ANLI's premises are paragraphs, mostly from Wikipedia.
_ANLI_TEMPLATES = (
    (
        "{premise}\n\nUsing only the passage above, is the following statement true?\n{hypothesis}\n{options_}",
        "{answer}",
    ),
    (
        "Passage:\n{premise}\n\nStatement: {hypothesis}\n\nIs the statement correct according to the passage?\n"
        "{options_}",
        "{answer}",
    ),
    (
        "Here is a short text.\n{premise}\n\nGiven what it says, is this claim true? \"{hypothesis}\"\n{options_}",
        "{answer}",
    ),
    ("Fact-check the claim against the paragraph.\nParagraph: {premise}\nClaim: {hypothesis}\n{options_}", "{answer}"),
    ("{premise}\n\nA reader of this text says: \"{hypothesis}\" Is the reader right?\n{options_}", "{answer}"),
    ("Consider the paragraph below and answer whether \"{hypothesis}\" is true.\n\n{premise}\n{options_}", "{answer}"),
    ("Context: {premise}\n\nGiven the context, is this true? {hypothesis}\n{options_}", "{answer}"),
    (
        "{options_}\n\n{premise}\n\nWhich option answers this: is \"{hypothesis}\" true according to the text?",
        "{answer}",
    ),
    ("Text: {premise}\nDoes the text show that \"{hypothesis}\" is true?\n{options_}", "{answer}"),
    ("{premise}\n\nTrue or not, according to the paragraph: \"{hypothesis}\"\n{options_}", "{answer}"),
)

_RTE_TEMPLATES = (
    ("{premise}\n\nDoes the text above show that \"{hypothesis}\"?\n{options_}", "{answer}"),
    (
        "Text: {premise}\nHypothesis: {hypothesis}\nWould a reader of the text have to accept the hypothesis?\n"
        "{options_}",
        "{answer}",
    ),
    (
        "Suppose the following is true.\n{premise}\n\nMust this then also be true? \"{hypothesis}\"\n{options_}",
        "{answer}",
    ),
    ("Answer yes or no. If \"{premise}\", is it true that \"{hypothesis}\"?\n{options_}", "{answer}"),
    (
        "Look at this passage:\n{premise}\n\nIs the sentence \"{hypothesis}\" a valid inference from it?\n{options_}",
        "{answer}",
    ),
    ("{premise}\nQuestion: Is it true that \"{hypothesis}\"?\n{options_}", "{answer}"),
    ("Does the first text imply the second?\n\n1. {premise}\n2. {hypothesis}\n{options_}", "{answer}"),
    ("{options_}\n\nPassage: {premise}\n\nBased solely on the passage, is \"{hypothesis}\" correct?", "{answer}"),
    (
        "Determine whether the claim is backed by the source.\nSource: {premise}\nClaim: {hypothesis}\n{options_}",
        "{answer}",
    ),
    ("{premise}\n\nFrom this, can one infer the following?\n{hypothesis}\n{options_}", "{answer}"),
)

# WNLI: the second sentence restates the first with an ambiguous pronoun replaced by a noun phrase.
_WNLI_TEMPLATES = (
    ("{premise}\n\nIs this a correct reading of the sentence above? \"{hypothesis}\"\n{options_}", "{answer}"),
    (
        "Sentence: {premise}\nRestatement: {hypothesis}\nDoes the restatement get the pronoun right?\n{options_}",
        "{answer}",
    ),
    ("Someone wrote: \"{premise}\"\nDid they mean that \"{hypothesis}\"?\n{options_}", "{answer}"),
    ("Read carefully: {premise}\n\nIs the following then true? {hypothesis}\n{options_}", "{answer}"),
    (
        "Resolve the pronoun in the first sentence and check the second.\n\n1. {premise}\n2. {hypothesis}\n"
        "Is the second sentence true?\n{options_}",
        "{answer}",
    ),
    ("{options_}\n\n\"{premise}\"\nAccording to this, is it right that \"{hypothesis}\"?", "{answer}"),
    ("{premise}\nDoes that mean the following? {hypothesis}\n{options_}", "{answer}"),
    ("Does \"{premise}\" tell us that \"{hypothesis}\"?\n{options_}", "{answer}"),
    (
        "Here is a sentence with a pronoun: {premise}\n"
        "If we interpret the pronoun sensibly, is this true? {hypothesis}\n{options_}",
        "{answer}",
    ),
)

_QNLI_TEMPLATES = (
    (
        "Question: {question}\nSentence: {sentence}\nDoes the sentence contain the answer to the question?\n{options_}",
        "{answer}",
    ),
    ("{sentence}\n\nCould the text above answer \"{question}\"?\n{options_}", "{answer}"),
    ("Someone asked \"{question}\" and was told \"{sentence}\" Was the question answered?\n{options_}", "{answer}"),
    ("I am looking for the answer to this: {question}\nIs it given here? {sentence}\n{options_}", "{answer}"),
    (
        "Decide whether the passage answers the question.\n\nQuestion: {question}\nPassage: {sentence}\n{options_}",
        "{answer}",
    ),
    ("{options_}\n\nDoes \"{sentence}\" respond to the question \"{question}\"?", "{answer}"),
    ("{question}\n\nIs this a good answer? {sentence}\n{options_}", "{answer}"),
    ("Sentence: \"{sentence}\"\nWould you find the answer to \"{question}\" in the sentence?\n{options_}", "{answer}"),
    ("Can the question \"{question}\" be answered using only this sentence: \"{sentence}\"?\n{options_}", "{answer}"),
)

_NLI_INVERTED = (
    ("Write a sentence that {relation} this one: {premise}", "{hypothesis}"),
    ("{premise}\n\nGive me a statement that {relation} the text above.", "{hypothesis}"),
    ("Here is a claim: {hypothesis}\nWrite a short text that the claim {relation}.", "{premise}"),
)

_QNLI_INVERTED = (
    ("{sentence}\n\nWrite a question that the sentence above {relation}.", "{question}"),
)

SPECS: tuple[DatasetSpec, ...] = (
    *(
        DatasetSpec(
            name=f"anli_r{r}",
            dataset="anli",
            cluster="nli",
            tfds_name=f"anli/r{r}:0.1.0",
            preprocessor=anli_fields,
            templates=_ANLI_TEMPLATES,
            inverted_templates=_NLI_INVERTED,
            options=THREE_WAY_OPTIONS,
            metrics=(accuracy,),
        )
        for r in (1, 2, 3)
    ),
    DatasetSpec(
        name="cb",
        dataset="cb",
        cluster="nli",
        tfds_name="super_glue/cb:1.0.2",
        preprocessor=cb_fields,
        templates=_NLI_TEMPLATES,
        inverted_templates=_NLI_INVERTED,
        options=THREE_WAY_OPTIONS,
        metrics=(accuracy, f1),
    ),
    *(
        DatasetSpec(
            name=f"mnli_{kind}",
            dataset="mnli",
            cluster="nli",
            tfds_name="glue/mnli:2.0.0",
            preprocessor=mnli_fields,
            templates=_NLI_TEMPLATES,
            inverted_templates=_NLI_INVERTED,
            splits={"train": "train", "validation": f"validation_{kind}"},
            options=THREE_WAY_OPTIONS,
            metrics=(accuracy,),
        )
        for kind in ("matched", "mismatched")
    ),
    DatasetSpec(
        name="qnli",
        dataset="qnli",
        cluster="nli",
        tfds_name="glue/qnli:2.0.0",
        preprocessor=qnli_fields,
        templates=_QNLI_TEMPLATES,
        inverted_templates=_QNLI_INVERTED,
        options=TWO_WAY_OPTIONS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="rte",
        dataset="rte",
        cluster="nli",
        tfds_name="super_glue/rte:1.0.2",
        preprocessor=rte_fields,
        templates=_RTE_TEMPLATES,
        inverted_templates=_NLI_INVERTED,
        options=TWO_WAY_OPTIONS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="snli",
        dataset="snli",
        cluster="nli",
        tfds_name="snli:1.1.0",
        preprocessor=snli_fields,
        templates=_NLI_TEMPLATES,
        inverted_templates=_NLI_INVERTED,
        options=THREE_WAY_OPTIONS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="wnli",
        dataset="wnli",
        cluster="nli",
        tfds_name="glue/wnli:2.0.0",
        preprocessor=wnli_fields,
        templates=_WNLI_TEMPLATES,
        options=TWO_WAY_OPTIONS,
        metrics=(accuracy,),
    ),
)
