"""What `ionops predict` and the Python API refuse, by name, writing nothing: bad inputs and
sources, silent acceptances of old (extra columns, another problem's dataset, an existing
output), a store that is not there, and checkpoints that would run code."""

import pickle
import re

import h5py
import pytest
import torch
from support import small_spec

from ionops.cli import main
from ionops.datasets.generate import generate
from ionops.datasets.loading import load_dataset
from ionops.errors import UserError
from ionops.serving.sources import load_surrogate


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "give the inputs one way"),
        (["--stimulus", "1,2", "--input", "1,2"], "give the inputs one way"),
        (["--stimulus", "1"], r"--stimulus '1': give 2 values \(amplitude,t_stim\)"),
        (["--stimulus", "1,x"], "amplitude,t_stim must be numbers"),
        (["--input", "amplitude=1,T=2"], "give amplitude=..., t_stim=..."),
        (["--input", "1,nan"], "input t_stim of sample 0 is nan: inputs must be finite"),
        (["--stimulus", "1,2", "--ionic-model", "ord"], "of hh .*asked for ionic model 'ord'"),
        (["--stimulus", "1,2", "--n-t", "1000"], "asked for grid points 1000"),
        (["--stimulus", "1,2", "--n-states", "2"], "asked for states 2"),
        (["--stimulus", "1,2", "--precision", "half"], "precision = 'half'; choose one of"),
        (["--stimulus", "1,2", "--batch-size", "0"], "batch_size = 0"),
        (["--stimulus", "1,2", "--seed", "3"], "a seed is chosen in a retraining folder"),
        (["--stimulus", "1,2", "--device", "tpu"], "device = 'tpu'"),
        (["--inputs", "absent.csv"], "--inputs absent.csv: no such file"),
    ],
)
def test_bad_input_is_named_and_writes_nothing(fno, tmp_path, capsys, arguments, message):
    checkpoint, _, _ = fno
    out = tmp_path / "never.h5"
    assert main(["predict", "--from", str(checkpoint), "-o", str(out), *arguments]) == 2

    assert re.search(message, capsys.readouterr().err), message
    assert not out.exists()


def test_bad_sources_are_named(fno, tmp_path, capsys, monkeypatch):
    checkpoint, _, _ = fno
    monkeypatch.setenv("IONOPS_WORKDIR", str(tmp_path / "work"))
    cases = [
        (["--stimulus", "1,2"], r"give an EXPERIMENT \(its retraining\) or --from SOURCE"),
        (["hh", "--from", str(checkpoint), "--stimulus", "1,2"], "not both"),
        (["hh", "--stimulus", "1,2"], "no retraining in .*retrains/hh-fno-unconstrained"),
        (["--from", str(tmp_path / "absent.pt"), "--stimulus", "1,2"], "no surrogate at"),
        (["--from", str(tmp_path), "--stimulus", "1,2"], "is not a retraining"),
        (
            ["--from", "models:/absent/1", "--stimulus", "1,2"],
            "no MLflow store at .*work/mlflow.db",
        ),
        (
            ["--from", str(checkpoint), "--set", "training.epochs=2", "--stimulus", "1,2"],
            "with --from the source says which surrogate",
        ),
    ]

    for arguments, message in cases:
        assert main(["predict", *arguments]) == 2, arguments
        assert re.search(message, capsys.readouterr().err), message
    mlp_source = tmp_path / "mlp.csv"
    mlp_source.write_text("amplitude\n1\n")
    assert main(["predict", "--from", str(checkpoint), "--inputs", str(mlp_source)]) == 2
    assert "lacks ['t_stim']" in capsys.readouterr().err


