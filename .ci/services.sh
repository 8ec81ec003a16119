#!/usr/bin/env bash
# What the integration tests need from the system, installed and started here
# so a fresh CI machine has it. Each block is idempotent.
#   MPI: the mpich wheel (the [mpi] extra); MLflow: the tests start a real
#   `mlflow server` on 127.0.0.1 themselves.
#   CVODES: Debian's libsundials-dev, so Myokit (the dev extra) can build the
#   CVODES references that tests/test_ord_accuracy.py checks the ORd solver against.
#   SLURM: a throw-away local cluster (Debian's slurm-wlm and munge; two node
#   daemons n1, n2 on this host with a fake GPU each) from the workspace's
#   ci-slurm.sh; the SLURM tests skip, saying so, where there is none.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
install_sundials() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsundials-dev >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 \
             && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libsundials-dev >/dev/null; }
}
if ! dpkg -s libsundials-dev >/dev/null 2>&1; then
    t0=$SECONDS
    if install_sundials; then
        echo "libsundials-dev installed in $((SECONDS - t0)) s"
    else
        echo "could not install libsundials-dev: the CVODES reference tests will skip"
    fi
fi
slurm_up=$here/../shared/ci-slurm.sh
if [ -x "$slurm_up" ] || [ -f "$slurm_up" ]; then
    t0=$SECONDS
    SLURM_CI_NODES=2 SLURM_CI_GPUS=1 bash "$slurm_up" up
    echo "local SLURM up in $((SECONDS - t0)) s (packages included)"
else
    echo "no ../shared/ci-slurm.sh: the SLURM integration tests will skip"
fi
