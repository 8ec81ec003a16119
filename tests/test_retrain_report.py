"""Retraining the best trial with several seeds, the report, and the commands' refusals."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ionops.cli import main
from ionops.config import load_experiment
from ionops.errors import UserError
from ionops.hpo.retrain import run_retrain
from ionops.hpo.search import TrialRecord, _finish, _open_state, search_folder

IONOPS = str(Path(sys.executable).parent / "ionops")
TINY = ["--set", "data.fraction=0.02", "--set", "data.n_t=128", "--set", "training.epochs=4",
        "--set", "search.num_samples=2", "--set", "search.checkpoint_every=2"]  # fmt: skip


def _ionops(workdir: Path, *args: str) -> str:
    # run from a folder whose ionops/ would shadow the installed package if Ray put the
    # driver's working directory on the workers' sys.path (as a source checkout does)
    shadow = workdir / "ionops" / "__init__.py"
    shadow.parent.mkdir(exist_ok=True)
    shadow.write_text('raise ImportError("a Ray worker imported ionops from the working folder")\n')
    env = {**os.environ, "IONOPS_WORKDIR": str(workdir)}
    done = subprocess.run([IONOPS, *args], env=env, cwd=workdir, capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_retraining_refuses_an_unfinished_search(tmp_path):
    experiment = load_experiment("fhn", [o for o in TINY if o != "--set"])
    folder = search_folder(tmp_path, "fhn-fno-unconstrained")
    state = _open_state(folder, experiment, tmp_path, "fhn-fno-unconstrained")
    point = {"d_v": 8, "n_layers": 1, "k_max": 4, "parameter_count": 10}
    record = TrialRecord(1, "a_00001", "completed", 4, 0.5, point)
    _finish(folder, state, [record], complete=False, workdir=tmp_path)
    with pytest.raises(UserError, match=r"unfinished \(1 of 2 trials\).*--allow-unfinished"):
        run_retrain(experiment, folder, tmp_path)


def test_tune_refuses_to_continue_a_different_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("IONOPS_WORKDIR", str(tmp_path))
    experiment = load_experiment("fhn", [o for o in TINY if o != "--set"])
    _open_state(search_folder(tmp_path, "fhn-fno-unconstrained"), experiment, tmp_path,
                "fhn-fno-unconstrained")  # fmt: skip
    assert main(["tune", "fhn", *TINY, "--set", "training.epochs=5"]) == 2
    message = capsys.readouterr().err
    assert "different experiment (training.epochs: 4 -> 5)" in message
    assert "--overwrite" in message
    assert main(["tune", "fhn", "--resume", "--name", "absent"]) == 2
    assert "no search 'absent'" in capsys.readouterr().err
    assert main(["retrain", "fhn", "--name", "absent"]) == 2
    assert "run `ionops tune`" in capsys.readouterr().err


@pytest.mark.slow
def test_search_retrain_and_report_for_two_models(tmp_path):
    import mlflow

    for model in ("fhn", "hh"):
        _ionops(tmp_path, "tune", model, *TINY, "--no-progress")
        out = _ionops(tmp_path, "retrain", model, *TINY, "--seeds", "2", "--no-progress")
        assert "| test relative L2 |" in out
        assert f"model: models:/ionops-{model}-fno-unconstrained/1" in out
        summary = json.loads((tmp_path / "retrains" / f"{model}-fno-unconstrained" /
                              "summary.json").read_text())  # fmt: skip
        mean, spread = summary["mean_std"]["test/rel_l2"]
        assert 0 < mean < 10 and spread > 0, "two seeds train two different models"
        assert summary["seeds"] == [0, 1]
    out = _ionops(tmp_path, "report", "fhn", "hh", *TINY)
    report = tmp_path / "reports" / "fhn-fno-unconstrained-hh-fno-unconstrained"
    for model in ("fhn", "hh"):
        for name in ("training.png", "subsets.png", "examples.png", "variables.png",
                     "summary.md", "summary.csv"):  # fmt: skip
            assert (report / f"{model}-fno-unconstrained" / name).stat().st_size > 0
    for model, states in (("fhn", ["V", "w"]), ("hh", ["V", "m", "h", "n"])):
        # each figure checked by what it drew: every state, the registered seed, the counts
        folder, retrained = report / f"{model}-fno-unconstrained", tmp_path / "retrains"
        registered = json.loads((retrained / f"{model}-fno-unconstrained" /
                                 "retrain.json").read_text())["model"]["seed"]  # fmt: skip
        examples = json.loads((folder / "examples.json").read_text())
        assert examples["states"] == states and examples["seed"] == registered
        assert json.loads((folder / "training.json").read_text())["seed"] == registered
        subsets = json.loads((folder / "subsets.json").read_text())["subsets"]
        assert set(examples["samples"]) == set(subsets)
        for facts in subsets.values():
            assert facts["drawn_as"] == ("points" if facts["test_samples"] <= 2 else "box")
        variables = json.loads((folder / "variables.json").read_text())
        assert variables["states"] == states
    rows = (report / "models.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in rows[1:]] == ["2", "4"]  # FHN, then HH's 4 states
    assert "| test relative L2 |" in out

    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    retrain = client.get_experiment_by_name("ionops/hh-fno/retrain")
    parent = client.search_runs([retrain.experiment_id], "tags.`ionops.kind` = 'retrain'")[0]
    assert parent.info.status == "FINISHED"
    assert "test/rel_l2/mean" in parent.data.metrics
    bookkeeping = ("pid", "timestamp", "iterations_since_restore", "config/", "time_")
    assert not [k for k in parent.data.metrics if k.startswith(bookkeeping)], "Tune's keys"
    summary = (tmp_path / "retrains" / "hh-fno-unconstrained" / "summary.csv").read_text()
    assert not [line for line in summary.splitlines() if line.startswith(bookkeeping)]
    children = client.search_runs(
        [retrain.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    assert sorted(c.data.params["seed"] for c in children) == ["0", "1"]
    assert {c.info.status for c in children} == {"FINISHED"}
    for child in children:  # the trial's settings are parameters, not one-point metrics
        assert not [k for k in child.data.metrics if k.startswith(bookkeeping)]
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "report")}
    assert {"report/examples.png", "report/summary.md"} <= artifacts
    assert retrain.tags["mlflow.experimentKind"] == "custom_model_development"
    _predict_through_every_loading_path(tmp_path, client, parent.info.run_id)


def _predict_through_every_loading_path(workdir: Path, client, parent_run_id: str) -> None:
    """The retrained HH surrogate from its folder, its checkpoint, its run and the registry
    predicts the test split with the retraining's own test errors."""
    import mlflow
    import numpy as np
    import pandas as pd

    from ionops.datasets.loading import load_dataset
    from ionops.serving.sources import load_surrogate
    from ionops.tracking import fluent_store

    folder = workdir / "retrains" / "hh-fno-unconstrained"
    state = json.loads((folder / "retrain.json").read_text())
    seed, name = state["model"]["seed"], "ionops-hh-fno-unconstrained"
    assert state["model"]["uri"] == f"models:/{name}/1"
    assert client.get_model_version(name, "1").run_id == parent_run_id
    version = client.get_model_version(name, "1")  # it says what it is in the UI
    assert version.description.startswith("fno surrogate of hh (V, m, h, n), from the search "
                                          "hh-fno-unconstrained: trial #")  # fmt: skip
    assert f"this is seed {seed}, the best by validation rel_l2" in version.description
    assert "Test errors over the seeds (mean ± std): relative L1 " in version.description
    assert version.tags["ionops.ionic_model"] == "hh" and version.tags["ionops.seed"] == str(seed)
    assert client.get_registered_model(name).tags["ionops.family"] == "fno"
    expected = state["per_seed"][str(seed)]
    (dataset,) = (workdir / "data").glob("hh_*.h5")
    test = load_dataset(dataset, "none", splits=("test",)).splits["test"]
    inputs = {"amplitude": test.amplitude, "t_stim": test.t_stim}
    uri = f"sqlite:///{workdir / 'mlflow.db'}"
    sources = [folder, folder / f"seed-{seed}" / "checkpoint.pt",
               f"runs:/{parent_run_id}/surrogate", f"models:/{name}/1"]  # fmt: skip
    for source in sources:
        surrogate = load_surrogate(source, tracking_uri=uri)
        prediction = surrogate.predict(inputs)
        surrogate.compare(prediction, test.targets.numpy())
        means = prediction.error_means()
        for key in ("rel_l2", "rel_l1", "rel_h1"):
            assert means[key] == pytest.approx(expected[f"test/{key}"], rel=1e-5), (source, key)
    with fluent_store(uri):
        model = mlflow.pyfunc.load_model(f"models:/{name}/1")
    served = model.predict(pd.DataFrame(inputs))
    assert np.allclose(served, prediction.states, atol=1e-6)
    out = _ionops(workdir, "predict", "hh", *TINY, "--inputs", str(dataset), "--compare")
    assert f"(seed {seed})" in out and "| all |" in out


def test_a_report_folder_that_cannot_be_written_is_named_before_any_figure(tmp_path):
    from ionops.errors import UserError
    from ionops.hpo.report import _check_writable

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(UserError, match=r"--out .*a-file/report: cannot write there"):
        _check_writable(blocker / "report")
    _check_writable(tmp_path / "report")
    assert list((tmp_path / "report").iterdir()) == []  # the probe leaves nothing
