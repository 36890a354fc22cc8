"""FLAN 2021 sentiment cluster: IMDB reviews, Sentiment140, SST-2, Yelp polarity reviews."""

from it_jax.evaluation.metrics import accuracy
from mixtures.flan2021.spec import DatasetSpec

# Label names in TFDS order for the binary datasets (IMDB neg/pos, SST-2 negative/positive, Yelp 1/2 stars).
_POLARITY = ("negative", "positive")
_SENTIMENT140_POLARITY = ("negative", "neutral", "positive")


def _review(example):
    return {"text": example["text"].strip(), "answer": _POLARITY[example["label"]]}


def _sst2(example):
    return {"text": example["sentence"].strip(), "answer": _POLARITY[example["label"]]}


_IMDB_TEMPLATES = (
    ("{text}\n\nDid the author of this movie review like the film?\n{options_}", "{answer}"),
    ("What is the overall sentiment of the following movie review?\n\n{text}\n{options_}", "{answer}"),
    ("Review: {text}\nSentiment:\n{options_}", "{answer}"),
    ("{options_}\n\nWhich word describes the tone of this film review? {text}", "{answer}"),
    (
        "Here is what a viewer wrote about a movie:\n{text}\n\nIs their opinion favorable or unfavorable?\n{options_}",
        "{answer}",
    ),
    ("Classify the polarity of this IMDB review.\n\n{text}\n{options_}", "{answer}"),
    ("{text}\nWould you say the reviewer recommends this movie?\n{options_}", "{answer}"),
    ("Read the review below and decide how the critic feels about the film.\n{text}\n{options_}", "{answer}"),
    ('A moviegoer posted: "{text}"\nHow did they feel?\n{options_}', "{answer}"),
    ("{text}\n\nLabel this review.\n{options_}", "{answer}"),
)
_IMDB_INVERTED_TEMPLATES = (
    ("Write a {answer} review of a movie.", "{text}"),
    ("Compose a movie review whose sentiment is {answer}.", "{text}"),
)


def _sentiment140(example):
    # Polarity is 0 (negative), 2 (neutral) or 4 (positive); the train split has only 0 and 4.
    polarity = example["polarity"]
    label = 0 if polarity < 2 else 1 if polarity == 2 else 2
    return {"text": example["text"].strip(), "answer": _SENTIMENT140_POLARITY[label]}


_SENTIMENT140_TEMPLATES = (
    ("{text}\n\nWhat is the mood of this tweet?\n{options_}", "{answer}"),
    ("Tweet: {text}\nSentiment:\n{options_}", "{answer}"),
    ("Classify the sentiment expressed in the following tweet.\n\n{text}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of these best describes the feeling behind this post? {text}", "{answer}"),
    ('Someone tweeted: "{text}"\nHow were they feeling?\n{options_}', "{answer}"),
    ("{text}\nHow would you characterize the attitude of this tweet?\n{options_}", "{answer}"),
    ("Read this short social media post and judge its emotional tone.\n{text}\n{options_}", "{answer}"),
    ("Is the following tweet upbeat, downbeat or neither?\n\n{text}\n{options_}", "{answer}"),
    ("Determine the polarity of this message from Twitter: {text}\n{options_}", "{answer}"),
    ("{text}\n\nPick the sentiment label for the text above.\n{options_}", "{answer}"),
)
_SENTIMENT140_INVERTED_TEMPLATES = (
    ("Compose a {answer} tweet.", "{text}"),
    ("Write a short social media post with a {answer} tone.", "{text}"),
)

_SST2_TEMPLATES = (
    (
        '"{text}"\n\nDoes this phrase from a movie review express a positive or a negative opinion?\n{options_}',
        "{answer}",
    ),
    ("What sentiment does this excerpt of a film review convey?\n\n{text}\n{options_}", "{answer}"),
    ("Sentence: {text}\nSentiment:\n{options_}", "{answer}"),
    ("{options_}\n\nWhich label fits this snippet from a critic? {text}", "{answer}"),
    ("A critic wrote: {text}\nIs the critic pleased or displeased?\n{options_}", "{answer}"),
    ("Classify the sentiment of this sentence taken from a movie review.\n{text}\n{options_}", "{answer}"),
    ("{text}\nHow does the writer feel about the movie, judging by this sentence?\n{options_}", "{answer}"),
    ("Tell me whether the following phrase is praise or criticism.\n\n{text}\n{options_}", "{answer}"),
    ("Movie review fragment: {text}\nWhat is its polarity?\n{options_}", "{answer}"),
    ("{text}\n\nIs the tone here favorable or critical?\n{options_}", "{answer}"),
)
_SST2_INVERTED_TEMPLATES = (("Write a {answer} sentence from a film review.", "{text}"),)

_YELP_TEMPLATES = (
    ("{text}\n\nWas this customer happy with the business?\n{options_}", "{answer}"),
    ("What is the sentiment of the following Yelp review?\n\n{text}\n{options_}", "{answer}"),
    ("Review: {text}\nSentiment:\n{options_}", "{answer}"),
    ("{options_}\n\nHow would you label the tone of this customer review? {text}", "{answer}"),
    (
        "A customer left this review online:\n{text}\n\nDid they have a good or a bad experience?\n{options_}",
        "{answer}",
    ),
    ("Classify this business review by its polarity.\n{text}\n{options_}", "{answer}"),
    ("{text}\nBased on this review, would the writer go back?\n{options_}", "{answer}"),
    ("Read the review and decide whether the reviewer is satisfied.\n\n{text}\n{options_}", "{answer}"),
    ('Yelp user wrote: "{text}"\nOverall impression:\n{options_}', "{answer}"),
    ("{text}\n\nIs this a complaint or a compliment?\n{options_}", "{answer}"),
)
_YELP_INVERTED_TEMPLATES = (
    ("Write a {answer} Yelp review.", "{text}"),
    ("Write a review of a local business. The review should be {answer}.", "{text}"),
)

SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="imdb_reviews",
        dataset="imdb_reviews",
        cluster="sentiment",
        tfds_name="imdb_reviews/plain_text:1.0.0",
        preprocessor=_review,
        templates=_IMDB_TEMPLATES,
        inverted_templates=_IMDB_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        options=_POLARITY,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="sentiment140",
        dataset="sentiment140",
        cluster="sentiment",
        tfds_name="sentiment140:1.0.0",
        preprocessor=_sentiment140,
        templates=_SENTIMENT140_TEMPLATES,
        inverted_templates=_SENTIMENT140_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        options=_SENTIMENT140_POLARITY,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="sst2",
        dataset="sst2",
        cluster="sentiment",
        tfds_name="glue/sst2:2.0.0",
        preprocessor=_sst2,
        templates=_SST2_TEMPLATES,
        inverted_templates=_SST2_INVERTED_TEMPLATES,
        options=_POLARITY,
        metrics=(accuracy,),
    ),
    DatasetSpec(
        name="yelp_polarity_reviews",
        dataset="yelp_polarity_reviews",
        cluster="sentiment",
        tfds_name="yelp_polarity_reviews:0.2.0",
        preprocessor=_review,
        templates=_YELP_TEMPLATES,
        inverted_templates=_YELP_INVERTED_TEMPLATES,
        splits={"train": "train", "validation": "test"},
        options=_POLARITY,
        metrics=(accuracy,),
    ),
)
