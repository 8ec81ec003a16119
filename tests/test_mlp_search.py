"""The MLP family through the whole service: TPE and the candidate protocol, resume, retraining,
report, MLflow (real Ray, real MLflow on SQLite, real subprocesses)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

IONOPS = str(Path(sys.executable).parent / "ionops")
TINY = ["--set", "data.train=1500", "--set", "data.validation=60", "--set", "data.test=20",
        "--set", "data.t_end_ms=20.0", "--set", "training.epochs=24", "--set",
        "search.num_samples=3", "--set", "search.candidates=5", "--set",
        "search.checkpoint_every=4", "--set", "training.eval_every=4"]  # fmt: skip


def _run(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "IONOPS_WORKDIR": str(workdir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run([IONOPS, *args], env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=900, check=False)  # fmt: skip
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _trials(folder: Path) -> list[dict[str, str]]:
    with (folder / "trials.csv").open() as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_mlp_search_candidates_retrain_and_report(tmp_path):
    import mlflow

    out = _run(tmp_path, "tune", "fhn-mlp-b", *TINY, "--no-progress").stdout
    assert "3 TPE trials" in out and "search complete" in out
    tpe = _trials(tmp_path / "searches" / "fhn-mlp-b-unconstrained")
    assert len(tpe) == 3 and tpe[0]["widths"] == "64-64-64"  # the experiment's own first
    assert all(float(t["validation/mae"]) > 0 for t in tpe)

    # the candidate protocol, stopped gracefully mid-way and continued
    candidates = [*TINY, "--set", 'search.strategy="candidates"', "--set",
                  'search.scheduler="fifo"', "--set", "search.max_concurrent=1"]  # fmt: skip
    env = {**os.environ, "IONOPS_WORKDIR": str(tmp_path)}
    env.pop("MLFLOW_TRACKING_URI", None)
    folder = tmp_path / "searches" / "fhn-mlp-b-unconstrained-candidates"
    log = (tmp_path / "candidates.log").open("w")
    command = [IONOPS, "tune", "fhn-mlp-b", *candidates, "--no-progress"]
    search = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while len(list((folder / "tune").glob("run_trial_*"))) < 2:
        assert search.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    search.send_signal(signal.SIGUSR1)
    assert search.wait(timeout=120) == 75, (tmp_path / "candidates.log").read_text()[-3000:]
    out = _run(tmp_path, "tune", "fhn-mlp-b", *candidates, "--no-progress").stdout
    assert "resuming the search" in out and "search complete" in out
    protocol = _trials(folder)
    assert len(protocol) == 5 and {t["outcome"] for t in protocol} == {"completed"}
    assert all(t["epochs"] == "24" for t in protocol)
    assert len({t["widths"] + t["activations"] for t in protocol}) == 5
    assert protocol[0]["widths"] == "64-64-64", "the experiment's own network first"

    out = _run(tmp_path, "retrain", "fhn-mlp-b", *candidates, "--seeds", "2",
               "--no-progress").stdout  # fmt: skip
    assert "| test MAE |" in out and "| u |" in out
    out = _run(tmp_path, "report", "fhn-mlp-b", *candidates).stdout
    report = tmp_path / "reports" / "fhn-mlp-b-unconstrained-candidates"
    for name in ("training.png", "variables.png", "shapes.png", "pareto.png", "examples.png",
                 "summary.md"):  # fmt: skip
        assert (report / name).stat().st_size > 0, name
    shapes = json.loads((report / "shapes.json").read_text())  # what the figure drew
    assert shapes["trials"] == sum(s["trials"] for s in shapes["shapes"].values()) > 0
    for facts in shapes["shapes"].values():
        assert facts["drawn_as"] == ("points" if facts["trials"] <= 2 else "box")

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ionops/fhn-mlp-b/search")
    runs = client.search_runs([experiment.experiment_id])
    children = [r for r in runs if "ionops.trial_id" in r.data.tags]
    assert len(children) == 3 + 5, "one run per trial, the resumed ones included"
    assert {r.info.status for r in children} <= {"FINISHED", "KILLED"}
    assert all("shape" in r.data.params and "parameter_count" in r.data.params for r in children)
    retrain = client.get_experiment_by_name("ionops/fhn-mlp-b/retrain")
    [parent] = client.search_runs([retrain.experiment_id], "tags.`ionops.kind` = 'retrain'")
    assert parent.info.status == "FINISHED" and "test/mae/mean" in parent.data.metrics
