"""FLAN 2021 summarization cluster: AESLC, AG News, CNN/DM, Gigaword, Multi-News, Newsroom, OpinionAbstracts, SAMSum, WikiLingua, XSum."""

from it_jax.evaluation import metrics
from mixtures.flan2021.spec import DatasetSpec, Fields

_CLUSTER = "summarization"
_ROUGE = (metrics.rouge,)

# News article -> summary (CNN/DailyMail, Multi-News, Newsroom). The first six name no summary length; XSum
# reuses them.
_NEWS_TEMPLATES = (
    ("{text}\n\nGive the key points of the story above.", "{answer}"),
    ("Read this news story and produce a brief summary of it:\n{text}", "{answer}"),
    ("News story:\n{text}\n\nShort summary:", "{answer}"),
    ("Here is a piece of journalism:\n\n{text}\n\nBoil it down to its essentials.", "{answer}"),
    ("I only have a minute. Can you sum up this article for me?\n\n{text}", "{answer}"),
    ("Produce a concise recap of this press article.\n\nText: {text}", "{answer}"),
    ("Condense the following news report into a few sentences.\n\n{text}", "{answer}"),
    (
        "{text}\n\nIf you had to explain this report to a friend in a couple of sentences, what would you say?",
        "{answer}",
    ),
    ("{text}\n\nIn brief, the main points are:", "{answer}"),
    ("{text}\nRecap the story in a short paragraph.", "{answer}"),
)
_NEWS_INVERTED = (
    ("Expand the following summary into a full news story:\n\n{answer}", "{text}"),
    ("Key points: {answer}\n\nDraft a news report that covers these points.", "{text}"),
)

_NEWSROOM_INVERTED = _NEWS_INVERTED + (
    ("Title: {title}\nSummary: {answer}\n\nWrite the article that goes with this title and summary.", "{text}"),
)

# News article -> one-sentence summary.
_XSUM_TEMPLATES = _NEWS_TEMPLATES[:6] + (
    ("{text}\n\nCapture the gist of this article in one sentence.", "{answer}"),
    ("Give a single-sentence summary of the report below.\n\n{text}", "{answer}"),
    ("Article:\n{text}\n\nOne-line summary:", "{answer}"),
    ("What is this story about, in just one sentence?\n\n{text}", "{answer}"),
)

# Opening sentence of a wire story -> its headline.
_GIGAWORD_TEMPLATES = (
    ("Turn this sentence from a news wire into a headline: {text}", "{answer}"),
    ("{text}\n\nSuggest a short headline for this.", "{answer}"),
    ("Sentence: {text}\nHeadline:", "{answer}"),
    ("Compress the following statement into a brief, headline-style phrase.\n\n{text}", "{answer}"),
    ('A newspaper story starts like this: "{text}" What headline might it carry?', "{answer}"),
    ("{text}\n\nShorten this into a few words that capture its meaning.", "{answer}"),
    ("Write a headline for a report that opens with the following line:\n{text}", "{answer}"),
    ("Give the news in a nutshell: {text}", "{answer}"),
    ("{text}\nWhat would a copy editor put above this as a headline?", "{answer}"),
)
_GIGAWORD_INVERTED = (
    ("Headline: {answer}\n\nWrite the opening sentence of the news story.", "{text}"),
    ('Write a sentence that could begin a wire report titled "{answer}".', "{text}"),
)

_AESLC_TEMPLATES = (
    ("{body}\n\nPropose a subject line for this email.", "{answer}"),
    ("Email:\n{body}\n\nSubject:", "{answer}"),
    ("I wrote the message below but left the subject empty. What should it say?\n\n{body}", "{answer}"),
    ("Give this email a short, fitting subject.\n\n{body}", "{answer}"),
    ("{body}\n\nIf this email appeared in an inbox, what would its subject line most likely be?", "{answer}"),
    ("Read the email and write the subject line it was sent with.\n\n{body}", "{answer}"),
    ("Message body: {body}\n\nWhat is a good subject for this message?", "{answer}"),
    ("Generate the subject line for the following office email:\n{body}", "{answer}"),
    ("{body}\n\nSubject line in a few words:", "{answer}"),
)
_AESLC_INVERTED = (
    ('Compose an email whose subject line is "{answer}".', "{body}"),
    ("Subject: {answer}\n\nWrite the body of this email.", "{body}"),
)

