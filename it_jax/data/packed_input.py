"""An index-based, deterministic, pure-NumPy training input: batch b of a run is a pure function of (seed, b).

Every task of the mixture is rendered and tokenized once into memory (flat int32 tokens plus offsets,
trimmed and EOS-terminated exactly as seqio's `tokenize` + `append_eos_after_trim` do). Global batch b is
then drawn from its own counter-based generator `np.random.default_rng([seed, b])`:

- examples are drawn i.i.d.: the task by the mixture's rates (normalized), the example uniformly within the
  task, *with replacement* (there are no epochs: a task's examples are not visited once each in turn);
- packed rows are filled greedily, as seqio packs: each drawn example joins the current row if it fits
  (encoder-decoder: its inputs fit the encoder row and its targets the decoder row; decoder layouts: its
  whole sequence fits), else it starts the next row. Only the one example that would open the row after
  the last is dropped, so packing barely biases task shares. (Dropping every example that does not fit
  its row, rows drawn independently, skewed shares by up to 28% towards short tasks on `synthetic_all`.)
  Unpacked: one example per row, trimmed and padded.

Rows are filled in order, so host h of n computes the (cheap) example ids of rows `[0, end of its rows)`
and the features of its own rows only: the global batches depend neither on the number of hosts nor on the
global batch size, and resuming at batch b costs nothing.
The features equal those of seqio's `EncDecFeatureConverter` and of `pipeline.DecoderFeatureConverter`.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import seqio

from it_jax.data.layout import PromptLayout
from it_jax.data.tokenized import TokenizedTask, ragged, tokenize_task

_CHUNK = 64  # examples drawn at a time while packing rows
# Recorded with checkpoints: a resumed run must read the same stream (see `it_jax.train.resume`).
STREAM_VERSION = "packed_input/1"


# ----------------------------------------------------------------------------------------------- the store
@dataclasses.dataclass(frozen=True)
class ExampleStore:
    """All tasks' examples in one flat array per stream, layout applied.

    Encoder-decoder: streams `inputs` and `targets` (what the encoder and decoder rows hold).
    Decoder layouts: one stream `sequence` = prompt + targets; its row footprint is `len(sequence) - 1`,
    `prompt_width[i]` is the prompt's length and `token_weights` (aligned with the flat sequence tokens) the
    loss weight of predicting each token: 1 on targets, a chat task's own weights on conversations.
    """

    streams: dict[str, tuple[np.ndarray, np.ndarray]]
    task_base: np.ndarray  # first global example id of each task (+ total at the end)
    cumulative_shares: np.ndarray  # the tasks' normalized rates, cumulated
    task_names: tuple[str, ...]
    prompt_width: np.ndarray | None = None
    token_weights: np.ndarray | None = None

    def footprint(self, stream: str, ids: np.ndarray) -> np.ndarray:
        """The positions examples `ids` take in a row of `stream`."""
        offsets = self.streams[stream][1]
        width = offsets[ids + 1] - offsets[ids]
        return width - 1 if stream == "sequence" else width


def _decoder_sequences(
    tasks: Sequence[TokenizedTask], layout: PromptLayout
) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, np.ndarray]:
    """Each example's `[start] inputs [EOS] targets` sequence (ragged), its prompt width, and the loss weight of
    each sequence token (1 from the prompt's end on; a conversation's own weights, after its start token).

    A conversation that opens with the start token itself (a template writing the BOS) gets no second one.
    """
    start = [] if layout.start_id is None else [layout.start_id]
    sequences, widths, explicit = [], [], {}
    for task in tasks:
        (fi, oi), (ft, ot) = task.inputs, task.targets
        for i in range(task.size):
            targets = ft[ot[i] : ot[i + 1]]
            if task.weights is None:
                prompt = fi[oi[i] : oi[i + 1]] if layout.inputs_eos else fi[oi[i] : oi[i + 1] - 1]
                head = np.concatenate([np.asarray(start, np.int32), prompt])
            else:
                head = np.asarray(layout.conversation_start(targets), np.int32)
                flat_weights, weight_offsets = task.weights
                weights = flat_weights[weight_offsets[i] : weight_offsets[i + 1]]
                explicit[len(sequences)] = np.concatenate([np.zeros(len(head), np.uint8), weights])
            sequences.append(np.concatenate([head, targets]))
            widths.append(len(head))
    flat, offsets = ragged(sequences)
    widths = np.asarray(widths, np.int32)
    lengths = np.diff(offsets)
    positions = np.arange(len(flat)) - np.repeat(offsets[:-1], lengths)
    token_weights = (positions >= np.repeat(widths, lengths)).astype(np.uint8)
    for example, weights in explicit.items():
        token_weights[offsets[example] : offsets[example + 1]] = weights
    return (flat, offsets), widths, token_weights


def build_store(tasks: Sequence[TokenizedTask], rates: Sequence[float], layout: PromptLayout) -> ExampleStore:
    """Concatenates tokenized tasks (sampled at `rates`) into one store laid out for `layout`."""
    sizes = np.asarray([t.size for t in tasks], np.int64)
    task_base = np.concatenate([[0], np.cumsum(sizes)])
    shares = np.asarray(rates, np.float64) / np.sum(rates)
    names = tuple(t.name for t in tasks)
    if layout.decoder_only:
        sequence, widths, token_weights = _decoder_sequences(tasks, layout)
        return ExampleStore({"sequence": sequence}, task_base, np.cumsum(shares), names, widths, token_weights)
    if any(t.weights is not None for t in tasks):
        raise ValueError("weighted conversations need a decoder layout; encoder-decoder reads seqio's chat view")

    def joined(key: str) -> tuple[np.ndarray, np.ndarray]:
        parts = [getattr(t, key) for t in tasks]
        flat = np.concatenate([p[0] for p in parts])
        starts = np.cumsum([0] + [len(p[0]) for p in parts[:-1]])
        offsets = np.concatenate([p[1][:-1] + s for p, s in zip(parts, starts)] + [[len(flat)]])
        return flat, offsets

    return ExampleStore(
        {"inputs": joined("inputs"), "targets": joined("targets")},
        task_base,
        np.cumsum(shares),
        names,
    )


def mixture_tasks(mixture_or_task: str) -> tuple[list[str], list[float]]:
    """The tasks of a mixture (or the one task) and their mixing rates."""
    provider = seqio.get_mixture_or_task(mixture_or_task)
    if isinstance(provider, seqio.Mixture):
        tasks = seqio.get_subtasks(provider)
        return [t.name for t in tasks], [float(provider.get_rate(t)) for t in tasks]
    return [provider.name], [1.0]


# ----------------------------------------------------------------------------------------------- sampling
def _draw(store: ExampleStore, u_task: np.ndarray, u_example: np.ndarray) -> np.ndarray:
    """Global example ids from uniforms: a task by the mixture's shares, then an example uniformly within it."""
    shares = store.cumulative_shares
    task = np.minimum(
        np.searchsorted(shares, u_task * shares[-1], side="right"),
        len(store.task_names) - 1,
    )
    sizes = store.task_base[task + 1] - store.task_base[task]
    return store.task_base[task] + np.minimum((u_example * sizes).astype(np.int64), sizes - 1)


