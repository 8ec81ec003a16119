"""A tracking store ionops cannot use is refused before any work starts, naming the store,
what is wrong with it and what to do; the store is left as it was and no run or search
folder is made."""

import os
import re
import sqlite3
from pathlib import Path

import pytest

from ionops.cli import main


def _good_store(path):
    """A real MLflow store, as ionops makes it."""
    from ionops import tracking

    tracking.client(path.parent).search_experiments()


def _damage(kind, path):
    if kind == "folder":
        path.mkdir()
    elif kind == "random":
        path.write_bytes(os.urandom(8192))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "header":
        path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))
    elif kind == "truncated":
        _good_store(path)
        os.truncate(path, path.stat().st_size // 3)
    elif kind == "read-only":
        _good_store(path)
        path.chmod(0o444)
    elif kind == "not-mlflow":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE notes (x)")


DAMAGE = {
    "folder": "is a folder, not a database file",
    "random": "is not an SQLite database",
    "empty": "is empty",
    "header": r"is damaged \(file is not a database\)",
    "truncated": r"is damaged \(database disk image is malformed\)",
    "read-only": r"cannot be written \(.*mlflow.db is read-only\); make it writable",
    "not-mlflow": "is an SQLite database but not an MLflow store",
}
COMMANDS = {
    "train": ["train", "fhn", "--set", "data.fraction=0.02", "--no-progress", "--run-name", "x"],
    "tune": ["tune", "fhn", "--set", "data.fraction=0.02", "--no-progress"],
    "predict": ["predict", "--from", "models:/fhn/1", "--stimulus", "1,2"],
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_damaged_store_is_named_and_nothing_is_made(kind, command, tmp_path, monkeypatch,
                                                      capsys):  # fmt: skip
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("IONOPS_WORKDIR", str(tmp_path))
    store = tmp_path / "mlflow.db"
    _damage(kind, store)
    before = store.read_bytes() if store.is_file() else None
    made = set(tmp_path.iterdir())
    assert main(COMMANDS[command]) == 2
    error = capsys.readouterr().err
    if kind == "read-only" and command == "predict":  # reading a model: read-only will do
        assert "cannot read the MLflow model models:/fhn/1" in error, error
        assert set(tmp_path.iterdir()) == made and store.read_bytes() == before
        return
    assert re.search(f"the MLflow store {re.escape(str(store))} {DAMAGE[kind]}", error), error
    assert "IONOPS_WORKDIR=PATH" in error
    assert "mv " in error or "chmod u+w" in error
    assert set(tmp_path.iterdir()) == made  # no run, search, data or prediction folder
    if before is not None:
        assert store.read_bytes() == before


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            "bogus://x",
            r"MLFLOW_TRACKING_URI = 'bogus://x': not a tracking store ionops can use "
            r"\(known schemes: http, https, sqlite",
        ),
        ("file:///nonexistent/mlruns", "MLflow 3 no longer writes its file store"),
        ("/some/folder/mlruns", "MLflow 3 no longer writes its file store"),
    ],
)
def test_a_tracking_uri_ionops_cannot_use_is_named(uri, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("IONOPS_WORKDIR", str(tmp_path / "work"))
    assert main(COMMANDS["train"]) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error
    assert "unset MLFLOW_TRACKING_URI" in error
    assert not (tmp_path / "work").exists()
    assert not Path("/nonexistent").exists()


SEARCH = ["tune", "fhn", "--set", "data.fraction=0.02", "--set", "data.n_t=64", "--no-progress"]


def _search_folder(workdir):
    """A search folder as a started search leaves it: its state file and MLflow parent run."""
    from ionops.config import load_experiment
    from ionops.hpo.search import _create_state, search_folder, search_name

    experiment = load_experiment("fhn", ["data.fraction=0.02", "data.n_t=64"])
    name = search_name(experiment)
    folder = search_folder(workdir, name)
    folder.mkdir(parents=True)
    _create_state(folder, experiment, workdir, name)
    return folder


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            {"search.json": b"{not json"},
            r"the search's state file .*search.json is damaged "
            r"\(Expecting property name.*--overwrite",
        ),
        ({"search.json": b"[]"}, r"search.json is damaged \(not a state file ionops wrote\)"),
        (
            {"asha.json": b"\x00\x01garbage"},
            r"ASHA's state file .*asha.json is damaged .*"
            r"start the search over with --overwrite",
        ),
        ({"asha.json": b'{"rungs": []}'}, r"asha.json is damaged \(not ASHA's state"),
    ],
)
def test_a_damaged_search_folder_is_refused_with_the_way_out(damage, message, tmp_path,
                                                             monkeypatch, capsys):  # fmt: skip
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("IONOPS_WORKDIR", str(tmp_path))
    folder = _search_folder(tmp_path)
    for name, content in damage.items():
        (folder / name).write_bytes(content)
    assert main(SEARCH) == 2
    error = capsys.readouterr().err
    assert re.search(message, error), error
    for name, content in damage.items():
        assert (folder / name).read_bytes() == content  # left for the user to look at