# TFDS ag_news_subset label order: World, Sports, Business, Sci/Tech (spelled out here).
_AG_NEWS_LABELS = ("World", "Sports", "Business", "Science/Tech")
_AG_NEWS_TEMPLATES = (
    ("{title}\n\n{description}\n\nWhich section of a newspaper does this story belong in?\n{options_}", "{answer}"),
    ("Classify the topic of this news item.\n\nHeadline: {title}\nText: {description}\n{options_}", "{answer}"),
    (
        "{options_}\n\nWhich of the categories above best describes the following article?\n{title} - {description}",
        "{answer}",
    ),
    (
        "News: {title}. {description}\n\nIs this mainly about world affairs, sports, business, or science and "
        "technology?\n{options_}",
        "{answer}",
    ),
    ("Pick the subject area of this story.\n\n{description}\n{options_}", "{answer}"),
    ("{title}\n{description}\nWhat kind of news is this?\n{options_}", "{answer}"),
    (
        "Here is a headline and a short blurb from a news feed.\n\n{title}\n{description}\n\n"
        "Which topic fits it?\n{options_}",
        "{answer}",
    ),
    ("Headline: {title}\n\nGuess the category of the article behind this headline.\n{options_}", "{answer}"),
    (
        "{description}\n\nIf you had to file this article under one label, which would it be?\n{options_}",
        "{answer}",
    ),
    ("Assign a topic to the news below.\n{title}: {description}\n{options_}", "{answer}"),
)
_AG_NEWS_INVERTED = (
    ("Write a short news item that would be filed under {answer}.", "{title}\n\n{description}"),
    ("Write a headline for this {answer} story:\n\n{description}", "{title}"),
)

_SAMSUM_TEMPLATES = (
    ("{dialogue}\n\nSum up what was said in this chat.", "{answer}"),
    ("Conversation:\n{dialogue}\n\nWhat happened in this conversation, briefly?", "{answer}"),
    (
        "Read the messages below and write a short note describing what the participants talked about.\n\n{dialogue}",
        "{answer}",
    ),
    ("{dialogue}\n\nBriefly, what did these people discuss or agree on?", "{answer}"),
    ("Chat log:\n{dialogue}\nSummary:", "{answer}"),
    ("Someone missed this group chat. Catch them up in a sentence or two.\n\n{dialogue}", "{answer}"),
    ("Describe the exchange below in the third person, in a few words.\n{dialogue}", "{answer}"),
    ("{dialogue}\n\nWrite a brief recap of the dialogue.", "{answer}"),
    ("Here is a text-message exchange:\n\n{dialogue}\n\nWhat is the gist of it?", "{answer}"),
)
_SAMSUM_INVERTED = (
    ("Write a short messaging-app conversation that matches this description: {answer}", "{dialogue}"),
    ("Summary: {answer}\n\nInvent the chat that this summary describes.", "{dialogue}"),
)

_ROTTEN_TOMATOES_TEMPLATES = (
    ("Here are critics' reviews of the film {movie}:\n{critics}\n\nWhat is the critical consensus?", "{answer}"),
    (
        "{critics}\n\nThese reviews are all about {movie}. Sum up what critics think of it in a sentence or two.",
        "{answer}",
    ),
    ("Movie: {movie}\nReviews:\n{critics}\n\nConsensus:", "{answer}"),
    ("Combine the following critic opinions of {movie} into one overall verdict.\n\n{critics}", "{answer}"),
    ("What do reviewers generally agree on about {movie}? Base your answer on these reviews:\n{critics}", "{answer}"),
    ("Write the critics' consensus blurb for {movie}, given these reviews.\n\n{critics}", "{answer}"),
    ("{critics}\n\nBased on the reviews above, how was {movie} received by critics overall?", "{answer}"),
    ("Reviews of {movie}:\n{critics}\n\nCondense the critics' views into a short consensus statement.", "{answer}"),
    ("I read a lot of reviews of {movie}:\n{critics}\nWhat is the overall takeaway?", "{answer}"),
)
_ROTTEN_TOMATOES_INVERTED = (
    (
        'The critics\' consensus on {movie} reads: "{answer}" Write some individual critic reviews that could have '
        "led to it.",
        "{critics}",
    ),
)

