#!/bin/bash
# it_jax on a TPU $tpu slice through xpk ($tpu_type: $hosts hosts x $chips chips). xpk creates a JobSet like
# `scripts/launch.py --target gke`: one pod per host, the same command in each, --coordinator_address=auto.
set -euo pipefail
xpk workload create \
    --cluster=$cluster \
    --workload=$job_name \
    --docker-image=$image \
    --tpu-type=$tpu_type \
    --num-slices=1 \
    --max-restarts=$max_restarts \
    --command=$command
