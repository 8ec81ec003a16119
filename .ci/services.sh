#!/usr/bin/env bash
# What the integration tests need from the system, installed and started here
# so a fresh CI machine has it. Each block is idempotent.
#   MPI: the mpich wheel (the [mpi] extra); MLflow: the tests start a real
#   `mlflow server` on 127.0.0.1 themselves.
#   SLURM: a throw-away local cluster (Debian's slurm-wlm and munge; two node
#   daemons n1, n2 on this host with a fake GPU each) from the workspace's
#   ci-slurm.sh; the SLURM tests skip, saying so, where there is none.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
slurm_up=$here/../shared/ci-slurm.sh
if [ -x "$slurm_up" ] || [ -f "$slurm_up" ]; then
    t0=$SECONDS
    SLURM_CI_NODES=2 SLURM_CI_GPUS=1 bash "$slurm_up" up
    echo "local SLURM up in $((SECONDS - t0)) s (packages included)"
else
    echo "no ../shared/ci-slurm.sh: the SLURM integration tests will skip"
fi
