"""Autoregressive decoding for every model family: greedy, sampling (temperature, top-k, top-p) and beam search.

A model supports decoding by three methods (T5 and the decoder-only model implement them):
  prefill(inputs, *, max_decode_length, input_lengths) -> (logits [B, V] of generated token 0, cache)
  decode_step(tokens [B], step, cache) -> (logits [B, V] of generated token step + 1, cache)
  logits_without_cache(inputs, generated, *, input_lengths) -> logits [B, Lg, V] (teacher forced)
Cache leaves are arrays [layers or 1, batch, ...], so beams are reordered by gathering axis 1. Without a
cache (`use_cache=False`) every step re-runs the model over the whole prefix: slower, same tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

METHODS = ("greedy", "sample", "beam")

# (tokens [B], step, cache, generated [B, L]) -> (logits [B, V], cache)
StepFn = Callable[[jax.Array, jax.Array, Any, jax.Array], tuple[jax.Array, Any]]


def filter_logits(logits: jax.Array, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> jax.Array:
    """Logits rescaled by `1 / temperature`, with tokens outside the top-k / the top-p nucleus set to -inf.

    `top_k=0` and `top_p=1.0` disable the respective filter. The nucleus is the smallest set of most
    likely tokens whose probability reaches `top_p` (always at least the most likely token).
    """
    logits = logits.astype(jnp.float32) / temperature
    if top_k:
        kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p < 1.0:
        sorted_logits = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(sorted_logits, axis=-1)
        before = jnp.cumsum(probs, axis=-1) - probs
        # The smallest logit kept: the last sorted token whose preceding mass is still below top_p.
        keep = before < top_p
        threshold = jnp.min(jnp.where(keep, sorted_logits, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < threshold, -jnp.inf, logits)
    return logits


def _stepper(model: nnx.Module, inputs: jax.Array, lengths: jax.Array | None, max_length: int, use_cache: bool):
    """(initial logits, initial cache, step function) for cached or uncached decoding."""
    if use_cache:
        logits, cache = model.prefill(inputs, max_decode_length=max_length, input_lengths=lengths)
        return logits, cache, lambda tokens, step, cache, generated: model.decode_step(tokens, step, cache)

    def step(tokens, step, cache, generated):
        logits = model.logits_without_cache(inputs, generated, input_lengths=lengths)
        return jnp.take(logits, jnp.minimum(step + 1, max_length - 1), axis=1), cache

    empty = jnp.zeros((inputs.shape[0], max_length), jnp.int32)
    return model.logits_without_cache(inputs, empty, input_lengths=lengths)[:, 0], (), step


def _sampling_decode(
    model, inputs, lengths, *, max_length: int, eos_id: int, choose: Callable, rng: jax.Array, use_cache: bool
) -> jax.Array:
    logits, cache, step_fn = _stepper(model, inputs, lengths, max_length, use_cache)
    batch = inputs.shape[0]
    generated = jnp.zeros((batch, max_length), jnp.int32)
    done = jnp.zeros((batch,), bool)

    def cond(carry):
        i, _, done, *_ = carry
        return (i < max_length) & ~done.all()

    def body(carry):
        i, generated, done, logits, cache = carry
        token = jnp.where(done, 0, choose(logits, jax.random.fold_in(rng, i)).astype(jnp.int32))
        generated = generated.at[:, i].set(token)
        logits, cache = step_fn(token, i, cache, generated)
        return i + 1, generated, done | (token == eos_id), logits, cache

    carry = (jnp.zeros((), jnp.int32), generated, done, logits, cache)
    return jax.lax.while_loop(cond, body, carry)[1]


def _length_penalty(length: jax.Array, alpha: float) -> jax.Array:
    """GNMT's length normalization ((5 + length) / 6) ** alpha; alpha 0 ranks by log-probability alone."""
    return ((5.0 + length) / 6.0) ** alpha


def _gather_beams(tree: Any, flat_indices: jax.Array) -> Any:
    """Reorders cache leaves [layers or 1, batch * beams, ...] along axis 1."""
    return jax.tree.map(lambda a: jnp.take(a, flat_indices, axis=1), tree)


