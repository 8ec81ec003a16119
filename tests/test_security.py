"""What a search folder may make ionops do: nothing but what ionops itself wrote there.

Tune's saved state is pickles; ionops signs it after each snapshot and checks
the signature before Ray reads it (``ionops.hpo.signing``).
"""

import json
import os
import pickle
import subprocess
from pathlib import Path

import pytest
from support import IONOPS, SMALL_SEARCH, start_tune, wait_for_trials

from ionops.errors import UserError
from ionops.hpo import signing


class _Planted:
    """A pickle that runs a command when it is loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def tune_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    folder = tmp_path / "search" / "tune"
    folder.mkdir(parents=True)
    (folder / "tuner.pkl").write_bytes(pickle.dumps({"param_space": {"x": 1}}))
    (folder / "experiment_state-1.json").write_text(json.dumps({"trial_data": []}))
    (folder / "searcher-state-1.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    (folder / "run_trial_1").mkdir()
    assert signing.sign(folder, folder.parent / signing.SIGNED)
    return folder


def _restore(folder: Path) -> list[str] | None:
    return signing.restore(folder, folder.parent / signing.SIGNED)


def test_the_key_is_private_and_a_key_others_can_read_is_refused(tune_dir):
    key = signing.key_path()
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == signing.KEY_BYTES
    key.chmod(0o644)
    with pytest.raises(UserError, match=r"state-key \(mode 644.*chmod 600"):
        _restore(tune_dir)


def test_a_planted_tuner_pickle_is_refused_and_runs_nothing(tune_dir, tmp_path):
    marker = tmp_path / "ran"
    (tune_dir / "tuner.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    with pytest.raises(UserError, match=r"tune/tuner.pkl was changed after ionops signed it"):
        _restore(tune_dir)
    assert not marker.exists()


def test_a_tuner_pickle_cut_off_mid_copy_is_put_back_whole(tune_dir):
    # a resumed Tune copies tuner.pkl back in place at every snapshot: a kill mid-copy leaves
    # its beginning (the CI failure of stop 18); a copy with one byte changed is still refused
    signed = (tune_dir / "tuner.pkl").read_bytes()
    for cut in (0, len(signed) // 2, len(signed) - 1):
        (tune_dir / "tuner.pkl").write_bytes(signed[:cut])
        assert _restore(tune_dir) == ["tuner.pkl"]
        assert (tune_dir / "tuner.pkl").read_bytes() == signed
    (tune_dir / "tuner.pkl").write_bytes(signed[:-2] + bytes([signed[-2] ^ 1]))
    with pytest.raises(UserError, match=r"tune/tuner.pkl was changed after ionops signed it"):
        _restore(tune_dir)


def test_a_changed_manifest_or_signed_copy_is_refused(tune_dir, tmp_path):
    store = tune_dir.parent / signing.SIGNED
    manifest = json.loads((store / signing.MANIFEST).read_text())
    planted = pickle.dumps(_Planted(tmp_path / "ran"))
    digest = manifest["files"]["searcher-state-1.pkl"]
    (store / digest).write_bytes(planted)
    with pytest.raises(UserError, match=r"signed copy of tune/searcher-state-1.pkl\) was changed"):
        _restore(tune_dir)
    import hashlib

    new = hashlib.sha256(planted).hexdigest()
    (store / new).write_bytes(planted)
    manifest["files"]["searcher-state-1.pkl"] = new  # a consistent manifest, but not signed
    (store / signing.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"does not carry your signature"):
        _restore(tune_dir)


def test_a_snapshot_taken_after_the_last_signing_is_replaced_by_the_signed_one(tune_dir, tmp_path):
    signed = (tune_dir / "searcher-state-1.pkl").read_bytes()
    (tune_dir / "searcher-state-1.pkl").write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (tune_dir / "experiment_state-2.json").write_text("{}")  # newer: Tune would read it first
    assert _restore(tune_dir) == ["experiment_state-2.json", "searcher-state-1.pkl"]
    assert (tune_dir / "searcher-state-1.pkl").read_bytes() == signed
    assert not (tune_dir / "experiment_state-2.json").exists()
    assert _restore(tune_dir) == []  # now exactly the signed snapshot


def test_a_failed_trials_pickled_error_is_not_kept_for_tune_to_load(tune_dir, tmp_path):
    error = tune_dir / "run_trial_1" / "error.pkl"
    error.write_bytes(pickle.dumps(_Planted(tmp_path / "ran")))
    (tune_dir / "run_trial_1" / "error.txt").write_text("Failure # 1")
    _restore(tune_dir)
    assert not error.exists() and (tune_dir / "run_trial_1" / "error.txt").exists()


def test_a_file_tune_is_still_writing_is_not_signed(tune_dir):
    store = tune_dir.parent / signing.SIGNED
    before = (store / signing.MANIFEST).read_text()
    whole = pickle.dumps(list(range(1000)))
    (tune_dir / "searcher-state-1.pkl").write_bytes(whole[: len(whole) // 2])
    assert not signing.sign(tune_dir, store)
    (tune_dir / "experiment_state-1.json").write_text('{"trial_data": [')
    assert not signing.sign(tune_dir, store)
    assert (store / signing.MANIFEST).read_text() == before
    (tune_dir / "searcher-state-1.pkl").write_bytes(whole)
    (tune_dir / "experiment_state-1.json").write_text('{"trial_data": [1]}')
    assert signing.sign(tune_dir, store)
    assert len(list(store.iterdir())) == 4  # the manifest and one copy per file, no stale copy


LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


def _listening(pid: int) -> dict[str, set[str]]:
    """The addresses each process of a driver's tree listens on."""
    import psutil

    driver = psutil.Process(pid)
    found: dict[str, set[str]] = {}
    for process in [driver, *driver.children(recursive=True)]:
        try:
            sockets = process.net_connections(kind="inet")
            name = process.name()
        except psutil.NoSuchProcess:
            continue
        for socket in sockets:
            if socket.status == psutil.CONN_LISTEN:
                found.setdefault(name, set()).add(socket.laddr.ip)
    return found


