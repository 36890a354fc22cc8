"""Launching a run on several hosts through a cluster's scheduler (SLURM, GKE JobSet, xpk) or locally:
see `it_jax.cluster.launch_files` and `scripts/launch.py`."""

from it_jax.cluster.launch_files import TARGETS, LaunchSpec, entry_command, local_commands, render

__all__ = ["TARGETS", "LaunchSpec", "entry_command", "local_commands", "render"]
