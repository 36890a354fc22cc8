"""FLAN 2021 translation cluster: ParaCrawl en-es, WMT'14 en-fr, WMT'16 cs/de/fi/ro/ru/tr-en, both directions."""

import functools

from it_jax.evaluation.metrics import bleu
from mixtures.flan2021.spec import DatasetSpec

# (task prefix, TFDS name, language code, language name); every pair is with English.
_PAIRS = (
    ("para_crawl", "para_crawl/enes:1.2.0", "es", "Spanish"),
    ("wmt14", "wmt14_translate/fr-en:1.0.0", "fr", "French"),
    ("wmt16", "wmt16_translate/cs-en:1.0.0", "cs", "Czech"),
    ("wmt16", "wmt16_translate/de-en:1.0.0", "de", "German"),
    ("wmt16", "wmt16_translate/fi-en:1.0.0", "fi", "Finnish"),
    ("wmt16", "wmt16_translate/ro-en:1.0.0", "ro", "Romanian"),
    ("wmt16", "wmt16_translate/ru-en:1.0.0", "ru", "Russian"),
    ("wmt16", "wmt16_translate/tr-en:1.0.0", "tr", "Turkish"),
)
_LANGUAGES = {"en": "English", **{code: language for _, _, code, language in _PAIRS}}
# TFDS para_crawl has only a train split (FLAN evaluated translation on WMT only).
_TRAIN_ONLY_SPLITS = {"train": "train", "validation": "train"}

_TEMPLATES = (
    ("Translate from {source_language} to {target_language}:\n\n{source_text}", "{answer}"),
    ("{source_text}\n\nHow would you say this in {target_language}?", "{answer}"),
    ("{source_language}: {source_text}\n{target_language}:", "{answer}"),
    ("What is the {target_language} version of this {source_language} sentence? {source_text}", "{answer}"),
    ("Render this text in {target_language}.\n{source_text}", "{answer}"),
    ('I need this {source_language} text in {target_language}: "{source_text}"', "{answer}"),
    ("Write the following in {target_language}.\n\n{source_text}", "{answer}"),
    ("Here is a sentence in {source_language}: {source_text}\n\nGive its {target_language} translation.", "{answer}"),
    ("{source_text}\n\nTranslate the text above into {target_language}.", "{answer}"),
    ("Convert this {source_language} passage into {target_language}:\n{source_text}", "{answer}"),
)


def _translate(example, *, source, target):
    return {
        "source_language": _LANGUAGES[source],
        "target_language": _LANGUAGES[target],
        "source_text": example[source],
        "answer": example[target],
    }


def _direction(prefix, tfds_name, source, target, dataset):
    return DatasetSpec(
        name=f"{prefix}_{source}_{target}",
        dataset=dataset,
        cluster="translation",
        tfds_name=tfds_name,
        preprocessor=functools.partial(_translate, source=source, target=target),
        templates=_TEMPLATES,
        splits=_TRAIN_ONLY_SPLITS if prefix == "para_crawl" else {"train": "train", "validation": "validation"},
        metrics=(bleu,),
    )


SPECS: tuple[DatasetSpec, ...] = tuple(
    _direction(prefix, tfds_name, source, target, dataset=f"{prefix}_{code}_en")
    for prefix, tfds_name, code, _ in _PAIRS
    for source, target in ((code, "en"), ("en", code))
)