@pytest.mark.slow
def test_a_local_search_listens_on_loopback_only_and_a_planted_pickle_does_not_run(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    search = start_tune(tmp_path, "exposed", uri)
    wait_for_trials(search, tmp_path, "exposed", 2)
    listening = _listening(search.pid)
    search.kill()
    search.wait()
    assert {"gcs_server", "raylet"} <= set(listening), listening
    exposed = {name: addresses - LOOPBACK for name, addresses in listening.items()}
    assert not any(exposed.values()), f"listening beyond loopback: {exposed}"

    folder = tmp_path / "searches" / "exposed"
    marker = tmp_path / "ran"
    (folder / "tune" / "tuner.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    env = {**os.environ, "IONOPS_WORKDIR": str(tmp_path), "MLFLOW_TRACKING_URI": uri}
    resumed = subprocess.run([IONOPS, "tune", "fhn", *SMALL_SEARCH, "--name", "exposed"],
                             env=env, cwd=tmp_path, capture_output=True, text=True,
                             timeout=300, check=False)  # fmt: skip
    assert resumed.returncode == 2, resumed.stderr[-3000:]
    assert "tuner.pkl was changed after ionops signed it" in resumed.stderr
    assert "Traceback" not in resumed.stderr
    assert not marker.exists()


def test_tampered_per_sample_errors_are_refused_and_run_nothing(tmp_path):
    from ionops.hpo.report import _per_sample

    marker = tmp_path / "ran"
    path = tmp_path / "per_sample.pt"
    path.write_bytes(pickle.dumps(_Planted(marker), protocol=2))
    with pytest.raises(UserError, match=r"per_sample.pt is not per-sample errors ionops wrote"):
        _per_sample(path)
    assert not marker.exists()
