"""Evaluate any model directory zero- or few-shot, template by template: a training run or a pretrained directory.

The code is `it_jax/cli/eval.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.eval import main

if __name__ == "__main__":
    raise SystemExit(main())
