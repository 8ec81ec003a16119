"""Start-up failures end within seconds with a clear error and leave no search behind."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

IONOPS = str(Path(sys.executable).parent / "ionops")
TINY = ["--set", "data.fraction=0.01", "--set", "data.n_t=128", "--set", "training.epochs=2",
        "--set", "search.num_samples=2", "--no-progress"]  # fmt: skip


def _ionops(workdir: Path, *args: str, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    environment = {**os.environ, "IONOPS_WORKDIR": str(workdir), **env}
    for key in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS", "IONOPS_RAY_TMPDIR"):
        if key not in env:
            environment.pop(key, None)
    began = time.monotonic()
    done = subprocess.run([IONOPS, *args], env=environment, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    return done, time.monotonic() - began


def _no_search_left(workdir: Path) -> None:
    searches = workdir / "searches"
    assert not searches.exists() or not any(searches.iterdir()), list(searches.rglob("*"))


@pytest.mark.parametrize("command", ["train", "tune"])
def test_an_mlflow_server_that_does_not_answer_is_named_within_seconds(tmp_path, command):
    done, seconds = _ionops(tmp_path, command, "fhn", *TINY,
                            MLFLOW_TRACKING_URI="http://127.0.0.1:9")  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "MLflow tracking server at http://127.0.0.1:9" in done.stderr
    assert "does not answer" in done.stderr and "Traceback" not in done.stderr
    assert seconds < 30
    assert not (tmp_path / "data").exists(), "refused before the dataset was generated"
    _no_search_left(tmp_path)


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (["--address", "127.0.0.1:1"], {}, "no Ray head answers at 127.0.0.1:1"),
        (["--address", "auto"], {}, "address 'auto' may join another job's Ray"),
        ([], {"RAY_ADDRESS": "nonsense"}, "Ray address 'nonsense': give it as host:port"),
        ([], {"IONOPS_RAY_TMPDIR": "/tmp/" + "x" * 60}, "Ray's Unix sockets need at most 45"),
    ],
)  # fmt: skip
def test_a_ray_that_cannot_start_is_named_and_leaves_no_search(tmp_path, extra, env, message):
    done, seconds = _ionops(tmp_path, "tune", "fhn", *TINY, *extra, **env)
    assert done.returncode == 2, done.stderr[-2000:]
    assert message in done.stderr and "Traceback" not in done.stderr
    assert seconds < 60
    _no_search_left(tmp_path)
