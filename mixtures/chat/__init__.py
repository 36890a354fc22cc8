"""Chat and instruction data for supervised fine-tuning of decoders: the offline sets of ../shared/data.

`register(context)` registers, rendered with the run's chat format (`run_config.chat_format`):

- `chat_alpaca`: Stanford Alpaca (the first 2,000 records), single-turn instruction, optional input, output;
- `chat_self_instruct`: the 175 Self-Instruct seed tasks to train on, its 252 user-oriented tasks to validate on;
- `chat_hh_rlhf`: Anthropic HH-RLHF helpful conversations (the chosen side), multi-turn `messages`;
- `chat_oasst1`: OpenAssistant oasst1 English top-1 conversations (validation only: a held-out evaluation);
- `chat_sft`: alpaca, self-instruct and hh_rlhf mixed examples-proportionally at the run's cap.

Alpaca and HH-RLHF are published with a train split only: every 20th conversation is held out as their
validation split (`sources.HeldOut`). The files are read from the run's data directory (`run_config.data_dir`,
`--data_dir`: the `tfds_jsonl/` folder of ../shared/data), as `<name>/<split>.jsonl`; multi-turn conversations
longer than a row are split between exchanges, instructions truncated (both counted in the log).
"""

from __future__ import annotations

import pathlib

from it_jax import errors
from it_jax.data import chat_sources, chat_tasks, mixing, sources
from it_jax.data.context import TaskContext

MIXTURE = "chat_sft"
TRAIN_TASKS = ("chat_alpaca", "chat_self_instruct", "chat_hh_rlhf")
HELD_OUT_EVERY = 20


def _directory(context: TaskContext) -> pathlib.Path:
    if context.data_dir is None:
        raise errors.ConfigError(
            "mixtures.chat reads JSONL files from the run's data directory: set run_config.data_dir (or --data_dir) "
            "to the tfds_jsonl/ folder of ../shared/data"
        )
    return pathlib.Path(context.data_dir)


def _conversations(paths: dict[str, pathlib.Path], record_layout: str, name: str) -> sources.Source:
    return chat_sources.ConversationSource(paths, record_layout, description=f"chat task {name!r}")


def register(context: TaskContext) -> None:
    """Registers the chat tasks and the `chat_sft` mixture with the run's vocabulary and chat format."""
    root = _directory(context)
    held_out = {
        "chat_alpaca": ("alpaca", "alpaca"),
        "chat_hh_rlhf": ("hh_rlhf_chat", "messages"),
    }
    for name, (folder, layout) in held_out.items():
        source = _conversations({"train": root / folder / "train.jsonl"}, layout, name)
        overflow = "split" if layout == "messages" else "truncate"
        chat_tasks.register_chat_task(name, source=sources.HeldOut(source, every=HELD_OUT_EVERY), context=context,
                                      overflow=overflow)
    self_instruct = {
        "train": root / "self_instruct__seed" / "train.jsonl",
        "validation": root / "self_instruct__user_oriented" / "test.jsonl",
    }
    chat_tasks.register_chat_task("chat_self_instruct", source=_conversations(self_instruct, "alpaca",
                                                                              "chat_self_instruct"), context=context)
    oasst = {"validation": root / "oasst1_en_top1" / "validation.jsonl"}
    chat_tasks.register_chat_task("chat_oasst1", source=_conversations(oasst, "messages", "chat_oasst1"),
                                  context=context, overflow="split")
    mixing.register_mixture(MIXTURE, list(TRAIN_TASKS), rate=context.rate())
