"""Shared fixtures: a small generated dataset, the MPI launcher, a real MLflow server."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import NODE_SMALL, small_spec

from ionops.datasets.generate import generate

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session", autouse=True)
def _own_config_folder(tmp_path_factory) -> None:
    """The signing key of the test session's searches (and every command it starts) in a
    temporary config folder, not the user's ``~/.config/ionops``."""
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))


@pytest.fixture(autouse=True)
def _no_mlflow_store_leaks() -> Iterator[None]:
    """A test that points MLflow's globals at its own store (and so, through the variables
    MLflow exports, every later subprocess) fails, and the variables are put back."""
    names = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
    before = {name: os.environ.get(name) for name in names}
    yield
    after = {name: os.environ.get(name) for name in names}
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    assert after == before, f"the test left MLflow pointed elsewhere: {after}"


@pytest.fixture(scope="session")
def hh_dataset(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "hh.h5"
    generate(small_spec("hh", fraction=0.02), path, progress=False)
    return path


@pytest.fixture(scope="session")
def node_window(tmp_path_factory):
    """``hh-node`` on a tiny window (30 ms, 8 x 8 networks): its experiment and loaded data."""
    from ionops.config import load_experiment
    from ionops.datasets.generate import spec_from_config
    from ionops.models.registry import get_family

    experiment = load_experiment("hh-node", NODE_SMALL)
    path = tmp_path_factory.mktemp("node") / "w.h5"
    generate(spec_from_config(experiment.data), path, progress=False)
    return experiment, get_family("node").load_data(experiment, path)


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


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (one for the session), as a tracking URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [
        str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1",
        "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination", str(root / "artifacts"),
    ]  # fmt: skip
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log = (root / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                log_text = (root / "server.log").read_text()
                raise RuntimeError(f"mlflow server did not start: {log_text}")
            time.sleep(0.5)
        yield uri
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture(scope="session")
def fno(hh_dataset, tmp_path_factory):
    """A tiny HH FNO trained on the shared dataset: (checkpoint, dataset, result)."""
    from support import FNO_TINY, trained

    from ionops.config import load_experiment
    from ionops.datasets.loading import load_dataset

    attributes = load_dataset(hh_dataset, "none", splits=("test",)).attributes
    experiment = load_experiment("hh", [*FNO_TINY, f"data.n_t={attributes['n_t']}"])
    checkpoint = tmp_path_factory.mktemp("fno") / "checkpoint.pt"
    return checkpoint, hh_dataset, trained(experiment, hh_dataset, checkpoint)
