"""(dialog context, next turn) examples: where each source's dialog is cut and how the context is rendered.

A `DialogSource` wraps a raw source (TFDS records or their JSONL mirrors) and yields, per dialog, one
example cut and rendered with a random generator seeded from the source's name, the split and the example's
index, so reruns are identical. The cut rules:
  * wiki_dialog: utterance 0 is dropped; the cut is at an odd index 2k+1, k uniform below min(len/2, 20), so the
    context ends on a user turn and the target is the reply after it;
  * qrecc: the same odd-index rule on the `context` list, for turns with `turn_id` > 6 only;
  * Taskmaster: the cut is uniform in [1, min(len, 20)); turns carry their own speakers.
Rendering draws a header, a turn-marker style (dashes, plus signs or alternating speaker names) and a turn
ending (none, ';' or '.'), and ends the dialog with the marker of the turn to predict.
"""

from __future__ import annotations

import dataclasses
import random
import zlib
from collections.abc import Callable, Iterator, Sequence

from it_jax.data import sources

USER, ASSISTANT = 0, 1
MAX_CUT = 20

HEADERS = (
    "",
    "Dialog:",
    "Conversation:",
    "Read the conversation below.",
    "Chat log:",
    "Here is a conversation between two people.",
    "Transcript:",
)
SPEAKER_NAMES = (
    ("User", "Assistant"),
    ("A", "B"),
    ("Person 1", "Person 2"),
    ("Speaker 1", "Speaker 2"),
    ("Customer", "Agent"),
    ("Human", "Bot"),
)
MARKER_STYLES = ("dashes", "plus", "names")
TURN_ENDINGS = ("", ";", ".")
_PUNCTUATION = (".", "!", "?", ";", ":", ",")


@dataclasses.dataclass(frozen=True)
class Turn:
    """One utterance: who says it (`USER` or `ASSISTANT`) and what."""

    speaker: int
    text: str


def alternating(texts: Sequence[str]) -> list[Turn]:
    """Turns of a dialog whose speakers alternate, the user first."""
    return [Turn(i % 2, str(text).strip()) for i, text in enumerate(texts)]


def odd_cut(num_turns: int, rng: random.Random) -> int:
    """wiki_dialog's and qrecc's cut: 2k+1, k uniform below min(len/2, 20) (the context ends on a user turn)."""
    return 2 * rng.randrange(min(num_turns // 2, MAX_CUT)) + 1


def uniform_cut(num_turns: int, rng: random.Random) -> int:
    """Taskmaster's cut: uniform in [1, min(len, 20))."""
    return rng.randrange(1, min(num_turns, MAX_CUT))


def wiki_dialog_turns(example: sources.Example) -> list[Turn]:
    """wiki_dialog's `utterances` without utterance 0."""
    return alternating(example["utterances"][1:])


def qrecc_turns(example: sources.Example) -> list[Turn]:
    """qrecc's `context` list (the question/answer turns before this one)."""
    return alternating(example["context"])


def qrecc_late_turn(example: sources.Example) -> bool:
    """Only qrecc turns after the sixth are used."""
    return int(example["turn_id"]) > 6


def taskmaster_turns(example: sources.Example) -> list[Turn]:
    """Taskmaster's `utterances[].text`, spoken by the user or the assistant as `speaker` says."""
    return [
        Turn(USER if str(u["speaker"]).lower() == "user" else ASSISTANT, str(u["text"]).strip())
        for u in example["utterances"]
    ]


@dataclasses.dataclass(frozen=True)
class Style:
    """How one example's dialog is written: header, marker style, speaker names and turn ending."""

    header: str
    markers: str
    names: tuple[str, str]
    ending: str

    @classmethod
    def draw(cls, rng: random.Random) -> Style:
        return cls(rng.choice(HEADERS), rng.choice(MARKER_STYLES), rng.choice(SPEAKER_NAMES), rng.choice(TURN_ENDINGS))

    def marker(self, speaker: int) -> str:
        """The marker that opens a turn of `speaker`."""
        if self.markers == "names":
            return f"{self.names[speaker]}:"
        return "-" if self.markers == "dashes" else "+"

    def line(self, turn: Turn) -> str:
        text = turn.text if turn.text.endswith(_PUNCTUATION) else turn.text + self.ending
        return f"{self.marker(turn.speaker)} {text}"


def example_fields(turns: Sequence[Turn], cut: int, style: Style) -> sources.Example:
    """Template fields of the dialog cut before turn `cut` (the target)."""
    context = "\n".join(style.line(turn) for turn in turns[:cut])
    dialog = f"{context}\n{style.marker(turns[cut].speaker)}"
    return {
        "dialog": f"{style.header}\n{dialog}" if style.header else dialog,
        "context": context,
        "previous_turn": turns[cut - 1].text,
        "next_turn": turns[cut].text,
    }


def seeded_rng(name: str, split: str, index: int) -> random.Random:
    """The generator of one example's cut and rendering choices."""
    return random.Random(zlib.crc32(f"{name}:{split}:{index}".encode()))


class DialogSource:
    """One (context, next turn) example per usable dialog of `source`, cut and rendered deterministically.

    Attributes:
      name: keys the per-example seeds.
      source: the raw records.
      turns: record -> turns; `cut`: (number of turns, rng) -> index of the turn to predict.
      keep: which records are used (all when None); dialogs with fewer than two turns are skipped.
    """

    def __init__(
        self,
        name: str,
        source: sources.Source,
        turns: Callable[[sources.Example], list[Turn]],
        cut: Callable[[int, random.Random], int],
        keep: Callable[[sources.Example], bool] | None = None,
    ):
        self.name, self.source, self.turns, self.cut, self.keep = name, source, turns, cut, keep
        self.splits = tuple(source.splits)
        self._counts: dict[str, int] = {}

    def examples(self, split: str) -> Iterator[sources.Example]:
        index = 0
        for record in self.source.examples(split):
            turns = self.turns(record) if self.keep is None or self.keep(record) else []
            if len(turns) < 2:
                continue
            rng = seeded_rng(self.name, split, index)
            cut = self.cut(len(turns), rng)
            yield example_fields(turns, cut, Style.draw(rng))
            index += 1

    def num_examples(self, split: str) -> int:
        """Counted by reading the split when records are filtered; otherwise the raw source's count (an upper
        bound if some dialogs are too short), which spares reading all of a large TFDS dataset."""
        if self.keep is None:
            return self.source.num_examples(split)
        if split not in self._counts:
            self._counts[split] = sum(1 for _ in self.examples(split))
        return self._counts[split]

    def location(self, split: str, index: int | None = None) -> str:
        where = sources.locate(self.source, split)
        return where if index is None else f"{where}, dialog example {index}"
