"""Example generators of the synthetic collection: one function per task, `rng -> dict of template fields`.

Every answer is computed from the example's own content, so it is exactly right. `split_generator` turns
an example function into the `split -> iterator of dicts` a `GeneratorSource` reads, seeded by a stable
hash of (task name, split): the same task and split always yield the same examples, in every process.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable, Iterator, Mapping

from it_jax.data.sources import Example

ExampleFn = Callable[[random.Random], Example]

WORDS = tuple(
    """
    apple river stone cloud garden window silver forest candle basket mirror planet rabbit orange
    pencil bridge castle dragon engine farmer guitar hammer island jacket kettle lemon market needle
    ocean pepper rocket saddle tiger violin wallet yellow zebra anchor button carpet desert eagle
    feather ginger harbor insect jungle kitten ladder meadow napkin olive parrot ribbon sunset tunnel
    velvet walnut bottle cactus dinner finger helmet lizard monkey pillow sister timber winter
    bread chair dance earth flame grape horse juice knife light money night paint rain sheep table
    water youth brush cabin dream field glove house judge lake moon nurse pearl road salt train wheel
    bed cat dog egg fox hat ink jar kid leg map net owl pig rug sun toy van web
    banana camera doctor family hotel lunch music number open paper radio simple ticket travel
    animal before circle danger energy follow gentle honest letter little medal normal office public
    """.split()
)
NAMES = ("Ana", "Ben", "Dev", "Eva", "Ida", "Jon", "Kim", "Leo", "Liv", "Max", "Mia", "Pia", "Raj", "Sam",
         "Tom", "Uma", "Vic", "Zoe")
ITEMS = ("fig", "pen", "cup", "hat", "key", "egg", "jar", "mug", "can", "toy", "nut", "bow")
NONCE_NOUNS = ("wug", "dap", "fep", "zorp", "tove", "glim", "mib", "nerp", "tib", "vop", "yim", "drob", "blik",
               "kel")
PROPERTIES = ("red", "blue", "green", "tall", "small", "round", "soft", "loud", "heavy", "shiny", "quiet", "fast",
              "cold", "warm")
VOWELS = "aeiou"
CONSONANTS = "bcdfghjklmnprstvwz"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def stable_seed(task: str, split: str) -> int:
    """The seed of (task, split): a CRC32 hash, identical across processes (unlike `hash`)."""
    return zlib.crc32(f"{task}:{split}".encode("utf-8"))


def split_generator(task: str, example_fn: ExampleFn, sizes: Mapping[str, int]) -> Callable[[str], Iterator[Example]]:
    """A `split -> iterator of examples` function yielding `sizes[split]` seeded examples of `example_fn`."""

    def generate(split: str) -> Iterator[Example]:
        rng = random.Random(stable_seed(task, split))
        for _ in range(sizes[split]):
            yield example_fn(rng)

    generate.__name__ = task
    return generate


def word(rng: random.Random) -> str:
    """A lowercase word: a common English word or, half the time, a pronounceable made-up one."""
    if rng.random() < 0.5:
        return rng.choice(WORDS)
    syllables = [rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(rng.randint(2, 3))]
    if rng.random() < 0.5:
        syllables.append(rng.choice(CONSONANTS))
    return "".join(syllables)


def number(rng: random.Random, max_digits: int = 3) -> int:
    """A non-negative integer with a uniformly chosen number of digits (1 to `max_digits`)."""
    digits = rng.randint(1, max_digits)
    return rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1)


def _join(numbers: list[int]) -> str:
    return ", ".join(str(n) for n in numbers)


def addition(rng: random.Random) -> Example:
    """Two numbers of up to three digits and their sum."""
    a, b = number(rng), number(rng)
    return {"a": str(a), "b": str(b), "answer": str(a + b)}


def larger_number(rng: random.Random) -> Example:
    """Two different numbers, offered as the options, with the larger and the smaller one."""
    a, b = rng.sample(range(1000), 2) if rng.random() < 0.5 else (number(rng), number(rng))
    while a == b:
        b = number(rng)
    return {"a": str(a), "b": str(b), "larger": str(max(a, b)), "smaller": str(min(a, b)),
            "options": [str(a), str(b)]}


def reverse_word(rng: random.Random) -> Example:
    """A word and its letters in reverse order."""
    w = word(rng)
    return {"word": w, "answer": w[::-1]}


def count_letter(rng: random.Random) -> Example:
    """A word, a letter (usually one of its own) and how many times the letter occurs in it."""
    w = word(rng)
    letter = rng.choice(w) if rng.random() < 0.75 else rng.choice([c for c in LETTERS if c not in w])
    return {"word": w, "letter": letter, "answer": str(w.count(letter))}


def sort_list(rng: random.Random) -> Example:
    """Three to six numbers below 100, and the same numbers sorted both ways."""
    numbers = [rng.randint(0, 99) for _ in range(rng.randint(3, 6))]
    return {"numbers": _join(numbers), "ascending": _join(sorted(numbers)),
            "descending": _join(sorted(numbers, reverse=True))}


def list_extremes(rng: random.Random) -> Example:
    """Three to eight numbers below 100 with their maximum and minimum."""
    numbers = [rng.randint(0, 99) for _ in range(rng.randint(3, 8))]
    return {"numbers": _join(numbers), "largest": str(max(numbers)), "smallest": str(min(numbers))}


def longer_word(rng: random.Random) -> Example:
    """Two words of different lengths, offered as the options, with the longer and the shorter one."""
    first, second = word(rng), word(rng)
    while len(second) == len(first):
        second = word(rng)
    longer, shorter = (first, second) if len(first) > len(second) else (second, first)
    return {"first": first, "second": second, "longer": longer, "shorter": shorter, "options": [first, second]}


def alphabetical_order(rng: random.Random) -> Example:
    """Two different words; the answer says whether the first sorts before the second."""
    first, second = word(rng), word(rng)
    while second == first:
        second = word(rng)
    return {"first": first, "second": second, "answer": "yes" if first < second else "no"}


def _amount(count: int, item: str) -> str:
    return f"{count} {item}" if count == 1 else f"{count} {item}s"


def _comparison(name: str, a: int, x: str, b: int, y: str) -> str:
    if a == b:
        return f"{name} has as many {x}s as {y}s"
    return f"{name} has {'more' if a > b else 'fewer'} {x}s than {y}s"


def item_inference(rng: random.Random) -> Example:
    """NLI over counted items: the hypothesis follows, contradicts, or is not settled by the premise.

    Premise and hypothesis are clauses without final punctuation; the templates punctuate them.
    """
    name, other = rng.sample(NAMES, 2)
    x, y, z = rng.sample(ITEMS, 3)
    a, b = rng.randint(1, 9), rng.randint(1, 9)
    hypotheses = {
        "yes": [
            f"{name} has {_amount(a, x)}",
            _comparison(name, a, x, b, y),
            f"{name} has at least {_amount(rng.randint(1, b), y)}",
        ],
        "no": [
            f"{name} has {_amount(rng.choice([k for k in range(1, 10) if k != a]), x)}",
            _comparison(name, b, x, a, y) if a != b else f"{name} has more {x}s than {y}s",
            f"{name} has no {y}s",
        ],
        "it is not possible to tell": [
            f"{name} has {_amount(rng.randint(1, 9), z)}",
            f"{other} has {_amount(a, x)}",
            f"{name} bought the {x}s",
        ],
    }
    answer = rng.choice(tuple(hypotheses))
    hypothesis = rng.choice(hypotheses[answer])
    premise = f"{name} has {_amount(a, x)} and {_amount(b, y)}"
    return {"premise": premise, "hypothesis": hypothesis, "answer": answer}


def syllogism(rng: random.Random) -> Example:
    """Categorical reasoning about made-up kinds: the conclusion is certain (yes/no) or open (maybe)."""
    name = rng.choice(NAMES)
    kind, middle = rng.sample(NONCE_NOUNS, 2)
    prop = rng.choice(PROPERTIES)
    all_kind = f"All {kind}s are {prop}." if rng.random() < 0.5 else f"Every {kind} is {prop}."
    is_kind = (f"Is {name} a {kind}?", f"{name} is a {kind}")
    is_prop = (f"Is {name} {prop}?", f"{name} is {prop}")
    patterns = {
        "yes": [
            (f"{all_kind} {name} is a {kind}.", is_prop),
            (f"All {kind}s are {middle}s. All {middle}s are {prop}. {name} is a {kind}.", is_prop),
        ],
        "no": [
            (f"No {kind}s are {prop}. {name} is a {kind}.", is_prop),
            (f"{all_kind} {name} is not {prop}.", is_kind),
        ],
        "maybe": [
            (f"{all_kind} {name} is {prop}.", is_kind),
            (f"{all_kind} {name} is not a {kind}.", is_prop),
            (f"Some {kind}s are {prop}. {name} is a {kind}.", is_prop),
        ],
    }
    answer = rng.choice(("yes", "no", "maybe"))
    facts, (question, claim) = rng.choice(patterns[answer])
    return {"facts": facts, "question": question, "claim": claim, "answer": answer}


def caesar(text: str, shift: int = 3) -> str:
    """Shifts each lowercase letter `shift` places forward in the alphabet (wrapping), leaving others."""
    return "".join(LETTERS[(LETTERS.index(c) + shift) % 26] if c in LETTERS else c for c in text)


def _phrase(rng: random.Random, max_length: int) -> str:
    while True:
        text = " ".join(word(rng) for _ in range(rng.randint(1, 2)))
        if len(text) <= max_length:
            return text


def caesar_cipher(rng: random.Random) -> Example:
    """One or two words (at most 20 characters) and their Caesar encryption with shift 3."""
    text = _phrase(rng, 20)
    return {"text": text, "cipher": caesar(text)}


def pig_latin(text: str) -> str:
    """Pig Latin: a word starting with a vowel gets "way"; otherwise its leading consonants move to the end + "ay"."""

    def convert(w: str) -> str:
        if w[0] in VOWELS:
            return w + "way"
        first_vowel = next((i for i, c in enumerate(w) if c in VOWELS), len(w))
        return w[first_vowel:] + w[:first_vowel] + "ay"

    return " ".join(convert(w) for w in text.split())


def pig_latin_translation(rng: random.Random) -> Example:
    """One or two words and their Pig Latin, at most 24 characters."""
    while True:
        text = _phrase(rng, 18)
        translation = pig_latin(text)
        if len(translation) <= 24:
            return {"text": text, "translation": translation}