def _pack_rows(
    store: ExampleStore,
    lengths: Mapping[str, int],
    rng: np.random.Generator,
    count: int,
) -> list[list[int]]:
    """The first `count` rows of greedily packed draws: each drawn example joins the current row if it fits
    (in every stream), else it starts the next row; only the example that would start row `count` is lost."""
    limits = [lengths[stream] for stream in store.streams]
    rows: list[list[int]] = []
    current: list[int] = []
    used = [0] * len(limits)
    while True:
        ids = _draw(store, rng.random(_CHUNK), rng.random(_CHUNK))
        sizes = list(zip(*(store.footprint(stream, ids).tolist() for stream in store.streams)))
        for example, size in zip(ids.tolist(), sizes):
            if current and any(u + n > limit for u, n, limit in zip(used, size, limits)):
                rows.append(current)
                if len(rows) == count:
                    return rows
                current, used = [], [0] * len(limits)
            current.append(example)  # a row's first example always fits once trimmed
            used = [u + n for u, n in zip(used, size)]


def batch_examples(
    store: ExampleStore,
    lengths: Mapping[str, int],
    *,
    seed: int,
    batch: int,
    rows: range,
    pack: bool,
) -> list[np.ndarray]:
    """The global example ids of each of `rows` of global batch `batch` (one per row when unpacked).

    Draws come from `default_rng([seed, batch])`; packed rows are filled in order, so a host computes the
    packing of rows `[0, rows.stop)` (cheap: ids only) and keeps its own. Neither the number of hosts nor
    the global batch size changes a row.
    """
    rng = np.random.default_rng([seed, batch])
    if not pack:
        uniforms = rng.random((rows.stop, 2))[rows.start :]
        return list(_draw(store, uniforms[:, 0], uniforms[:, 1])[:, None])
    packed = _pack_rows(store, lengths, rng, rows.stop)[rows.start :]
    return [np.asarray(row, np.int64) for row in packed]


