"""Launch files for a run on several hosts: a SLURM batch script, a GKE JobSet, an xpk command, or local processes.

The code is `it_jax/cli/launch.py`; installed, the same command is also a console script (see pyproject.toml).
"""

from it_jax.cli.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
