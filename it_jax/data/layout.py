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
and evaluation ranks by. The feature converter that applies a layout to training data is
`it_jax.data.pipeline.feature_converter`; this module imports no TensorFlow, so checkpoint conversion can
record layouts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import seqio

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

    def conversation_start(self, ids: Sequence[int]) -> list[int]:
        """What opens a rendered conversation's tokens `ids` in a decoder row: the start token, unless there is
        none or the conversation already opens with it (a chat template that writes the BOS itself). Chat
        training and chat inference both call this, so a conversation reaches the model as it was trained."""
        if not self.decoder_only:
            raise ValueError("conversations are whole decoder sequences; an encoder-decoder layout has none")
        if self.start_id is None or (len(ids) and int(ids[0]) == self.start_id):
            return []
        return [self.start_id]

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
