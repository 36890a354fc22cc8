"""T0 structure-to-text: WikiBio (a Wikipedia infobox to the biography's first paragraph, and back)."""

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec

_WIKI_BIO_TEMPLATES = (
    ("Facts about a person:\n{facts}\n\nWrite the opening paragraph of their biography.", "{target}"),
    ("{facts}\n\nTurn the infobox above into a short encyclopedia-style biography.", "{target}"),
    ("Here is some information about {name}:\n{facts}\n\nDescribe this person in a few sentences.", "{target}"),
    ("Infobox:\n{facts}\n\nBiography:", "{target}"),
    ("Write a Wikipedia-like introduction for {name} using these details.\n{facts}", "{target}"),
    ("Using only the facts listed, write a brief biography.\n\n{facts}", "{target}"),
)

_WIKI_BIO_INVERTED = (
    ("{target}\n\nWho is this paragraph about?", "{name}"),
    ("Read this biography and list the key facts about the person as \"field: value\" lines.\n\n{target}", "{facts}"),
)


def _table_rows(table) -> list[tuple[str, str]]:
    """(header, content) pairs of the infobox, as Hugging Face gives it (a dict of lists) or as a list of rows."""
    if isinstance(table, dict):
        return list(zip(table["column_header"], table["content"]))
    return [(row["column_header"], row["content"]) for row in table]


def wiki_bio(example: Fields) -> Fields:
    """The infobox as "field: value" lines (underscores spelled out, empty and image fields dropped), the
    person's `name` (the infobox name, else the article title), and the biography `target`."""
    rows = [
        (header.replace("_", " ").strip(), content.strip())
        for header, content in _table_rows(example["input_text"]["table"])
        if content.strip() and content.strip() != "<none>" and "image" not in header
    ]
    fields = dict(rows)
    name = fields.get("name") or example["input_text"]["context"].strip()
    return {
        "facts": "\n".join(f"{header}: {content}" for header, content in rows),
        "name": name,
        "target": example["target_text"].strip(),
    }


SPECS: tuple[T0Spec, ...] = (
    T0Spec(
        name="wiki_bio",
        hf_name="wiki_bio",
        cluster="structure_to_text",
        preprocessor=wiki_bio,
        templates=_WIKI_BIO_TEMPLATES,
        inverted_templates=_WIKI_BIO_INVERTED,
        splits={"train": "train", "validation": "val"},
        metrics=(metrics.rouge, metrics.bleu),
    ),
)
