"""The held-out-cluster experiment in one command: per cluster, train on the others, evaluate it zero-shot.

The code is `it_jax/cli/heldout_experiment.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.heldout_experiment import main

if __name__ == "__main__":
    raise SystemExit(main())
