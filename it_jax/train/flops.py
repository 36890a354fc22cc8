"""Model FLOPs of a training step, for model FLOPs utilization (MFU).

A training step costs 3x the forward pass (the backward pass computes two matmuls per forward matmul);
rematerialization's recomputation is not counted (that would be hardware FLOPs, not model FLOPs).
The forward pass counts 2 FLOPs per multiply-add of every matmul:

- the dense projections: 2 x (the non-embedding matmul parameters) per token they apply to: attention
  query/key/value/output, the MLP, and the output logits (`d_model x vocab`, counted whether or not it is
  tied to the input embedding, as the matmul is computed either way). Embedding lookups, norms, relative
  position biases and softmaxes are not counted.
- the attention term: `QK^T` and `AV` as computed, i.e. the full `length x length` score matrix per head
  (2 matmuls x 2 FLOPs x key length x query dims per query token), including the masked half of causal
  attention and the padding of packed sequences.

Token counts are the padded batch shapes (`batch x length`), since padded positions are computed too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

TRAIN_FACTOR = 3


def _mlp_flops(d_model: int, d_ff: int, num_activations: int) -> int:
    """Per token: one `d_model x d_ff` input kernel per activation and the `d_ff x d_model` output."""
    return 2 * (num_activations + 1) * d_model * d_ff


def _attention_flops(query_dim: int, key_length: int) -> int:
    """Per query token: `QK^T` and `AV` over `key_length` keys for `query_dim = heads x head_dim`."""
    return 2 * 2 * key_length * query_dim


def encoder_decoder_forward_flops(config: Any, *, encoder_length: int, decoder_length: int) -> int:
    """Forward FLOPs of one (encoder_length, decoder_length) example of a T5-style encoder-decoder.

    `config` has `vocab_size, d_model, d_ff, d_kv, num_heads, num_encoder_layers, num_decoder_layers,
    mlp_activations` (`t5.T5Config`).
    """
    d, inner = config.d_model, config.num_heads * config.d_kv
    mlp = _mlp_flops(d, config.d_ff, len(config.mlp_activations))
    encoder_token = 2 * 4 * d * inner + mlp + _attention_flops(inner, encoder_length)
    decoder_token = (
        2 * 4 * d * inner  # self-attention q, k, v, out
        + 2 * 2 * d * inner  # cross-attention q, out
        + mlp
        + _attention_flops(inner, decoder_length)
        + _attention_flops(inner, encoder_length)
    )
    cross_kv_per_encoder_token = 2 * 2 * d * inner
    logits = 2 * d * config.vocab_size
    return encoder_length * (
        config.num_encoder_layers * encoder_token + config.num_decoder_layers * cross_kv_per_encoder_token
    ) + decoder_length * (config.num_decoder_layers * decoder_token + logits)


def decoder_only_forward_flops(config: Any, *, length: int) -> int:
    """Forward FLOPs of one `length`-token sequence of a decoder-only transformer (grouped-query attention).

    `config` has `vocab_size, d_model, d_ff, num_layers, num_heads, num_kv_heads, head_dim,
    mlp_activations` (`decoder.DecoderConfig`; `tie_embeddings` does not change the count).
    """
    d = config.d_model
    query_dim = config.num_heads * config.head_dim
    kv_dim = config.num_kv_heads * config.head_dim
    projections = 2 * d * (2 * query_dim + 2 * kv_dim)  # q and out; k and v
    layer = projections + _mlp_flops(d, config.d_ff, len(config.mlp_activations)) + _attention_flops(query_dim, length)
    return length * (config.num_layers * layer + 2 * d * config.vocab_size)


def train_flops_per_step(config: Any, batch_shapes: Mapping[str, tuple[int, ...]]) -> int:
    """Model FLOPs of one training step on a global batch of the given feature shapes.

    An encoder-decoder config (with `num_encoder_layers`) reads `encoder_input_tokens` and
    `decoder_target_tokens` shapes; a decoder-only one reads `decoder_target_tokens` (inputs and targets
    are one sequence there).
    """
    batch, decoder_length = batch_shapes["decoder_target_tokens"][:2]
    if hasattr(config, "num_encoder_layers"):
        encoder_length = batch_shapes["encoder_input_tokens"][1]
        forward = encoder_decoder_forward_flops(config, encoder_length=encoder_length, decoder_length=decoder_length)
    else:
        forward = decoder_only_forward_flops(config, length=decoder_length)
    return TRAIN_FACTOR * batch * forward
