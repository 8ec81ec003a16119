#!/bin/bash
# ionops: the whole job on SLURM: generation, then the search, then retraining and
# the report, each submitted with a dependency on the one before.
#   EXPERIMENT=hh IONOPS_ARGS="--set search.space=constrained" slurm/pipeline.sh
# Run it from the folder that holds .venv and ionops-work; extra arguments go to
# every sbatch (e.g. --account=ACCOUNT --partition=PARTITION).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export EXPERIMENT=${EXPERIMENT:-ord} IONOPS_ARGS=${IONOPS_ARGS:-}
generate=$(sbatch --parsable --export=ALL "$@" "$here/generate.sbatch")
search=$(sbatch --parsable --export=ALL --dependency=afterok:"$generate" "$@" "$here/search.sbatch")
retrain=$(sbatch --parsable --export=ALL --dependency=afterok:"$search" "$@" "$here/retrain.sbatch")
echo "submitted: generate $generate -> search $search -> retrain and report $retrain"
echo "results and the MLflow store: ${IONOPS_WORKDIR:-$PWD/ionops-work}"
