"""Convert checkpoints between Hugging Face, T5X, training runs and it_jax's pretrained model directory.

The code is `it_jax/cli/convert_checkpoint.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.convert_checkpoint import main

if __name__ == "__main__":
    raise SystemExit(main())