def _beam_decode(
    model, inputs, lengths, *, max_length: int, eos_id: int, beam_size: int, length_penalty: float, use_cache: bool
) -> jax.Array:
    """Beam search. Hypotheses ending in EOS are finished when they rank within the top `beam_size`
    candidates of their step (so one beam is exactly greedy); the search stops for an example once its
    `beam_size` finished hypotheses cannot be beaten by any live one."""
    batch, k = inputs.shape[0], beam_size
    if use_cache:
        # Prefill once per example, then copy its logits and cache to each of its beams.
        logits, cache, step_fn = _stepper(model, inputs, lengths, max_length, use_cache=True)
        logits = jnp.repeat(logits, k, axis=0)
        cache = _gather_beams(cache, jnp.repeat(jnp.arange(batch), k))
    else:
        inputs = jnp.repeat(inputs, k, axis=0)
        lengths = None if lengths is None else jnp.repeat(lengths, k, axis=0)
        logits, cache, step_fn = _stepper(model, inputs, lengths, max_length, use_cache=False)
    vocab = logits.shape[-1]
    alive_seqs = jnp.zeros((batch, k, max_length), jnp.int32)
    alive_logp = jnp.tile(jnp.asarray([0.0] + [-jnp.inf] * (k - 1)), (batch, 1))
    finished_seqs = jnp.zeros((batch, k, max_length), jnp.int32)
    finished_scores = jnp.full((batch, k), -jnp.inf)
    max_bound = _length_penalty(jnp.float32(max_length), length_penalty)

    def done(alive_logp, finished_scores):
        best_alive = alive_logp.max(axis=1) / max_bound
        return finished_scores.min(axis=1) >= best_alive

    def cond(carry):
        i, _, alive_logp, _, finished_scores, *_ = carry
        return (i < max_length) & ~done(alive_logp, finished_scores).all()

    def body(carry):
        i, alive_seqs, alive_logp, finished_seqs, finished_scores, logits, cache = carry
        log_probs = jax.nn.log_softmax(logits.astype(jnp.float32)).reshape(batch, k, vocab)
        candidates = (alive_logp[..., None] + log_probs).reshape(batch, k * vocab)
        scores, flat = jax.lax.top_k(candidates, 2 * k)
        parent, token = flat // vocab, (flat % vocab).astype(jnp.int32)
        seqs = jnp.take_along_axis(alive_seqs, parent[..., None], axis=1).at[:, :, i].set(token)
        ends = (token == eos_id) | (i == max_length - 1)
        # Finished: candidates that end here and rank within the top k of this step.
        finishing = ends & (jnp.arange(2 * k) < k)[None]
        new_scores = jnp.where(finishing, scores / _length_penalty(i + 1.0, length_penalty), -jnp.inf)
        pool_scores = jnp.concatenate([finished_scores, new_scores], axis=1)
        pool_seqs = jnp.concatenate([finished_seqs, seqs], axis=1)
        finished_scores, best = jax.lax.top_k(pool_scores, k)
        finished_seqs = jnp.take_along_axis(pool_seqs, best[..., None], axis=1)
        # Alive: the best k candidates that do not end here.
        alive_logp, keep = jax.lax.top_k(jnp.where(ends, -jnp.inf, scores), k)
        alive_seqs = jnp.take_along_axis(seqs, keep[..., None], axis=1)
        tokens = jnp.take_along_axis(token, keep, axis=1).reshape(-1)
        flat_parents = (jnp.arange(batch)[:, None] * k + jnp.take_along_axis(parent, keep, axis=1)).reshape(-1)
        cache = _gather_beams(cache, flat_parents)
        logits, cache = step_fn(tokens, i, cache, alive_seqs.reshape(batch * k, max_length))
        return i + 1, alive_seqs, alive_logp, finished_seqs, finished_scores, logits, cache

    carry = (jnp.zeros((), jnp.int32), alive_seqs, alive_logp, finished_seqs, finished_scores, logits, cache)
    _, alive_seqs, alive_logp, finished_seqs, finished_scores, *_ = jax.lax.while_loop(cond, body, carry)
    has_finished = jnp.isfinite(finished_scores[:, 0])
    return jnp.where(has_finished[:, None], finished_seqs[:, 0], alive_seqs[:, 0])


def generate(
    model: nnx.Module,
    inputs: jax.Array,
    *,
    max_decode_length: int,
    method: str = "greedy",
    eos_id: int = 1,
    input_lengths: jax.Array | None = None,
    rng: jax.Array | None = None,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    beam_size: int = 4,
    length_penalty: float = 0.6,
    use_cache: bool = True,
) -> jax.Array:
    """Generates up to `max_decode_length` tokens per example, stopping each at its EOS.

    Args:
      inputs: encoder input ids (encoder-decoder, 0-padded) or prompt ids (decoder-only), [B, L].
      input_lengths: decoder-only prompt lengths [B] (prompts right-padded); None means all of length L.
      method: "greedy", "sample" (temperature, top_k, top_p, with `rng`; temperature 0 is greedy) or "beam" (beam_size,
        length_penalty alpha: scores are log-probabilities / ((5 + length) / 6) ** alpha).

    Returns:
      int32 [B, max_decode_length] generated ids (the prompt excluded), 0 after each example's EOS.
    """
    if method not in METHODS:
        raise ValueError(f"unknown decoding method {method!r}; choose one of {METHODS}")
    common = dict(max_length=max_decode_length, eos_id=eos_id, use_cache=use_cache)
    if method == "beam":
        return _beam_decode(
            model, inputs, input_lengths, beam_size=beam_size, length_penalty=length_penalty, **common
        )
    if method == "greedy" or temperature == 0.0:
        choose = lambda logits, key: jnp.argmax(logits, axis=-1)  # noqa: E731
        rng = jax.random.key(0)
    else:
        if rng is None:
            raise ValueError("sampling needs an `rng` key")

        def choose(logits, key):
            filtered = filter_logits(logits, temperature=temperature, top_k=top_k, top_p=top_p)
            return jax.random.categorical(key, filtered, axis=-1)

    return _sampling_decode(model, inputs, input_lengths, choose=choose, rng=rng, **common)
