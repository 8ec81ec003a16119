"""Shared fixtures: a small generated dataset, the MPI launcher of this environment."""

import shutil
import sys
from pathlib import Path

import pytest
from support import small_spec

from ionops.datasets.generate import generate

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def hh_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hh.h5"
    generate(small_spec("hh", fraction=0.02), path, progress=False)
    return path


@pytest.fixture(scope="session")
def mpiexec() -> str:
    """The mpiexec of the MPI that mpi4py in this environment was built against."""
    candidate = Path(sys.executable).parent / "mpiexec"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("mpiexec")
    if found is None:
        pytest.skip("no mpiexec: install the [mpi] extra (pip install -e '.[mpi]')")
    return found