# ----------------------------------------------------------------------------------------------- features
@dataclasses.dataclass
class _Placed:
    """Where each token of one stream's examples goes in the batch: row, column, source index, position."""

    rows: np.ndarray
    cols: np.ndarray
    source: np.ndarray
    positions: np.ndarray
    segments: np.ndarray
    examples: np.ndarray  # the global example id of each token


def _place(store: ExampleStore, stream: str, rows: list[np.ndarray], width: int) -> _Placed:
    """Lays each row's examples of `stream` side by side (trimmed to `width`), vectorized over the batch."""
    ids = np.concatenate(rows)
    row_of = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    segment = np.concatenate([np.arange(1, len(r) + 1) for r in rows])
    size = store.footprint(stream, ids)
    start = store.streams[stream][1][ids]
    first = np.concatenate([[0], np.cumsum(size)[:-1]])  # each example's first token, batch-wide
    row_first = first[np.concatenate([[0], np.cumsum([len(r) for r in rows])[:-1]])]
    column0 = first - np.repeat(row_first, [len(r) for r in rows])  # each example's first column in its row
    total = int(size.sum())
    positions = np.arange(total) - np.repeat(first, size)
    placed = _Placed(
        np.repeat(row_of, size),
        np.repeat(column0, size) + positions,
        np.repeat(start, size) + positions,
        positions,
        np.repeat(segment, size),
        np.repeat(ids, size),
    )
    keep = placed.cols < width
    return _Placed(*(getattr(placed, f.name)[keep] for f in dataclasses.fields(_Placed)))


def _scatter(shape: tuple[int, int], placed: _Placed, values: np.ndarray) -> np.ndarray:
    out = np.zeros(shape, np.int32)
    out[placed.rows, placed.cols] = values
    return out


def encdec_features(store: ExampleStore, rows: list[np.ndarray], lengths: Mapping[str, int], pack: bool) -> dict:
    """`seqio.EncDecFeatureConverter`'s features of rows of examples."""
    n = len(rows)
    enc = _place(store, "inputs", rows, lengths["inputs"])
    dec = _place(store, "targets", rows, lengths["targets"])
    flat_in, flat_tg = store.streams["inputs"][0], store.streams["targets"][0]
    targets = flat_tg[dec.source]
    target_tokens = _scatter((n, lengths["targets"]), dec, targets)
    if pack:  # shifted right within each segment, 0 at its start
        shifted = _scatter(
            (n, lengths["targets"]),
            dec,
            np.where(dec.positions > 0, flat_tg[dec.source - 1], 0),
        )
    else:  # seqio shifts the whole row: the EOS reappears after the targets
        shifted = np.pad(target_tokens[:, :-1], ((0, 0), (1, 0)))
    features = {
        "encoder_input_tokens": _scatter((n, lengths["inputs"]), enc, flat_in[enc.source]),
        "decoder_target_tokens": target_tokens,
        "decoder_input_tokens": shifted,
        "decoder_loss_weights": _scatter((n, lengths["targets"]), dec, (targets != 0).astype(np.int32)),
    }
    if pack:
        features["encoder_segment_ids"] = _scatter((n, lengths["inputs"]), enc, enc.segments)
        features["encoder_positions"] = _scatter((n, lengths["inputs"]), enc, enc.positions)
        features["decoder_segment_ids"] = _scatter((n, lengths["targets"]), dec, dec.segments)
        features["decoder_positions"] = _scatter((n, lengths["targets"]), dec, dec.positions)
    return features


def decoder_features(store: ExampleStore, rows: list[np.ndarray], length: int, pack: bool) -> dict:
    """`pipeline.DecoderFeatureConverter`'s features of rows of examples (sequence[1:] predicted)."""
    n = len(rows)
    seq = _place(store, "sequence", rows, length)
    flat = store.streams["sequence"][0]
    width = store.prompt_width[seq.examples]
    features = {
        "decoder_target_tokens": _scatter((n, length), seq, flat[seq.source + 1]),
        "decoder_input_tokens": _scatter((n, length), seq, flat[seq.source]),
        "decoder_loss_weights": _scatter((n, length), seq, store.token_weights[seq.source + 1].astype(np.int32)),
        "decoder_causal_attention": _scatter((n, length), seq, (seq.positions < width).astype(np.int32)),
    }
    if pack:
        features["decoder_segment_ids"] = _scatter((n, length), seq, seq.segments)
        features["decoder_positions"] = _scatter((n, length), seq, seq.positions)
    return features