def test_silent_acceptances_are_refused_by_name(fno, tmp_path, capsys):
    """An extra CSV column, --split with a CSV or without --inputs, a dataset of another
    ionic model or grid, and an existing output are each refused, naming both sides."""

    checkpoint, dataset, _ = fno
    table = tmp_path / "stimuli.csv"
    table.write_text("amplitude,t_stim,note\n20,1,7\n")
    other_model = tmp_path / "fhn.h5"
    generate(small_spec("fhn"), other_model, progress=False)
    other_grid = tmp_path / "hh-coarse.h5"
    generate(small_spec("hh", n_t=32), other_grid, progress=False)
    out = tmp_path / "out.h5"
    cases = [
        (["--inputs", str(table)], r"column 'note' is not an input of this surrogate"),
        (["--inputs", str(table), "--split", "validation"], r"--split validation: .* is a CSV"),
        (["--stimulus", "20,1", "--split", "test"], r"--split test: .*no --inputs was given"),
        (
            ["--inputs", str(other_model)],
            r"another problem .*ionic model: the file's fhn, the "
            r"surrogate's hh",
        ),
        (
            ["--inputs", str(other_grid), "--compare"],
            r"grid: the file's 32 points to 100 ms, "
            r"the surrogate's \d+ points",
        ),
    ]
    for arguments, message in cases:
        assert main(["predict", "--from", str(checkpoint), "-o", str(out), *arguments]) == 2
        assert re.search(message, capsys.readouterr().err), arguments
        assert not out.exists()
    assert main(["predict", "--from", str(checkpoint), "-o", str(out), "--inputs",
                 str(dataset)]) == 0  # fmt: skip
    written = out.read_bytes()
    assert main(["predict", "--from", str(checkpoint), "-o", str(out), "--stimulus", "20,1"]) == 2
    assert re.search(r"--output .*out.h5 exists: give --overwrite", capsys.readouterr().err)
    assert out.read_bytes() == written
    assert main(["predict", "--from", str(checkpoint), "-o", str(out), "--stimulus", "20,1",
                 "--overwrite"]) == 0  # fmt: skip
    assert len(h5py.File(out)["test/amplitude"]) == 1


def test_an_mlflow_uri_is_read_from_the_working_folders_store_and_none_is_made(
    fno, tmp_path, monkeypatch, capsys
):
    """``load_surrogate("models:/...")`` reads the store ``ionops predict`` reads (the working
    folder's), whatever the current folder, and never creates a store as a side effect."""
    from ionops import tracking
    from ionops.serving.mlflow_model import log_surrogate

    checkpoint, _, _ = fno
    elsewhere, work = tmp_path / "elsewhere", tmp_path / "work"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("IONOPS_WORKDIR", str(work))
    with pytest.raises(UserError, match=r"no MLflow store at .*work/mlflow.db: nothing was logged"):
        load_surrogate("models:/tiny/1")
    assert main(["predict", "--from", "models:/tiny/1", "--stimulus", "20,1"]) == 2
    assert "no MLflow store at" in capsys.readouterr().err
    assert not work.exists() and list(elsewhere.iterdir()) == []
    client = tracking.client(work)
    run = tracking.RunWriter.start(client, tracking.experiment_id(client, "x", work), "r")
    log_surrogate(tracking.tracking_uri(work), run.run_id, checkpoint, "tiny")
    surrogate = load_surrogate("models:/tiny/1")
    assert surrogate.ionic_model == "hh" and list(elsewhere.iterdir()) == []


class _Payload:
    """What a hostile checkpoint would run when unpickled: it creates a file."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(fno, tmp_path, capsys):
    checkpoint, _, _ = fno
    state = torch.load(checkpoint, weights_only=True)
    marker = tmp_path / "code-ran"
    state["surrogate"] = {**state["surrogate"], "extra": _Payload(marker)}
    tampered = tmp_path / "tampered.pt"
    torch.save(state, tampered)
    with pytest.raises(UserError, match=r"not a loadable ionops checkpoint"):
        load_surrogate(tampered)
    assert main(["predict", "--from", str(tampered), "--stimulus", "1,2"]) == 2
    assert "not a loadable ionops checkpoint" in capsys.readouterr().err
    assert not marker.exists()
    with tampered.open("wb") as handle:
        pickle.dump(_Payload(marker), handle)
    with pytest.raises(UserError, match=r"not a loadable ionops checkpoint"):
        load_surrogate(tampered)
    assert not marker.exists()


def test_a_checkpoint_without_its_description_says_to_retrain(fno, tmp_path):
    checkpoint, _, _ = fno
    state = torch.load(checkpoint, weights_only=True)
    del state["surrogate"]
    old = tmp_path / "old.pt"
    torch.save(state, old)
    with pytest.raises(UserError, match=r"holds no description of its training data.*retrain"):
        load_surrogate(old)


def test_a_prediction_file_is_not_a_training_dataset(fno, tmp_path):
    checkpoint, _, _ = fno
    surrogate = load_surrogate(checkpoint)
    path = tmp_path / "p.h5"
    surrogate.write(path, surrogate.predict([[1.0, 2.0]]))
    with pytest.raises(UserError, match=r"is a prediction .*normalisation='none'"):
        load_dataset(path)
