"""Chat with a fine-tuned model through its run's chat template: a conversation file, or turns typed on stdin.

  it-jax-chat --checkpoint RUN_DIR [--step N] --input_file conversations.jsonl [--output_file replies.jsonl]
  it-jax-chat --checkpoint EXPORTED_DIR [--system "You are brief."]     # interactive: one user turn a line

--checkpoint is a training run directory (its latest complete checkpoint, or --step N) or a pretrained
directory exported with `it-jax-convert --from_run` (which carries the run's chat template). The chat format is
the run's (`RunContext.chat_format_name`: run.json's, else the tokenizer's own template, else ChatML), the
exported directory's template, or --chat_format.

With --input_file, each line is {"messages": [{"role": "user", "content": ...}, ...]} ending with a user turn;
the model replies to each conversation, and each output line (--output_file, else stdout) is the input record
with the reply appended to "messages" as an assistant message. Without it, each stdin line is a user turn;
the reply is printed and the history kept until `/reset` (or EOF). --system prepends a system message to
conversations that have none.

The prompt is the template's rendering with the generation prompt, tokenized with the run's vocabulary, opened
by the layout's start token unless the rendering opens with it (`PromptLayout.conversation_start`, as chat
training builds rows: a Llama 3 template writes its BOS, which is not added again). An encoder-decoder reads it
with EOS appended, as task inputs are. Generation stops at the vocabulary's EOS, and the reply is cut at the
chat format's end-of-turn text (e.g. "<|im_end|>", which a byte vocabulary spells in ten tokens); where the
end-of-turn is one token other than EOS, generation stops there instead, and an EOS before it still ends the
reply.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from collections.abc import Iterable, Sequence
from typing import IO, Any, Protocol

from it_jax import errors
from it_jax.cli import common

RESET = "/reset"
Message = dict[str, str]


class ChatRun(Protocol):
    """What a chat prompt needs of a run: a `RunContext`, or a `ChatModel` loaded here."""

    @property
    def vocabulary(self) -> Any: ...

    @property
    def layout(self) -> Any: ...

    def chat_format_name(self) -> str: ...


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="training run directory or exported pretrained directory")
    parser.add_argument("--step", type=int, help="a run directory's step (default: its latest complete checkpoint)")
    parser.add_argument("--input_file", help='JSONL, one {"messages": [...]} per line (default: interactive stdin)')
    parser.add_argument("--output_file", help="--input_file's replies (default: stdout)")
    parser.add_argument("--system", help="system prompt for conversations without one")
    parser.add_argument("--chat_format", help="a built-in format (chatml, llama3, tulu, alpaca) or a tokenizer "
                        "directory, instead of the checkpoint's")
    common.add_decode_flags(parser)
    default = " (default: %(default)s)"
    parser.add_argument("--max_decode_length", type=int, default=128, help="reply tokens at most" + default)
    parser.add_argument("--max_input_length", type=int, default=2048, help="prompt tokens at most" + default)
    parser.add_argument("--batch_size", type=int, default=8, help="--input_file conversations at once" + default)
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    common.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    if args.output_file and not args.input_file:
        parser.error("--output_file needs --input_file (interactive replies go to stdout)")
    return args


@dataclasses.dataclass(frozen=True)
class ChatModel:
    """A loaded model (`loading.LoadedModel`) and the chat format its conversations are rendered with."""

    model: Any
    chat_format: str

    @property
    def vocabulary(self) -> Any:
        return self.model.vocabulary

    @property
    def layout(self) -> Any:
        return self.model.layout

    def chat_format_name(self) -> str:
        return self.chat_format


def checkpoint_chat_format(checkpoint: str | pathlib.Path, vocabulary: Any) -> str:
    """The chat format of a run directory (its run.json's) or an exported directory (its recorded template),
    else the default for `vocabulary` (its tokenizer's own template, else ChatML)."""
    from it_jax.convert import hf_tokenizer_files
    from it_jax.data import context
    from it_jax.evaluation import loading

    if hf_tokenizer_files.recorded_chat_template(checkpoint) is not None:
        return str(pathlib.Path(checkpoint).absolute())
    if not (pathlib.Path(checkpoint) / "model.json").is_file():
        recorded = loading.run_chat_format(checkpoint)
        if recorded is not None:
            return recorded
    return context.resolve_chat_format(None, vocabulary)


def chat_prompt(run: ChatRun, messages: Sequence[Message]) -> list[int]:
    """The ids the model reads before its reply: `apply_chat_template(run.chat_format_name(), messages,
    add_generation_prompt=True)` tokenized by the run's vocabulary, after the layout's start token where the
    rendering does not open with it (as chat training does); EOS appended for an encoder-decoder's encoder."""
    from it_jax.data import chat

    text = chat.apply_chat_template(run.chat_format_name(), messages, add_generation_prompt=True)
    ids = [int(i) for i in run.vocabulary.encode(text)]
    if not run.layout.decoder_only:
        return ids + [run.vocabulary.eos_id]
    return run.layout.conversation_start(ids) + ids


def cut_reply(text: str, end_of_turn: str) -> str:
    """The reply: `text` up to the first end-of-turn text (all of it when there is none)."""
    return text.split(end_of_turn, 1)[0] if end_of_turn else text


class Chat:
    """Replies to conversations with one model: prompts by `chat_prompt`, generation by its `Predictor`."""

    def __init__(self, run: ChatModel, args: argparse.Namespace, batch_size: int = 1):
        from it_jax.convert import hf_tokenizer_files
        from it_jax.data import layout as layout_lib
        from it_jax.evaluation import predictor as predictor_lib

        self.run = run
        self.max_input_length = args.max_input_length
        vocabulary = run.vocabulary
        self.end_of_turn = hf_tokenizer_files.end_of_turn(run.chat_format_name())
        # Decoding stops at one id: the end-of-turn token when it is one (a chat model ends its turn there);
        # an EOS before it ends the text all the same (vocabularies decode up to EOS), only later.
        turn_id = hf_tokenizer_files.end_of_turn_id(vocabulary.encode, run.chat_format_name(), vocabulary.eos_id)
        # The prompt ids as given: `chat_prompt` built the whole sequence.
        raw = layout_lib.PromptLayout(run.layout.architecture, start_id=None, inputs_eos=True)
        self.predictor = predictor_lib.Predictor(
            spec=run.model.spec, params=run.model.params, layout=raw,
            eos_id=vocabulary.eos_id if turn_id is None else turn_id,
            batch_size=batch_size, max_decode_length=args.max_decode_length, decode=common.decode_options(args),
            seed=args.seed,
        )

    def prompt(self, messages: Sequence[Message], what: str = "the conversation") -> list[int]:
        """`chat_prompt`, checked against --max_input_length."""
        ids = chat_prompt(self.run, messages)
        if len(ids) > self.max_input_length:
            raise ValueError(f"{what} is {len(ids)} tokens, over --max_input_length {self.max_input_length}: "
                             f"shorten it (interactively: {RESET})")
        return ids

    def replies(self, conversations: Sequence[Sequence[Message]]) -> list[str]:
        """Each conversation's reply, cut at the end-of-turn text."""
        what = "conversation {}".format if len(conversations) > 1 else lambda _: "the conversation"
        generated = self.predictor.generate([self.prompt(m, what(i + 1)) for i, m in enumerate(conversations)])
        return [cut_reply(self.run.vocabulary.decode(ids), self.end_of_turn) for ids in generated]


def with_system(messages: list[Message], system: str | None) -> list[Message]:
    """`messages` with the system prompt first, unless there is none or they have their own."""
    if system is None or (messages and messages[0]["role"] == "system"):
        return messages
    return [{"role": "system", "content": system}, *messages]


def read_conversations(path: pathlib.Path, system: str | None) -> list[tuple[dict, list[Message]]]:
    """(record, messages) of each line; errors name the file, line and field."""
    from it_jax.data import chat_sources

    conversations = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise chat_sources.RecordError(f"expected a JSON object, got {type(record).__name__}")
                messages = chat_sources.from_messages(record)
                if messages[-1]["role"] != "user":
                    raise chat_sources.RecordError("the last message must be the user's: the model replies to it")
            except (json.JSONDecodeError, chat_sources.RecordError) as error:
                raise SystemExit(f"error: {path}:{number}: {error}") from None
            conversations.append((record, with_system(messages, system)))
    if not conversations:
        raise SystemExit(f"error: {path}: no conversations")
    return conversations


def reply_to_file(run: ChatModel, conversations: Sequence[tuple[dict, list[Message]]], args: argparse.Namespace
                  ) -> None:
    """--input_file mode: one output record per conversation, the reply appended to its messages."""
    chat = Chat(run, args, batch_size=min(args.batch_size, len(conversations)))
    replies = chat.replies([messages for _, messages in conversations])
    lines = [
        json.dumps({**record, "messages": [*messages, {"role": "assistant", "content": reply}]}, ensure_ascii=False)
        for (record, messages), reply in zip(conversations, replies)
    ]
    if args.output_file:
        out = pathlib.Path(args.output_file)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        print(f"chat: {len(lines)} conversations -> {out}", file=sys.stderr)
    else:
        print("\n".join(lines))


def converse(chat: Chat, lines: Iterable[str], system: str | None, out: IO[str], interactive: bool) -> None:
    """Interactive mode: each line a user turn, each reply printed; `/reset` clears the history."""
    history: list[Message] = []
    if interactive:
        print(f"Chat format: {chat.run.chat_format_name()}. Type a message; {RESET} clears the history; "
              "Ctrl-D ends.", file=sys.stderr)
    for line in lines:
        text = line.rstrip("\n")
        if text.strip() == RESET:
            history = []
            print("(history cleared)", file=sys.stderr)
            continue
        if not text.strip():
            continue
        messages = with_system([*history, {"role": "user", "content": text}], system)
        try:
            reply = chat.replies([messages])[0]
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            continue
        history = [*messages, {"role": "assistant", "content": reply}]
        print(reply, file=out, flush=True)


def load(args: argparse.Namespace) -> ChatModel:
    """The model of --checkpoint and its chat format."""
    from it_jax.evaluation import loading

    model = loading.load_model(args.checkpoint, step=args.step)
    return ChatModel(model, args.chat_format or checkpoint_chat_format(args.checkpoint, model.vocabulary))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.set_verbosity(args.verbose)
    common.quiet_tensorflow()
    try:
        conversations = read_conversations(pathlib.Path(args.input_file), args.system) if args.input_file else None
        run = load(args)
        if conversations is not None:
            reply_to_file(run, conversations, args)
        else:
            converse(Chat(run, args), sys.stdin, args.system, sys.stdout, sys.stdin.isatty())
    except (FileNotFoundError, ValueError, errors.RunError) as error:
        raise SystemExit(f"error: {getattr(error, 'message', error)}") from error


if __name__ == "__main__":
    main()
