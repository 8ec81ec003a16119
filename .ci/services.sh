#!/usr/bin/env bash
# What the integration tests need from the system, installed and started here
# so a fresh CI machine has it. Each block is idempotent.
set -euo pipefail
echo "nothing beyond Python yet: MPI comes from the mpich wheel (the [mpi] extra)"
