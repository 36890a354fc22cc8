"""Run a model directory on a JSONL file: generate predictions or score targets.

  python scripts/infer.py --checkpoint CKPT_DIR --input_file IN.jsonl --output_file OUT.jsonl --mode predict
  python scripts/infer.py --checkpoint CKPT_DIR --input_file IN.jsonl --output_file OUT.jsonl --mode score

CKPT_DIR is a pretrained-model directory (`scripts/convert_checkpoint.py` writes them: `model.json`,
`params/`, the SentencePiece model if any) or a training run's directory (its latest complete checkpoint, or
`--step N`), with either vocabulary: SentencePiece or bytes. Each input line is {"inputs": str,
"targets": str} ("targets" is needed to score). Each output line repeats its input line and adds
"prediction" (predict) or "score" (score): the sum of the target tokens' log-probabilities given the inputs.

Text becomes tokens as in training and evaluation: inputs and targets are tokenized with EOS appended, and
the model's prompt layout (recorded with it; see `it_jax.data.layout`) builds the prompt.
"""

from __future__ import annotations

import argparse
import json
import pathlib

from it_jax import errors
from it_jax.cli import common


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--checkpoint", required=True, help="pretrained-model directory (model.json, params/) or training run directory"
    )
    parser.add_argument("--step", type=int, help="a run directory's step (default: its latest complete checkpoint)")
    parser.add_argument("--input_file", required=True, help='JSONL, one {"inputs": ..., "targets": ...} per line')
    parser.add_argument("--output_file", required=True)
    parser.add_argument("--mode", choices=("predict", "score"), default="predict", help="default: %(default)s")
    common.add_decode_flags(parser)
    parser.add_argument("--max_decode_length", type=int, default=64, help="default: %(default)s")
    parser.add_argument("--max_input_length", type=int, default=2048, help="longer inputs are truncated (default: %(default)s)")
    parser.add_argument("--batch_size", type=int, default=16, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default: %(default)s)")
    parser.add_argument("--vocab", help="SentencePiece model to use instead of the one stored in the checkpoint")
    common.add_verbose_flag(parser)
    return parser.parse_args(argv)


def read_examples(path: pathlib.Path, *, need_targets: bool) -> list[dict]:
    """The JSONL records, each checked for the fields the mode needs."""
    examples = []
    with path.open(encoding="utf-8") as f:
        for line_number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise SystemExit(f"{path}:{line_number}: not valid JSON ({e.msg})")
            for field in ("inputs", "targets") if need_targets else ("inputs",):
                if not isinstance(record.get(field), str):
                    raise SystemExit(f'{path}:{line_number}: field "{field}" must be a string (--mode needs it)')
            examples.append(record)
    if not examples:
        raise SystemExit(f"{path}: no examples")
    return examples


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    common.set_verbosity(args.verbose)
    common.quiet_tensorflow()
    from it_jax.evaluation import loading
    from it_jax.evaluation import predictor as predictor_lib

    try:
        model = loading.load_model(args.checkpoint, step=args.step, vocabulary_path=args.vocab)
    except (FileNotFoundError, ValueError, errors.RunError) as error:
        raise SystemExit(f"error: {getattr(error, 'message', error)}") from error
    vocabulary = model.vocabulary
    examples = read_examples(pathlib.Path(args.input_file), need_targets=args.mode == "score")
    inputs = [predictor_lib.tokenize(vocabulary, ex["inputs"], args.max_input_length) for ex in examples]
    predictor = predictor_lib.Predictor(
        spec=model.spec,
        params=model.params,
        layout=model.layout,
        eos_id=vocabulary.eos_id,
        batch_size=min(args.batch_size, len(examples)),
        max_decode_length=args.max_decode_length,
        decode=common.decode_options(args),
        seed=args.seed,
    )
    if args.mode == "score":
        targets = [predictor_lib.tokenize(vocabulary, ex["targets"], 1 << 20) for ex in examples]
        outputs = [{"score": float(s)} for s in predictor.score(inputs, targets)]
    else:
        texts = predictor_lib.decode_texts(vocabulary, predictor.generate(inputs))
        outputs = [{"prediction": text} for text in texts]
    out = pathlib.Path(args.output_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for example, extra in zip(examples, outputs):
            f.write(json.dumps({**example, **extra}, ensure_ascii=False) + "\n")
    print(f"{args.mode}: {len(examples)} examples -> {out}")


if __name__ == "__main__":
    main()
