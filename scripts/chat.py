"""Chat with a fine-tuned model through its run's chat template: a conversation file, or turns typed on stdin.

The code is `it_jax/cli/chat.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.chat import main

if __name__ == "__main__":
    raise SystemExit(main())
