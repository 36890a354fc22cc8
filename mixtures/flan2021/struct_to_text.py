"""FLAN 2021 struct_to_text cluster: CommonGen, DART, E2E NLG and WebNLG (English)."""

import re

from it_jax.evaluation.metrics import bleu, rouge
from mixtures.flan2021.spec import DatasetSpec, with_answers

_METRICS = (rouge, bleu)
_E2E_ATTRIBUTE = re.compile(r"([^,\[\]]+)\[([^\]]*)\]")


def _gem_answers(example):
    """GEM's `target` and, in `answers`, its `references` (several on CommonGen, DART and WebNLG evaluation
    splits; GEM's E2E has one record per reference, so one; none on training splits)."""
    return with_answers([example["target"], *example["references"]])


def _common_gen(example):
    return {"concepts": ", ".join(example["concepts"]), **_gem_answers(example)}


def _dart(example):
    return {"triples": "; ".join(example["tripleset"]), **_gem_answers(example)}


def _e2e_nlg(example):
    mr = example["meaning_representation"]
    pairs = [f"{key.strip()}: {value}" for key, value in _E2E_ATTRIBUTE.findall(mr)]
    return {"attributes": "; ".join(pairs) or mr, **_gem_answers(example)}


def _web_nlg(example):
    return {"triples": "; ".join(example["input"]), **_gem_answers(example)}


_COMMON_GEN_TEMPLATES = (
    ("Concepts: {concepts}\n\nWrite a sentence that uses all of these concepts.", "{answer}"),
    ("Make up one everyday sentence containing the words {concepts}.", "{answer}"),
    ("{concepts}\n\nHow could these words fit together in a single sentence?", "{answer}"),
    ("Here are some keywords: {concepts}. Describe a simple scene in which all of them appear.", "{answer}"),
    ("Use every word from this list in one natural sentence: {concepts}", "{answer}"),
    ("Words: {concepts}\nSentence:", "{answer}"),
    ("Think of a situation involving {concepts}. Write one sentence describing it.", "{answer}"),
    ("Describe an ordinary situation in one sentence that mentions each of the following: {concepts}.", "{answer}"),
    ("Can you write a short sentence that includes {concepts}?", "{answer}"),
    ("Combine the concepts below into a sentence that makes sense.\n\n{concepts}", "{answer}"),
)
_COMMON_GEN_INVERTED = (
    ("Sentence: {answer}\n\nWhich key concepts does this sentence contain? List them.", "{concepts}"),
    ("Pick out the main keywords of this sentence: {answer}", "{concepts}"),
)

_DART_TEMPLATES = (
    ("Triples: {triples}\n\nWrite a sentence that expresses all of this data.", "{answer}"),
    ("Turn these facts into a fluent English sentence: {triples}", "{answer}"),
    ("{triples}\n\nWhat is a sentence that conveys the information above?", "{answer}"),
    ("Here is some data given as subject-relation-object triples: {triples}. Describe it in plain words.", "{answer}"),
    ("Data: {triples}\nText:", "{answer}"),
    ("Write one or two sentences stating the following facts.\n\n{triples}", "{answer}"),
    ("Verbalize this data: {triples}", "{answer}"),
    ("Someone gave you these triples: {triples}. How would you say the same thing in a sentence?", "{answer}"),
    ("Express the information in these entries as natural language: {triples}", "{answer}"),
    ("Facts: {triples}\n\nSum these facts up in a sentence.", "{answer}"),
)
_DART_INVERTED = (
    ("Sentence: {answer}\n\nExtract the facts in this sentence as subject-relation-object triples.", "{triples}"),
    ("Which data triples does this sentence describe? {answer}", "{triples}"),
)

_E2E_NLG_TEMPLATES = (
    ("Restaurant details: {attributes}\n\nWrite a sentence describing this restaurant.", "{answer}"),
    ("{attributes}\n\nDescribe the place above in a sentence or two.", "{answer}"),
    ("Write a short restaurant description that mentions all of these attributes: {attributes}", "{answer}"),
    ("Attributes: {attributes}\nDescription:", "{answer}"),
    ("Here is some information about an eating place: {attributes}. How would you tell a friend about it?", "{answer}"),
    ("Turn this meaning representation into natural text: {attributes}", "{answer}"),
    ("Using the data below, write a sentence for a restaurant guide.\n\n{attributes}", "{answer}"),
    ("What is a sentence that conveys the following restaurant facts? {attributes}", "{answer}"),
    ("Data about a venue: {attributes}. Put it into words.", "{answer}"),
    ("Express these attribute-value pairs as fluent English: {attributes}", "{answer}"),
)
_E2E_NLG_INVERTED = (
    ("Sentence: {answer}\n\nDescribe the restaurant in this sentence as attribute pairs.", "{attributes}"),
    ('List the attributes of the venue mentioned here as "attribute: value" pairs: {answer}', "{attributes}"),
)

_WEB_NLG_TEMPLATES = (
    ("Facts: {triples}\n\nWrite a short text that states these facts.", "{answer}"),
    ("{triples}\n\nWhat text could describe this data?", "{answer}"),
    ("Generate an English description based on these subject | relation | object triples: {triples}", "{answer}"),
    ("Data: {triples}\nDescription:", "{answer}"),
    ("Here is some data from a knowledge base: {triples}. Tell me about it in a sentence or two.", "{answer}"),
    ("Convert the following triples into fluent text.\n\n{triples}", "{answer}"),
    ("Write a sentence about the data below.\n{triples}", "{answer}"),
    ("Could you put this knowledge-graph data into words? {triples}", "{answer}"),
    ("Describe, in natural language, everything stated by these facts: {triples}", "{answer}"),
    ("Triples: {triples}\n\nWhat do they say? Answer in full sentences.", "{answer}"),
)
_WEB_NLG_INVERTED = (
    ("Text: {answer}\n\nExtract the facts in this text as subject | relation | object triples.", "{triples}"),
    ("Which knowledge-base triples does the following text express? {answer}", "{triples}"),
)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="common_gen",
        dataset="common_gen",
        cluster="struct_to_text",
        tfds_name="gem/common_gen:1.1.0",
        preprocessor=_common_gen,
        templates=_COMMON_GEN_TEMPLATES,
        inverted_templates=_COMMON_GEN_INVERTED,
        metrics=_METRICS,
    ),
    DatasetSpec(
        name="dart",
        dataset="dart",
        cluster="struct_to_text",
        tfds_name="gem/dart:1.1.0",
        preprocessor=_dart,
        templates=_DART_TEMPLATES,
        inverted_templates=_DART_INVERTED,
        metrics=_METRICS,
    ),
    DatasetSpec(
        name="e2e_nlg",
        dataset="e2e_nlg",
        cluster="struct_to_text",
        tfds_name="gem/e2e_nlg:1.1.0",
        preprocessor=_e2e_nlg,
        templates=_E2E_NLG_TEMPLATES,
        inverted_templates=_E2E_NLG_INVERTED,
        metrics=_METRICS,
    ),
    DatasetSpec(
        name="web_nlg_en",
        dataset="web_nlg_en",
        cluster="struct_to_text",
        tfds_name="gem/web_nlg_en:1.1.0",
        preprocessor=_web_nlg,
        templates=_WEB_NLG_TEMPLATES,
        inverted_templates=_WEB_NLG_INVERTED,
        metrics=_METRICS,
    ),
)