_IDEBATE_TEMPLATES = (
    ("Debate topic: {debate}\nArgument:\n{arguments}\n\nWhat claim does this argument support?", "{answer}"),
    ('{arguments}\n\nState in one sentence the point this argument makes in the debate "{debate}".', "{answer}"),
    ('In a debate on "{debate}", one side argued:\n\n{arguments}\n\nSummarize their claim.', "{answer}"),
    ("Read the argument and write the claim it defends.\n\nTopic: {debate}\n{arguments}", "{answer}"),
    ("{arguments}\n\nWhat is the main claim here? (Debate: {debate})", "{answer}"),
    ("Motion: {debate}\nSpeech:\n{arguments}\nClaim:", "{answer}"),
    ("Give a short, headline-style claim for this debate argument about {debate}.\n\n{arguments}", "{answer}"),
    (
        "Here is an argument from an online debate on {debate}.\n{arguments}\nWhich thesis is it arguing for?",
        "{answer}",
    ),
    ("Distill this argument into the single claim it supports.\n\n{arguments}", "{answer}"),
)
_IDEBATE_INVERTED = (
    ("Debate: {debate}\nClaim: {answer}\n\nWrite an argument that backs up this claim.", "{arguments}"),
    ('Make the case for the following point in the debate "{debate}": {answer}', "{arguments}"),
)

# WikiHow how-to article -> summary of its steps.
_WIKI_LINGUA_TEMPLATES = (
    ("{text}\n\nSummarize these instructions.", "{answer}"),
    ("How-to article:\n{text}\n\nShort version:", "{answer}"),
    ("Here is a set of instructions from a how-to guide. Write a brief summary of the steps.\n\n{text}", "{answer}"),
    ("{text}\n\nWhat are the main steps described above, in brief?", "{answer}"),
    ("Condense this tutorial into a few short sentences.\n\n{text}", "{answer}"),
    ("Guide:\n{text}\n\nGive me the quick rundown.", "{answer}"),
    ("Rewrite the following guide as a brief overview of what to do.\n{text}", "{answer}"),
    ("{text}\nIn short, what should the reader do?", "{answer}"),
    ("I don't have time to read this whole guide. What does it say?\n\n{text}", "{answer}"),
)
_WIKI_LINGUA_INVERTED = (
    ("Expand these summarized steps into a detailed how-to article:\n\n{answer}", "{text}"),
    ("Write detailed instructions that someone could follow to do the following: {answer}", "{text}"),
)


def _aeslc(ex: Fields) -> Fields:
    return {"body": ex["email_body"], "answer": ex["subject_line"]}


def _ag_news(ex: Fields) -> Fields:
    return {"title": ex["title"], "description": ex["description"], "answer": _AG_NEWS_LABELS[ex["label"]]}


def _cnn_dailymail(ex: Fields) -> Fields:
    return {"text": ex["article"], "answer": ex["highlights"]}


def _document_summary(ex: Fields) -> Fields:
    return {"text": ex["document"], "answer": ex["summary"]}


def _multi_news(ex: Fields) -> Fields:
    # Multi-News separates its source articles with "|||||"; show them as paragraphs.
    articles = (article.strip() for article in ex["document"].split("|||||"))
    return {"text": "\n\n".join(a for a in articles if a), "answer": ex["summary"]}


def _newsroom(ex: Fields) -> Fields:
    return {"text": ex["text"], "title": ex["title"], "answer": ex["summary"]}


def _rotten_tomatoes(ex: Fields) -> Fields:
    reviews = ex["_critics"]["value"]
    return {
        "movie": ex["_movie_name"],
        "critics": "\n".join(f"{i}. {review}" for i, review in enumerate(reviews, 1)),
        "answer": ex["_critic_consensus"],
    }


def _idebate(ex: Fields) -> Fields:
    return {
        "debate": ex["_debate_name"],
        "arguments": " ".join(ex["_argument_sentences"]["value"]),
        "answer": ex["_claim"],
    }