# ----------------------------------------------------------------------------------------------- the stream
class PackedInput:
    """A mixture's tokenized examples and the settings that turn a batch number into this host's batch."""

    def __init__(
        self,
        mixture_or_task: str,
        *,
        task_feature_lengths: Mapping[str, int],
        layout: PromptLayout,
        vocabulary: seqio.Vocabulary,
        split: str = "train",
        pack: bool = True,
        seed: int = 0,
    ):
        names, rates = mixture_tasks(mixture_or_task)
        lengths = dict(task_feature_lengths)
        self.layout, self.pack, self.seed = layout, pack, seed
        max_tokens = None  # a conversation's room in a decoder row, after the start token
        if layout.decoder_only:
            self.length = lengths["inputs"] + lengths["targets"] + (layout.start_id is not None) - 1
            self.row_lengths = {"sequence": self.length}
            max_tokens = self.length + 1 - (layout.start_id is not None)
        else:
            self.lengths = lengths
            self.row_lengths = lengths
        self.tasks = [tokenize_task(name, split, vocabulary, lengths, max_tokens=max_tokens) for name in names]
        self.store = build_store(self.tasks, rates, layout)

    def example(self, example_id: int) -> tuple[str, np.ndarray, np.ndarray]:
        """Task name, tokenized inputs and targets of a global example id."""
        task = int(np.searchsorted(self.store.task_base, example_id, side="right")) - 1
        i = example_id - self.store.task_base[task]
        (fi, oi), (ft, ot) = self.tasks[task].inputs, self.tasks[task].targets
        return self.tasks[task].name, fi[oi[i] : oi[i + 1]], ft[ot[i] : ot[i + 1]]

    def rows(self, batch: int, rows: range) -> list[np.ndarray]:
        """The global example ids of each of `rows` of global batch `batch`."""
        rows = range(rows.start, rows.stop) if isinstance(rows, range) else range(rows[0], rows[-1] + 1)
        return batch_examples(
            self.store,
            self.row_lengths,
            seed=self.seed,
            batch=batch,
            rows=rows,
            pack=self.pack,
        )

    def batch(self, batch: int, rows: range) -> dict[str, np.ndarray]:
        """Model features of `rows` of global batch `batch` (a pure function of seed, batch and rows)."""
        examples = self.rows(batch, rows)
        if self.layout.decoder_only:
            return decoder_features(self.store, examples, self.length, self.pack)
        return encdec_features(self.store, examples, self.lengths, self.pack)


def _prefetched(batches: Iterator[dict[str, np.ndarray]], depth: int) -> Iterator[dict[str, np.ndarray]]:
    """`batches`, prepared `depth` ahead on a daemon thread."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for item in batches:
                while not stop.is_set():
                    try:
                        buffer.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except Exception as error:  # noqa: BLE001 (re-raised in the reader)
            buffer.put((None, error))

    threading.Thread(target=work, daemon=True, name="packed_input_prefetch").start()
    try:
        while True:
            item, error = buffer.get()
            if error is not None:
                raise error
            yield item
    finally:
        stop.set()


def packed_batches(
    mixture_or_task: str,
    *,
    task_feature_lengths: Mapping[str, int],
    layout: PromptLayout,
    vocabulary: seqio.Vocabulary,
    batch_size: int,
    split: str = "train",
    pack: bool = True,
    seed: int = 0,
    shard_index: int = 0,
    num_shards: int = 1,
    skip_batches: int = 0,
    prefetch: int = 0,
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this host's `batch_size // num_shards` rows of each global batch, forever.

    Batch k of the iterator is global batch `skip_batches + k`, and host `shard_index` holds its rows
    `[shard_index * batch_size // num_shards, ...)`: resuming costs nothing, and the global batches do not
    depend on the number of hosts. `prefetch > 0` prepares that many batches ahead on a thread.
    """
    if batch_size % num_shards:
        raise ValueError(f"global batch size {batch_size} is not divisible by the {num_shards} input shards")
    source = PackedInput(
        mixture_or_task,
        task_feature_lengths=task_feature_lengths,
        layout=layout,
        vocabulary=vocabulary,
        split=split,
        pack=pack,
        seed=seed,
    )
    per_host = batch_size // num_shards
    rows = range(shard_index * per_host, (shard_index + 1) * per_host)

    def generate() -> Iterator[dict[str, np.ndarray]]:
        b = skip_batches
        while True:
            yield source.batch(b, rows)
            b += 1

    return _prefetched(generate(), prefetch) if prefetch > 0 else generate()
