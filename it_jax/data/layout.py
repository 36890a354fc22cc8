"""Prompt layouts: how a task's tokenized `inputs` and `targets` become one model's tokens.

One `PromptLayout` per model, recorded with it (run metadata, `model.json`), is read by training (the
feature converter below), evaluation (scoring, rank classification, generation) and `scripts/infer.py`, so
a model is always asked in the format it was trained on. Task features arrive tokenized by seqio with EOS
appended to both `inputs` and `targets`.

- `encoder_decoder` (T5): the encoder reads inputs + EOS; the decoder starts from the pad id 0 and predicts
  targets + EOS.
- `prefix_lm` (seqio's prefix LM): one sequence `[start] inputs EOS targets EOS`; the prompt
  `[start] inputs EOS` is attended bidirectionally, targets + EOS causally and carry the loss.
- `decoder_only` (a causal LM, e.g. one imported from Hugging Face): `[start] inputs targets EOS`, inputs and
  targets back to back, all attention causal, the loss on targets + EOS. `start` is the vocabulary's BOS
  (Llama) or nothing (Qwen, whose tokenizer has no BOS).

For decoder layouts the prompt is everything before the targets; the model reads the prompt and then each
target token in turn, and the log-likelihood of the targets given the prompt is what training minimizes
and evaluation ranks by.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import seqio
import tensorflow as tf

ARCHITECTURES = ("encoder_decoder", "prefix_lm", "decoder_only")


@dataclasses.dataclass(frozen=True)
class PromptLayout:
    """How inputs and targets become model tokens (see the module docstring).

    Attributes:
      architecture: "encoder_decoder", "prefix_lm" or "decoder_only".
      start_id: decoder layouts: the token opening every sequence (0 for seqio's prefix LM, the BOS id of a
        pretrained causal LM), or None for none.
      inputs_eos: decoder layouts: keep the EOS that ends the inputs (a separator before the targets).
    """

    architecture: str
    start_id: int | None = 0
    inputs_eos: bool = True

    def __post_init__(self):
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {self.architecture!r}; known: {ARCHITECTURES}")

    @property
    def decoder_only(self) -> bool:
        """True for the layouts of decoder-only models (one sequence of prompt then targets)."""
        return self.architecture != "encoder_decoder"

    def prompt(self, input_ids: Sequence[int]) -> list[int]:
        """The tokens the model conditions on, from seqio-tokenized inputs (EOS included)."""
        ids = list(input_ids)
        if not self.decoder_only:
            return ids
        if not self.inputs_eos and ids:
            ids = ids[:-1]
        start = [] if self.start_id is None else [self.start_id]
        prompt = start + ids
        if not prompt:
            raise ValueError("empty prompt: the layout has no start token and the inputs are empty")
        return prompt

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PromptLayout:
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown prompt layout fields {unknown}")
        return cls(**data)


ENCODER_DECODER = PromptLayout("encoder_decoder")
PREFIX_LM = PromptLayout("prefix_lm", start_id=0, inputs_eos=True)


def causal_lm(bos_id: int | None) -> PromptLayout:
    """A causal LM's layout: BOS (if any), then inputs and targets back to back."""
    return PromptLayout("decoder_only", start_id=bos_id, inputs_eos=False)


def default_layout(architecture: str, vocabulary: seqio.Vocabulary) -> PromptLayout:
    """The layout of a model trained here: T5's, seqio's prefix LM, or a causal LM opened by the vocabulary's
    BOS (the pad id 0 when it has none, as seqio's decoders start)."""
    if architecture == "encoder_decoder":
        return ENCODER_DECODER
    if architecture == "prefix_lm":
        return PREFIX_LM
    bos = vocabulary.bos_id
    return causal_lm(bos if bos is not None and bos >= 0 else 0)


