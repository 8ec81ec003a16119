"""`ionops train` end to end: a real subprocess, a real MLflow SQLite store, a checkpoint."""

import os
import subprocess
import sys

import pytest

from ionops.training import load_checkpoint

TINY = ["--set", "data.fraction=0.01", "--set", "data.n_t=64", "--set", "training.epochs=3",
        "--set", "model.d_v=8", "--set", "model.k_max=8", "--set", "model.n_layers=2"]  # fmt: skip


def _train(workdir, *extra):
    env = {**os.environ, "IONOPS_WORKDIR": str(workdir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run(
        [sys.executable, "-m", "ionops.cli", "train", "fhn", *TINY, "--no-progress", *extra],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_train_logs_one_finished_run_with_every_epoch(tmp_path):
    result = _train(tmp_path, "--run-name", "tiny")
    assert result.returncode == 0, result.stderr
    assert "rel_l2: relative L2; rel_h1: relative H1" in result.stdout
    assert "parameters" in result.stdout
    assert "mlflow ui --backend-store-uri sqlite:///" in result.stdout

    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ionops/fhn-fno/train")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED" and run.info.run_name == "tiny"
    assert run.data.params["model.d_v"] == "8" and int(run.data.params["parameter_count"]) > 0
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "validation/rel_l2")]
    assert steps == [1, 2, 3]
    assert "test/phys_rel_l2/V" in run.data.metrics

    state = load_checkpoint(tmp_path / "runs" / "tiny" / "checkpoint.pt")
    assert state["epoch"] == 3 and state["arguments"]["d_v"] == 8


def test_a_configuration_the_grid_cannot_hold_is_refused(tmp_path):
    result = _train(tmp_path, "--set", "model.k_max=60")
    assert result.returncode == 2
    assert "k_max = 60: allowed 1..37 for n_t = 64 with n_pad = 8" in result.stderr


def test_a_data_folder_is_named_as_a_folder(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fhn.h5").write_bytes(b"")
    result = _train(tmp_path / "work", "--data", str(tmp_path / "data"))
    assert result.returncode == 2
    assert f"--data {tmp_path / 'data'} is a folder; give a dataset file (it holds fhn.h5)" in (
        result.stderr
    )
