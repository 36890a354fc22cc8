"""FLAN 2021 paraphrase cluster: MRPC, QQP, PAWS Wiki, STS-B."""

from it_jax.evaluation.metrics import accuracy, f1, pearson, spearman
from mixtures.flan2021.spec import DatasetSpec, Fields

YES_NO_OPTIONS = ("yes", "no")
SIMILARITY_OPTIONS = ("0", "1", "2", "3", "4", "5")

# Label names in TFDS order, each as (answer, relation): the answer among the options, and how the second
# text relates to the first, which the inverted templates ask for ("Write a sentence that means the same as ...").
_MRPC_LABELS = (  # not_equivalent, equivalent
    ("no", "is on the same topic as, but does not mean the same as"),
    ("yes", "means the same as"),
)
_QQP_LABELS = (  # not_duplicate, duplicate
    ("no", "is related to, but does not ask the same thing as"),
    ("yes", "asks the same thing as"),
)
_PAWS_LABELS = (  # different_meaning, paraphrase
    ("no", "uses nearly the same words as, but does not mean the same as"),
    ("yes", "means the same as"),
)


def _sentence_pair(example: Fields, label: tuple[str, str]) -> Fields:
    answer, relation = label
    return {
        "sentence1": example["sentence1"],
        "sentence2": example["sentence2"],
        "answer": answer,
        "relation": relation,
    }


def mrpc_fields(example: Fields) -> Fields:
    return _sentence_pair(example, _MRPC_LABELS[example["label"]])


def paws_fields(example: Fields) -> Fields:
    return _sentence_pair(example, _PAWS_LABELS[example["label"]])


def qqp_fields(example: Fields) -> Fields:
    answer, relation = _QQP_LABELS[example["label"]]
    return {
        "question1": example["question1"],
        "question2": example["question2"],
        "answer": answer,
        "relation": relation,
    }


def stsb_fields(example: Fields) -> Fields:
    """The 0-5 similarity score rounded to a whole option as FLAN renders it (`tf.strings.as_string(label,
    precision=0)`, i.e. "%.0f": halves round to even, 4.5 -> "4"), which Python's `round` also does."""
    score = round(example["label"])
    return {"sentence1": example["sentence1"], "sentence2": example["sentence2"], "answer": str(score)}


# MRPC: sentence pairs from news stories.
_MRPC_TEMPLATES = (
    ("Sentence A: {sentence1}\nSentence B: {sentence2}\n\nDo A and B express the same idea?\n{options_}", "{answer}"),
    ("\"{sentence1}\"\n\"{sentence2}\"\n\nAre these two news sentences equivalent in meaning?\n{options_}", "{answer}"),
    (
        "Could one of these sentences replace the other without changing what is reported?\n\n1. {sentence1}\n"
        "2. {sentence2}\n{options_}",
        "{answer}",
    ),
    ("{sentence1}\n\nIs that a restatement of the following?\n{sentence2}\n{options_}", "{answer}"),
    (
        "Here are two sentences from news articles:\n{sentence1}\n{sentence2}\nDo they convey the same information?\n"
        "{options_}",
        "{answer}",
    ),
    (
        "{options_}\n\nFirst: {sentence1}\nSecond: {sentence2}\nIs the second sentence a paraphrase of the first?",
        "{answer}",
    ),
    (
        "Check whether two sentences are semantically equivalent.\nOne: {sentence1}\nTwo: {sentence2}\n{options_}",
        "{answer}",
    ),
    ("If a journalist wrote \"{sentence1}\", would \"{sentence2}\" say the same thing?\n{options_}", "{answer}"),
    ("{sentence1}\n{sentence2}\nSame meaning?\n{options_}", "{answer}"),
    ("Do the sentences \"{sentence1}\" and \"{sentence2}\" have an identical meaning?\n{options_}", "{answer}"),
)

_MRPC_INVERTED = (
    ("Write a sentence that {relation} this one: {sentence1}", "{sentence2}"),
    ("{sentence1}\n\nCompose another news sentence that {relation} the sentence above.", "{sentence2}"),
)

# QQP: question pairs from Quora.
_QQP_TEMPLATES = (
    (
        "Question 1: {question1}\nQuestion 2: {question2}\n\nAre these two questions asking the same thing?\n"
        "{options_}",
        "{answer}",
    ),
    ("{question1}\n{question2}\n\nWould both questions be answered by the same reply?\n{options_}", "{answer}"),
    (
        "A user on a Q&A site posted \"{question1}\" Another posted \"{question2}\" Should the two posts be "
        "merged as duplicates?\n{options_}",
        "{answer}",
    ),
    ("Is \"{question1}\" a duplicate of \"{question2}\"?\n{options_}", "{answer}"),
    ("Decide whether the two questions below mean the same.\n\nA: {question1}\nB: {question2}\n{options_}", "{answer}"),
    (
        "{options_}\n\nHere are two questions:\n{question1}\n{question2}\nDo they ask for the same information?",
        "{answer}",
    ),
    (
        "First question: {question1}\nSecond question: {question2}\nCan one answer serve for both?\n{options_}",
        "{answer}",
    ),
    ("{question1}\n\nIs the question above just another way of asking this one? {question2}\n{options_}", "{answer}"),
    ("If I know the answer to \"{question1}\", do I also know the answer to \"{question2}\"?\n{options_}", "{answer}"),
    ("Same question or different questions?\n- {question1}\n- {question2}\nAre they the same?\n{options_}", "{answer}"),
)

_QQP_INVERTED = (
    ("Write a question that {relation} this one: {question1}", "{question2}"),
    ("{question1}\n\nPose a different question that {relation} the question above.", "{question2}"),
)

