"""FLAN 2021 read_comp_with_commonsense cluster: ReCoRD and Cosmos QA."""

import re

from it_jax.evaluation import metrics
from mixtures.flan2021.spec import DatasetSpec, Fields, with_answers

CLUSTER = "read_comp_with_commonsense"

# ReCoRD is generation scored with squad EM/F1 (its official metrics): ranking dozens of entities per query is costly.
_RECORD_TEMPLATES = (
    ("{passage}\n\nFill in the blank: {query}", "{answer}"),
    ("Read the news story and complete the sentence that follows.\n\n{passage}\n\n{query}\n\nWhat goes in the blank?", "{answer}"),
    ("{passage}\n\nWhich entity from the story is missing here? {query}\n\nCandidates: {entities}", "{answer}"),
    ("Article:\n{passage}\n\nSentence with a gap: {query}\nMissing entity:", "{answer}"),
    ("Here is a sentence with a blank: \"{query}\"\n\nUse this article to fill it in:\n{passage}", "{answer}"),
    ("{passage}\n\nPossible answers: {entities}\n\nWhich one completes \"{query}\"?", "{answer}"),
    ("Complete the last sentence so that it is consistent with the article.\n\n{passage}\n\n{query}", "{answer}"),
    ("News: {passage}\n\nNext sentence (with a name or thing left out): {query}\n\nWho or what belongs in the ___?", "{answer}"),
    ("Read this and answer.\n\n{passage}\n\nIn the sentence \"{query}\", the blank refers to which of these: {entities}?", "{answer}"),
    ("{passage}\n\n{query}\n\nThe ___ stands for:", "{answer}"),
)

_RECORD_INVERTED = (
    ("{passage}\n\nWrite a sentence that could follow this story and mentions {answer}.", "{completed_query}"),
)

_BLANK = "___"


def record(example: Fields) -> Fields:
    """Highlights become a bulleted list after the story; the query's `@placeholder` becomes a blank. Every
    correct entity string is in `answers` (ReCoRD takes the best match); the first is the answer."""
    passage = re.sub(r"\s*@highlight\s*", "\n- ", example["passage"]).strip()
    answers = with_answers(example["answers"])
    return {
        "passage": passage,
        "query": example["query"].replace("@placeholder", _BLANK),
        "entities": ", ".join(example["entities"]),
        **answers,
        "completed_query": example["query"].replace("@placeholder", answers["answer"]),
    }


_COSMOS_QA_TEMPLATES = (
    ("{context}\n\n{question}\n{options_}", "{answer}"),
    ("Read the passage and answer the question.\n\n{context}\n\nQuestion: {question}\n{options_}", "{answer}"),
    ("{context}\n\nUsing common sense and the text above, {question}\n{options_}", "{answer}"),
    ("Context: {context}\nQ: {question}\n{options_}\nA:", "{answer}"),
    ("Question: {question}\n\nThink about this situation before you answer:\n{context}\n{options_}", "{answer}"),
    ("Here is a short story:\n{context}\n\n{options_}\n\nWhich option best answers \"{question}\"?", "{answer}"),
    ("{context}\n\nWhat is the most plausible answer? {question}\n{options_}", "{answer}"),
    ("Someone wrote this: \"{context}\"\n\nReading between the lines, {question}\n{options_}", "{answer}"),
    ("Pick the best answer based on the text.\n\nText: {context}\n\n{question}\n{options_}", "{answer}"),
    ("{context}\n\nAnswer the following question about the text, choosing from the options. {question}\n{options_}", "{answer}"),
)

_COSMOS_QA_INVERTED = (
    ("{context}\n\nWrite a question about this text that needs some common sense to answer and whose answer is \"{answer}\".", "{question}"),
)


def cosmos_qa(example: Fields) -> Fields:
    options = [example[f"answer{i}"].strip() for i in range(4)]
    return {
        "context": example["context"],
        "question": example["question"],
        "options": options,
        "answer": options[example["label"]],
    }


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="record",
        dataset="record",
        cluster=CLUSTER,
        tfds_name="super_glue/record:1.0.2",
        preprocessor=record,
        templates=_RECORD_TEMPLATES,
        inverted_templates=_RECORD_INVERTED,
        metrics=(metrics.squad,),
    ),
    DatasetSpec(
        name="cosmos_qa",
        dataset="cosmos_qa",
        cluster=CLUSTER,
        tfds_name="cosmos_qa:1.0.0",
        preprocessor=cosmos_qa,
        templates=_COSMOS_QA_TEMPLATES,
        inverted_templates=_COSMOS_QA_INVERTED,
        options=(),
        metrics=(metrics.accuracy,),
    ),
)
