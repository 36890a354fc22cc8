"""T0 sentiment and topic classification: Amazon polarity, app reviews (star rating), DBpedia-14."""

from it_jax.evaluation import metrics
from mixtures.t0.spec import Fields, T0Spec

_ACCURACY = (metrics.accuracy,)

# Amazon polarity: label 0 = negative, 1 = positive.
_POLARITY = ("negative", "positive")

_AMAZON_POLARITY_TEMPLATES = (
    ("Product review titled \"{title}\":\n{content}\n\nIs the reviewer's opinion positive or negative?\n{options_}", "{answer}"),
    ("{content}\n\nHow does the customer feel about the product?\n{options_}", "{answer}"),
    ("Title: {title}\nReview: {content}\n\nSentiment:\n{options_}", "{answer}"),
    ("A shopper left this on an online store: \"{title}. {content}\"\nWould you call it a positive or a negative review?\n{options_}", "{answer}"),
    ("{options_}\n\nWhich label fits this review? {title} -- {content}", "{answer}"),
    ("Read the review and tell me whether the buyer was satisfied.\n\n{title}\n{content}\n{options_}", "{answer}"),
)

_AMAZON_POLARITY_INVERTED = (
    ("Write a {answer} product review with the title \"{title}\".", "{content}"),
    ("{content}\n\nGive this product review a short title.", "{title}"),
)


def amazon_polarity(example: Fields) -> Fields:
    return {"title": example["title"], "content": example["content"], "answer": _POLARITY[example["label"]]}


_STARS = ("1", "2", "3", "4", "5")

_APP_REVIEWS_TEMPLATES = (
    ("App review: \"{review}\"\nOn a scale of 1 to 5, how many stars did the user give?\n{options_}", "{answer}"),
    ("{review}\n\nGuess the star rating (1 = worst, 5 = best) of this review of the Android app {package}.\n{options_}", "{answer}"),
    ("Someone reviewed an app from the Play Store: {review}\nHow many stars?\n{options_}", "{answer}"),
    ("Rate the review below from 1 to 5 stars according to how satisfied the user sounds.\n\n{review}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich star rating goes with this review? {review}", "{answer}"),
    ("Review of {package}: {review}\nStars:\n{options_}", "{answer}"),
)

_APP_REVIEWS_INVERTED = (
    ("Write a review of the app {package} that gives it {answer} star(s) out of 5.", "{review}"),
)


def app_reviews(example: Fields) -> Fields:
    """`star` (1-5) as a string option; the app's package name, e.g. com.example.app."""
    return {"package": example["package_name"], "review": example["review"], "answer": _STARS[example["star"] - 1]}


# DBpedia-14's ClassLabel names, in order, written as words.
_DBPEDIA_CLASSES = (
    "company",
    "educational institution",
    "artist",
    "athlete",
    "office holder",
    "mean of transportation",
    "building",
    "natural place",
    "village",
    "animal",
    "plant",
    "album",
    "film",
    "written work",
)

_DBPEDIA_TEMPLATES = (
    ("{title}: {content}\n\nWhat kind of thing is {title}?\n{options_}", "{answer}"),
    ("{content}\n\nWhich category does the text above belong to?\n{options_}", "{answer}"),
    ("Classify the subject of this encyclopedia entry.\n\nTitle: {title}\nEntry: {content}\n{options_}", "{answer}"),
    ("Pick the type of entity that \"{title}\" is, based on its description: {content}\n{options_}", "{answer}"),
    ("{options_}\n\nWhich of the labels above describes the topic of this article? {title} -- {content}", "{answer}"),
    ("Wikipedia abstract: {content}\nTopic type:\n{options_}", "{answer}"),
)

_DBPEDIA_INVERTED = (
    ("Write a one-paragraph encyclopedia description of {title}, which is a {answer}.", "{content}"),
    ("{content}\n\nWhat is the name of the {answer} described above?", "{title}"),
)


def dbpedia(example: Fields) -> Fields:
    return {"title": example["title"], "content": example["content"].strip(), "answer": _DBPEDIA_CLASSES[example["label"]]}


SPECS: tuple[T0Spec, ...] = (
    T0Spec(
        name="amazon_polarity",
        hf_name="amazon_polarity",
        cluster="sentiment",
        preprocessor=amazon_polarity,
        templates=_AMAZON_POLARITY_TEMPLATES,
        inverted_templates=_AMAZON_POLARITY_INVERTED,
        splits={"train": "train", "validation": "test"},
        options=_POLARITY,
        metrics=_ACCURACY,
    ),
    T0Spec(
        name="app_reviews",
        hf_name="app_reviews",
        cluster="sentiment",
        preprocessor=app_reviews,
        templates=_APP_REVIEWS_TEMPLATES,
        inverted_templates=_APP_REVIEWS_INVERTED,
        splits={"train": "train"},
        options=_STARS,
        metrics=_ACCURACY,
    ),
    T0Spec(
        name="dbpedia_14",
        hf_name="dbpedia_14",
        cluster="topic_classification",
        preprocessor=dbpedia,
        templates=_DBPEDIA_TEMPLATES,
        inverted_templates=_DBPEDIA_INVERTED,
        splits={"train": "train", "validation": "test"},
        options=_DBPEDIA_CLASSES,
        metrics=_ACCURACY,
    ),
)
