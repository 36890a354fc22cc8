"""Convert checkpoints between Hugging Face, T5X, training runs and it_jax's pretrained model directory.

  python scripts/convert_checkpoint.py --from_hf HF_DIR --out CKPT_DIR     # T5 / Flan-T5, Llama, Qwen2
  python scripts/convert_checkpoint.py --to_hf CKPT_DIR --out HF_DIR       # loadable by transformers
  python scripts/convert_checkpoint.py --from_t5x PATH --out CKPT_DIR --vocab spiece.model
  python scripts/convert_checkpoint.py --from_run RUN_DIR [--step N] --out CKPT_DIR   # export a training run

The pretrained directory (it_jax.convert.pretrained) records the model config, the parameters (Orbax)
and the vocabulary: a copy of the SentencePiece model, or a byte vocabulary with its extra ids. The
vocabulary is --vocab, else for --from_hf the directory's `spiece.model` / `tokenizer.model` when it is a
SentencePiece model; T5X checkpoints carry none.

--from_run exports a run directory (what scripts/train.py writes) at its latest complete checkpoint or
--step N: the parameters bit for bit, the run's vocabulary (a Hugging Face tokenizer's files too), prompt
layout and task feature lengths, and the run's chat template (`tokenizer_config.json`). --to_hf writes a byte
vocabulary as a `ByT5Tokenizer` config with the same ids, copies a Hugging Face tokenizer's files, carries the
chat template into the tokenizer config and, for decoders, writes the vocabulary's BOS/EOS/pad ids (and the
chat format's end-of-turn token as a second EOS) into generation_config.json (see
it_jax.convert.hf_tokenizer_files).

Extra ids (sentinels appended to the SentencePiece vocabulary), unless --extra_ids is given: T5 models get
100 when the SentencePiece pieces plus 100 fit in the model's vocabulary (the T5 vocabulary: 32,000 pieces
+ 100 sentinels <= 32,128 rows), otherwise 0; decoder-only models get 0. The pieces plus extra ids must
never exceed the model's vocabulary. The output directory must be new or empty.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
import dataclasses
import pathlib


import jax
import jax.numpy as jnp
import sentencepiece

from it_jax import errors
from it_jax.convert import hf, hf_tokenizer_files, pretrained, t5x, tree
from it_jax.models import registry

T5_EXTRA_IDS = 100


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (`argv`, default `sys.argv[1:]`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--from_hf", metavar="HF_DIR", help="Hugging Face directory: config.json + safetensors")
    source.add_argument("--to_hf", metavar="CKPT_DIR", help="it_jax pretrained directory to export")
    source.add_argument("--from_t5x", metavar="PATH", help="T5X checkpoint_<step> directory or its msgpack file")
    source.add_argument("--from_run", metavar="RUN_DIR", help="training run directory (checkpoints/<step>/)")
    parser.add_argument("--step", type=int, help="--from_run: the step to export (default: the latest complete)")
    parser.add_argument("--out", required=True, help="output directory (new or empty)")
    parser.add_argument("--vocab", help="SentencePiece model to record (default: the source's, if any)")
    parser.add_argument("--extra_ids", type=int, help="sentinel ids after the SentencePiece pieces (default: above)")
    parser.add_argument("--param_dtype", help="cast parameters, e.g. float32 or bfloat16 (default: keep)")
    parser.add_argument(
        "--scan_layers", action="store_true", help="importing: store the layers stacked, for scan_layers=True"
    )
    args = parser.parse_args(argv)
    if args.step is not None and not args.from_run:
        parser.error("--step applies to --from_run only")
    if args.from_run and (args.vocab or args.extra_ids is not None or args.param_dtype or args.scan_layers):
        parser.error("--from_run exports the run as it was trained: --vocab, --extra_ids, --param_dtype and "
                     "--scan_layers do not apply")
    return args


def default_extra_ids(config: registry.ModelConfig, vocabulary_path: str | None) -> int:
    """The extra-id rule of the module docstring."""
    if vocabulary_path is None or registry.family(config) != "t5":
        return 0
    pieces = sentencepiece.SentencePieceProcessor(model_file=str(vocabulary_path)).get_piece_size()
    return T5_EXTRA_IDS if pieces + T5_EXTRA_IDS <= config.vocab_size else 0


def hf_tokenizer_present(directory: str) -> bool:
    """Whether a Hugging Face directory holds a `tokenizer.json`."""
    return (pathlib.Path(directory) / "tokenizer.json").is_file()


def import_checkpoint(args: argparse.Namespace) -> str:
    """--from_hf / --from_t5x: writes a pretrained directory; returns the summary."""
    if args.from_hf:
        config, params = hf.from_hf(args.from_hf, param_dtype=args.param_dtype, scan_layers=args.scan_layers)
        vocab = args.vocab or hf.find_vocabulary(args.from_hf)
        layout = hf.layout_from_hf(args.from_hf)
    else:
        overrides = {"param_dtype": args.param_dtype} if args.param_dtype else None
        config, params = t5x.from_t5x(args.from_t5x, overrides=overrides, scan_layers=args.scan_layers)
        vocab, layout = args.vocab, None
    vocab = None if vocab is None else str(vocab)
    extra_ids = default_extra_ids(config, vocab) if args.extra_ids is None else args.extra_ids
    if vocab is not None:
        pieces = sentencepiece.SentencePieceProcessor(model_file=vocab).get_piece_size()
        if pieces + extra_ids > config.vocab_size:
            raise SystemExit(
                f"error: {vocab} has {pieces} pieces; with {extra_ids} extra ids that exceeds the model's "
                f"vocabulary of {config.vocab_size}; pass a smaller --extra_ids or the right --vocab"
            )
    # A Hugging Face tokenizer.json (Llama 3, Qwen) is kept when there is no SentencePiece model.
    tokenizer_dir = args.from_hf if args.from_hf and vocab is None and hf_tokenizer_present(args.from_hf) else None
    out = pretrained.save_pretrained(
        args.out, config=config, params=params, vocabulary_path=vocab, extra_ids=extra_ids, layout=layout,
        tokenizer_dir=tokenizer_dir,
    )
    vocabulary = f"{pathlib.Path(vocab).name} + {extra_ids} extra ids" if vocab else "none recorded (pass --vocab)"
    vocabulary = "tokenizer.json (Hugging Face)" if tokenizer_dir else vocabulary
    return (
        f"family: {registry.family(config)}\nparameters: {tree.num_params(params):,}\n"
        f"vocabulary: {vocabulary}\nwritten: {out}"
    )


def export_checkpoint(args: argparse.Namespace) -> str:
    """--to_hf: writes a Hugging Face directory; returns the summary."""
    loaded = pretrained.load_pretrained(args.to_hf)
    config, params = loaded.config, loaded.params
    if args.param_dtype:
        dtype = jnp.dtype(args.param_dtype)
        params = jax.tree.map(lambda a: a.astype(dtype), params)
        config = dataclasses.replace(config, param_dtype=dtype.name)
    vocab = args.vocab or loaded.vocabulary_path
    byte_extra_ids = loaded.extra_ids if loaded.byte_vocabulary and vocab is None else None
    hf.to_hf(config, params, args.out, vocabulary_path=vocab, byte_vocabulary_extra_ids=byte_extra_ids)
    written = hf_tokenizer_files.export_tokenizer_files(args.to_hf, loaded, args.out, _vocabulary(loaded, args.vocab))
    vocabulary = pathlib.Path(vocab).name if vocab else "none"
    if byte_extra_ids is not None:
        vocabulary = f"bytes + {byte_extra_ids} extra ids (ByT5Tokenizer)"
    if loaded.tokenizer_dir and not args.vocab:
        vocabulary = "tokenizer.json (Hugging Face)"
    chat = "chat template: in tokenizer_config.json\n" if hf_tokenizer_files.CHAT_TEMPLATE_FIELD in written else ""
    return (
        f"family: {registry.family(config)}\nparameters: {tree.num_params(params):,}\n"
        f"vocabulary: {vocabulary}\n{chat}written: {pathlib.Path(args.out).absolute()}"
    )


def _vocabulary(loaded: pretrained.Pretrained, override: str | None):
    """The vocabulary `--to_hf` writes generation ids from (a decoder's only: T5's are fixed), or None."""
    if registry.family(loaded.config) != "decoder":
        return None
    return pretrained.make_vocabulary(loaded, override)


def export_run(args: argparse.Namespace) -> str:
    """--from_run: writes a pretrained directory from a training run's checkpoint; returns the summary."""
    # Imported here: it loads TensorFlow (seqio), which the other conversions do not need.
    from it_jax.evaluation import loading

    run = loading.export_run(args.from_run, args.out, step=args.step)
    loaded = pretrained.read_metadata(args.out)
    vocabulary = loaded["vocabulary"]
    name = vocabulary["file"] or "bytes"
    chat_format = loading.run_chat_format(args.from_run)
    chat = "" if chat_format is None else f"chat template: {chat_format}\n"
    return (
        f"family: {registry.family(run.config)}\nstep: {run.step}\nparameters: {tree.num_params(run.params):,}\n"
        f"vocabulary: {name} + {vocabulary['extra_ids']} extra ids\nlayout: {loaded['layout']['architecture']}\n"
        f"{chat}written: {pathlib.Path(args.out).absolute()}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Runs the conversion `argv` asks for (default: the command line)."""
    args = parse_args(argv)
    try:
        if args.from_run:
            print(export_run(args))
        else:
            print(export_checkpoint(args) if args.to_hf else import_checkpoint(args))
    except (FileNotFoundError, FileExistsError, ValueError, errors.RunError) as error:
        raise SystemExit(f"error: {getattr(error, 'message', error)}") from error


if __name__ == "__main__":
    main()
