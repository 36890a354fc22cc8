"""Run a model directory on a JSONL file: generate predictions or score targets.

The code is `it_jax/cli/infer.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.infer import main

if __name__ == "__main__":
    raise SystemExit(main())