def _samsum(ex: Fields) -> Fields:
    return {"dialogue": ex["dialogue"], "answer": ex["summary"]}


def _wiki_lingua(ex: Fields) -> Fields:
    return {"text": ex["source"], "answer": ex["target"]}


SPECS: tuple[DatasetSpec, ...] = (
    DatasetSpec(
        name="aeslc",
        dataset="aeslc",
        cluster=_CLUSTER,
        tfds_name="aeslc:1.0.0",
        preprocessor=_aeslc,
        templates=_AESLC_TEMPLATES,
        inverted_templates=_AESLC_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="ag_news_subset",
        dataset="ag_news_subset",
        cluster=_CLUSTER,
        tfds_name="ag_news_subset:1.0.0",
        preprocessor=_ag_news,
        templates=_AG_NEWS_TEMPLATES,
        inverted_templates=_AG_NEWS_INVERTED,
        splits={"train": "train", "validation": "test"},  # TFDS has no validation split.
        options=_AG_NEWS_LABELS,
        metrics=(metrics.accuracy,),
    ),
    DatasetSpec(
        name="cnn_dailymail",
        dataset="cnn_dailymail",
        cluster=_CLUSTER,
        tfds_name="cnn_dailymail:3.4.0",
        preprocessor=_cnn_dailymail,
        templates=_NEWS_TEMPLATES,
        inverted_templates=_NEWS_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="gigaword",
        dataset="gigaword",
        cluster=_CLUSTER,
        tfds_name="gigaword:1.2.0",
        preprocessor=_document_summary,
        templates=_GIGAWORD_TEMPLATES,
        inverted_templates=_GIGAWORD_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="multi_news",
        dataset="multi_news",
        cluster=_CLUSTER,
        tfds_name="multi_news:2.1.0",
        preprocessor=_multi_news,
        templates=_NEWS_TEMPLATES,
        inverted_templates=_NEWS_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="newsroom",
        dataset="newsroom",
        cluster=_CLUSTER,
        tfds_name="newsroom:1.0.0",  # TFDS needs a manual download of the data.
        preprocessor=_newsroom,
        templates=_NEWS_TEMPLATES,
        inverted_templates=_NEWSROOM_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="opinion_abstracts_rotten_tomatoes",
        dataset="opinion_abstracts_rotten_tomatoes",
        cluster=_CLUSTER,
        tfds_name="opinion_abstracts/rotten_tomatoes:1.0.0",
        preprocessor=_rotten_tomatoes,
        templates=_ROTTEN_TOMATOES_TEMPLATES,
        inverted_templates=_ROTTEN_TOMATOES_INVERTED,
        splits={"train": "train", "validation": "train"},  # TFDS has only a train split.
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="opinion_abstracts_idebate",
        dataset="opinion_abstracts_idebate",
        cluster=_CLUSTER,
        tfds_name="opinion_abstracts/idebate:1.0.0",
        preprocessor=_idebate,
        templates=_IDEBATE_TEMPLATES,
        inverted_templates=_IDEBATE_INVERTED,
        splits={"train": "train", "validation": "train"},  # TFDS has only a train split.
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="samsum",
        dataset="samsum",
        cluster=_CLUSTER,
        tfds_name="samsum:1.0.0",
        preprocessor=_samsum,
        templates=_SAMSUM_TEMPLATES,
        inverted_templates=_SAMSUM_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="wiki_lingua_english_en",
        dataset="wiki_lingua_english_en",
        cluster=_CLUSTER,
        tfds_name="gem/wiki_lingua_english_en:1.1.0",
        preprocessor=_wiki_lingua,
        templates=_WIKI_LINGUA_TEMPLATES,
        inverted_templates=_WIKI_LINGUA_INVERTED,
        metrics=_ROUGE,
    ),
    DatasetSpec(
        name="xsum",
        dataset="xsum",
        cluster=_CLUSTER,
        tfds_name="xsum:1.1.0",
        preprocessor=_document_summary,
        templates=_XSUM_TEMPLATES,
        inverted_templates=_NEWS_INVERTED,
        metrics=_ROUGE,
    ),
)