def test_a_search_folder_away_from_its_store_is_refused_naming_both(tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    """A search folder copied into another working folder (another store) is not continued
    there: its trials would log to a parent run that store does not hold."""
    import shutil

    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    original = tmp_path / "original"
    folder = _search_folder(original)
    elsewhere = tmp_path / "elsewhere"
    _good_store(elsewhere / "mlflow.db")
    shutil.copytree(folder, elsewhere / "searches" / folder.name)
    monkeypatch.setenv("IONOPS_WORKDIR", str(elsewhere))
    assert main(SEARCH) == 2
    error = capsys.readouterr().err
    assert re.search(rf"the store sqlite:///{re.escape(str(original))}/mlflow.db, which the "
                     rf"store it would use now \(sqlite:///{re.escape(str(elsewhere))}/mlflow.db"
                     r"\) does not hold", error), error  # fmt: skip
    assert "--overwrite" in error
    client = mlflow.tracking.MlflowClient(f"sqlite:///{elsewhere / 'mlflow.db'}")
    assert client.search_experiments() == [] or all(
        not client.search_runs([e.experiment_id]) for e in client.search_experiments()
    )

    (elsewhere / "searches" / folder.name / "search.json").unlink()  # its record removed
    (elsewhere / "searches" / folder.name / "tune" / "x").mkdir(parents=True)
    assert main(SEARCH) == 2
    assert "has Tune's state but no search.json" in capsys.readouterr().err


def test_a_moved_working_folder_keeps_its_artifacts_in_its_own_store(tmp_path, monkeypatch):
    """MLflow records artifact locations as absolute paths: after a move (or a copy) the
    store is pointed at the folder's own mlartifacts, so nothing is written where it was."""
    import subprocess
    import sys

    from ionops import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, moved = tmp_path / "first", tmp_path / "moved"
    note = tmp_path / "note.txt"
    note.write_text("logged before the move")
    before = (  # in its own process, as the search or retraining that made the store was
        "import sys; from pathlib import Path; from ionops import tracking\n"
        "workdir = Path(sys.argv[1]); client = tracking.client(workdir)\n"
        "experiment = tracking.experiment_id(client, 'ionops/x/search', workdir)\n"
        "run = tracking.RunWriter.start(client, experiment, 'a'); run.artifact(Path(sys.argv[2]))\n"
        "print(experiment, run.run_id)\n"
    )
    made = subprocess.run([sys.executable, "-c", before, str(first), str(note)], check=True,
                          capture_output=True, text=True)  # fmt: skip
    experiment, run_id = made.stdout.split()
    first.rename(moved)

    client = tracking.client(moved)
    assert client.get_experiment(experiment).artifact_location == ((moved / "mlartifacts").as_uri())
    again = tracking.RunWriter(client, run_id)
    assert client.get_run(run_id).info.artifact_uri.startswith((moved / "mlartifacts").as_uri())
    note.write_text("logged after the move")
    again.artifact(note, "later")
    later = tracking.RunWriter.start(client, experiment, "b")
    later.artifact(note)
    assert not first.exists(), "an artifact was written where the working folder was"
    found = {p.relative_to(moved / "mlartifacts").as_posix() for p in moved.rglob("note.txt")}
    assert found == {f"{run_id}/artifacts/note.txt", f"{run_id}/artifacts/later/note.txt",
                     f"{later.run_id}/artifacts/note.txt"}  # fmt: skip


def test_the_ui_link_opens_the_model_training_view(tmp_path, monkeypatch):
    """MLflow 3.17's UI opens on its GenAI view unless the link asks for the model-training
    one (checked in a real browser with tools/mlflow_ui_screenshots.py)."""
    from ionops import tracking

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.ui_command(tmp_path).endswith(
        "then open http://127.0.0.1:5000/#/experiments?workflowType=machine_learning"
    )
    assert tracking.ui_command(tmp_path, "3", "abc").endswith(
        "/#/experiments/3/runs/abc?workflowType=machine_learning"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert tracking.ui_command(tmp_path, "3") == (
        "open http://127.0.0.1:5999/#/experiments/3/runs?workflowType=machine_learning in a browser"
    )


def test_a_store_left_mid_transaction_by_a_kill_is_not_damaged(tmp_path):
    """A process killed mid-transaction (kill -9 of a search) leaves a hot journal beside the
    store: SQLite rolls it back on the next opening, and the store is used, not refused (a
    read-only check could not roll it back and called such a store damaged)."""
    import subprocess
    import sys

    from ionops import tracking

    store = tmp_path / "mlflow.db"
    _good_store(store)
    killed = (
        "import os, sqlite3, sys\n"
        "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "db.execute('PRAGMA cache_size=1'); db.execute('BEGIN IMMEDIATE')\n"
        "db.execute('CREATE TABLE filler (x)')\n"
        "for _ in range(2000): db.execute('INSERT INTO filler VALUES (?)', (os.urandom(200),))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", killed, str(store)], check=True)
    assert (tmp_path / "mlflow.db-journal").exists()
    tracking.check_store(f"sqlite:///{store}")
    assert not (tmp_path / "mlflow.db-journal").exists()  # rolled back
    with sqlite3.connect(store) as db:
        assert not db.execute("SELECT name FROM sqlite_master WHERE name = 'filler'").fetchall()
