#!/bin/bash
# it_jax as $hosts processes on this machine (coordinator 127.0.0.1:$port): the same command in each, with
# explicit --num_processes and --process_id. Exits with the worst process's exit status.
set -u
pids=()
$commands
status=0
for pid in "$${pids[@]}"; do
    wait "$$pid" && code=0 || code=$$?
    if (( code > status )); then status=$$code; fi
done
exit "$$status"