class DecoderFeatureConverter(seqio.FeatureConverter):
    """Task features -> (prefix-)LM model features, following a decoder `PromptLayout`.

    Each example becomes `sequence = prompt + targets`; the model reads `sequence[:-1]`
    (`decoder_input_tokens`) and predicts `sequence[1:]` (`decoder_target_tokens`), with loss weights on the
    targets and `decoder_causal_attention` marking the prompt. With `start_id=0, inputs_eos=True` this is
    exactly `seqio.PrefixLMFeatureConverter`'s output.
    """

    TASK_FEATURES = {
        "inputs": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "targets": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    MODEL_FEATURES = {
        "decoder_target_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_input_tokens": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_loss_weights": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
        "decoder_causal_attention": seqio.FeatureConverter.FeatureSpec(dtype=tf.int32),
    }
    PACKING_FEATURE_DTYPES = {"decoder_segment_ids": tf.int32, "decoder_positions": tf.int32}

    def __init__(self, layout: PromptLayout, **kwargs):
        if not layout.decoder_only:
            raise ValueError(f"{layout.architecture} is not a decoder layout")
        self.layout = layout
        super().__init__(**kwargs)

    def _sequence(self, features: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """One example as packable features (no zeros: seqio's packing counts nonzero ids): the predicted
        tokens `sequence[1:]`, the prompt length and the sequence's first token (plus one), tiled."""
        inputs, targets = features["inputs"], features["targets"]
        if not self.layout.inputs_eos:
            inputs = inputs[:-1]
        if self.layout.start_id is not None:
            inputs = tf.concat([tf.constant([self.layout.start_id], tf.int32), inputs], axis=0)
        sequence = tf.concat([inputs, targets], axis=0)
        width = tf.size(sequence) - 1
        return {
            "decoder_target_tokens": sequence[1:],
            "prompt_width": tf.fill([width], tf.size(inputs)),
            "first_token": tf.fill([width], sequence[0] + 1),
        }

    def _model_features(self, packed: Mapping[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        targets = packed["decoder_target_tokens"]
        if self.pack:
            segments, positions = packed["decoder_target_tokens_segment_ids"], packed["decoder_target_tokens_positions"]
        else:
            segments, positions = tf.cast(targets != 0, tf.int32), tf.range(tf.size(targets))
        # Each segment reads its first token, then every token it predicts but the last.
        previous = tf.concat([tf.zeros([1], tf.int32), targets[:-1]], axis=0)
        inputs = tf.where(positions == 0, packed["first_token"] - 1, previous) * tf.cast(segments > 0, tf.int32)
        prompt = positions < packed["prompt_width"]
        features = {
            "decoder_target_tokens": targets,
            "decoder_input_tokens": inputs,
            "decoder_loss_weights": tf.cast(~prompt | (positions == packed["prompt_width"] - 1), tf.int32)
            * tf.cast(segments > 0, tf.int32),
            "decoder_causal_attention": tf.cast(prompt & (segments > 0), tf.int32),
        }
        if self.pack:
            features.update(decoder_segment_ids=segments, decoder_positions=positions)
        return features

    def _convert_features(self, ds: tf.data.Dataset, task_feature_lengths: Mapping[str, int]) -> tf.data.Dataset:
        ds = ds.map(self._sequence, num_parallel_calls=tf.data.AUTOTUNE)
        length = self.get_model_feature_lengths(task_feature_lengths)["decoder_target_tokens"]
        ds = self._pack_or_pad(ds, {"decoder_target_tokens": length, "prompt_width": length, "first_token": length})
        return ds.map(self._model_features, num_parallel_calls=tf.data.AUTOTUNE)

    def get_model_feature_lengths(self, task_feature_lengths: Mapping[str, int]) -> Mapping[str, int]:
        # The start token, inputs and targets, less the one position the shift drops.
        length = task_feature_lengths["inputs"] + task_feature_lengths["targets"]
        length += (self.layout.start_id is not None) - 1
        names = [*self.MODEL_FEATURES, *(self.PACKING_FEATURE_DTYPES if self.pack else ())]
        return {name: length for name in names}


def feature_converter(layout: PromptLayout, *, pack: bool) -> seqio.FeatureConverter:
    """The feature converter producing the features a model of `layout` trains on."""
    if layout.decoder_only:
        return DecoderFeatureConverter(layout, pack=pack)
    return seqio.EncDecFeatureConverter(pack=pack)