# PAWS: pairs that share almost all their words, paraphrases or not.
_PAWS_TEMPLATES = (
    (
        "Sentence 1: {sentence1}\nSentence 2: {sentence2}\n\nDo the two sentences mean the same thing?\n{options_}",
        "{answer}",
    ),
    (
        "These sentences use nearly the same words. Do they also have the same meaning?\n\n{sentence1}\n{sentence2}\n"
        "{options_}",
        "{answer}",
    ),
    ("{sentence1}\n\nIs the next sentence a faithful rewording of the one above?\n{sentence2}\n{options_}", "{answer}"),
    ("Word order can change meaning. Does \"{sentence2}\" say what \"{sentence1}\" says?\n{options_}", "{answer}"),
    ("Tell me whether these two sentences are paraphrases.\nA: {sentence1}\nB: {sentence2}\n{options_}", "{answer}"),
    ("{options_}\n\n1. {sentence1}\n2. {sentence2}\nAre sentences 1 and 2 equivalent?", "{answer}"),
    ("\"{sentence1}\" and \"{sentence2}\": the same meaning?\n{options_}", "{answer}"),
    (
        "Compare the two sentences below and say whether they describe the same facts.\n\n{sentence1}\n\n{sentence2}\n"
        "{options_}",
        "{answer}",
    ),
    (
        "Original: {sentence1}\nRewrite: {sentence2}\nDid the rewrite keep the meaning of the original?\n{options_}",
        "{answer}",
    ),
    ("Is the meaning of \"{sentence1}\" preserved in \"{sentence2}\"?\n{options_}", "{answer}"),
)

_PAWS_INVERTED = (
    ("Write a sentence that {relation} this one: {sentence1}", "{sentence2}"),
    ("{sentence1}\n\nRearrange the sentence above into one that {relation} it.", "{sentence2}"),
)

# STS-B: similarity from 0 (unrelated) to 5 (same meaning), rounded to whole numbers.
_STSB_TEMPLATES = (
    (
        "How similar are these two sentences, from 0 (not at all) to 5 (identical in meaning)?\n\n{sentence1}\n"
        "{sentence2}\n{options_}",
        "{answer}",
    ),
    (
        "Sentence A: {sentence1}\nSentence B: {sentence2}\n\n"
        "Rate how close A and B are in meaning, where 0 means unrelated and 5 means equivalent.\n{options_}",
        "{answer}",
    ),
    (
        "{sentence1}\n{sentence2}\n\nOn a 0-5 scale, what is the semantic similarity of the two sentences above?\n"
        "{options_}",
        "{answer}",
    ),
    (
        "Give a similarity score between \"{sentence1}\" and \"{sentence2}\" (0 = different topics, 5 = same "
        "meaning).\n{options_}",
        "{answer}",
    ),
    (
        "{options_}\n\nFirst: {sentence1}\nSecond: {sentence2}\n"
        "How much do the two sentences overlap in meaning, from 0 to 5?",
        "{answer}",
    ),
    (
        "Score the pair of sentences for similarity. Use 5 for paraphrases, 0 for sentences with nothing in "
        "common, and values in between for partial overlap.\n"
        "1. {sentence1}\n2. {sentence2}\n{options_}",
        "{answer}",
    ),
    (
        "Does \"{sentence2}\" mean the same as \"{sentence1}\"? Answer with a number from 0 (no) to 5 (exactly).\n"
        "{options_}",
        "{answer}",
    ),
    (
        "{sentence1}\n\nOn a scale of zero to five, how well does this sentence match the one above?\n{sentence2}\n"
        "{options_}",
        "{answer}",
    ),
    ("Similarity (0-5) of:\n- {sentence1}\n- {sentence2}\n{options_}", "{answer}"),
)

_STSB_INVERTED = (
    (
        "Write a sentence whose similarity to \"{sentence1}\" is {answer} on a scale from 0 (unrelated) to 5 "
        "(same meaning).",
        "{sentence2}",
    ),
)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="mrpc",
        dataset="mrpc",
        cluster="paraphrase",
        tfds_name="glue/mrpc:2.0.0",
        preprocessor=mrpc_fields,
        templates=_MRPC_TEMPLATES,
        inverted_templates=_MRPC_INVERTED,
        options=YES_NO_OPTIONS,
        metrics=(accuracy, f1),
    ),
    DatasetSpec(
        name="qqp",
        dataset="qqp",
        cluster="paraphrase",
        tfds_name="glue/qqp:2.0.0",
        preprocessor=qqp_fields,
        templates=_QQP_TEMPLATES,
        inverted_templates=_QQP_INVERTED,
        options=YES_NO_OPTIONS,
        metrics=(accuracy, f1),
    ),
    DatasetSpec(
        name="paws_wiki",
        dataset="paws_wiki",
        cluster="paraphrase",
        tfds_name="paws_wiki/labeled_final_tokenized:1.1.0",
        preprocessor=paws_fields,
        templates=_PAWS_TEMPLATES,
        inverted_templates=_PAWS_INVERTED,
        options=YES_NO_OPTIONS,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="stsb",
        dataset="stsb",
        cluster="paraphrase",
        tfds_name="glue/stsb:2.0.0",
        preprocessor=stsb_fields,
        templates=_STSB_TEMPLATES,
        inverted_templates=_STSB_INVERTED,
        options=SIMILARITY_OPTIONS,
        # FLAN reports STS-B as the correlation of the predicted score with the (rounded) gold score;
        # accuracy (the exact rounded score) is kept as a secondary measure.
        metrics=(pearson, spearman, accuracy),
    ),
)
