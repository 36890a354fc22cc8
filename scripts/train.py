"""Train a model on a mixture, then evaluate it zero-shot on the held-out cluster (the demo by default).

The code is `it_jax/cli/train.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
