"""Run directories for the export and chat tests, built without training: a BPE tokenizer trained here (no
downloads), a tiny Llama-style decoder with random parameters saved as step 1, and `run.json` with a chat format.
`tests/` is on the tests' import path (pytest.ini), so `import chat_runs` works."""

import json
import pathlib

import numpy as np
import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from it_jax.convert import tree
from it_jax.data import layout as layout_lib
from it_jax.data import vocab
from it_jax.models import decoder
from it_jax.run_context import RunContext
from it_jax.run_dir import RunDirectory
from it_jax.train import checkpoints as checkpoints_lib
from it_jax.train.state import TrainState

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|begin_of_text|>", "<|start_header_id|>",
    "<|end_header_id|>", "<|eot_id|>",
]
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello, how are you today?", "I am fine, thank you.",
    "What is the capital of France? Paris is the capital of France.", "system user assistant",
    "Below is an instruction that describes a task. ### Response: ### Instruction:",
] * 20
VOCAB_SIZE = 320
CONFIG = decoder.DecoderConfig(
    vocab_size=VOCAB_SIZE, d_model=32, d_ff=64, num_layers=2, num_heads=4, num_kv_heads=2, head_dim=8
)


def write_bpe_tokenizer(directory: pathlib.Path, **tokenizer_config) -> pathlib.Path:
    """A byte-level BPE tokenizer directory (tokenizer.json with `SPECIAL_TOKENS`, tokenizer_config.json with
    `tokenizer_config`: EOS `<|endoftext|>` and BOS `<|begin_of_text|>` unless given)."""
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer = tokenizers.Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE - 8, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {"eos_token": "<|endoftext|>", "bos_token": "<|begin_of_text|>", **tokenizer_config}
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    return directory


def random_params(config: decoder.DecoderConfig, seed: int = 0) -> dict:
    """Random numpy parameters of the config's shapes (norm scales near 1)."""
    rng = np.random.default_rng(seed)
    flat = {
        path: (rng.normal(0.0, 0.5, leaf.shape) + (1.0 if path[-1] == "scale" else 0.0)).astype(leaf.dtype)
        for path, leaf in tree.expected_params(config).items()
    }
    return tree.unflatten(flat)


def make_run(run_dir: pathlib.Path, vocabulary, *, chat_format: str | None, config=CONFIG, seed: int = 0,
             layout: layout_lib.PromptLayout | None = None) -> dict:
    """A run directory with `run.json` (the chat format recorded) and a checkpoint at step 1; returns its params."""
    layout = layout or layout_lib.default_layout("decoder_only", vocabulary)
    context = RunContext(
        directory=RunDirectory(run_dir), model_config=config, vocabulary=vocabulary, layout=layout,
        task_feature_lengths={"inputs": 64, "targets": 64}, chat_format=chat_format,
    )
    context.save(config_gin="")
    params = random_params(config, seed)
    save_step_1(context, params)
    assert vocab.describe(vocabulary) == context.metadata()["vocabulary_spec"]
    return params


def save_step_1(context: RunContext, params: dict) -> None:
    """Saves `params` as the run's checkpoint at step 1 (with its metadata, as training saves)."""
    state = TrainState(step=np.asarray(1, np.int32), params=params, opt_state={"count": np.zeros((), np.int32)})
    checkpointer = checkpoints_lib.Checkpointer(context.directory.checkpoints)
    try:
        checkpointer.save(1, state, context.metadata(), data_position=1, force=True)
    finally:
        checkpointer.close()
