"""Show what a mixture is made of: each task's cluster, examples, cap, share of the mixture, and samples.

The code is `it_jax/cli/inspect_mixture.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.inspect_mixture import main

if __name__ == "__main__":
    raise SystemExit(main())
