"""Find the evaluation examples that share a word n-gram with a training mixture, and write their indices.

The code is `it_jax/cli/decontaminate.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.decontaminate import main

if __name__ == "__main__":
    raise SystemExit(main())
