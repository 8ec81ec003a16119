"""A full disk: a clear error naming where, nothing half-written left, and the same command
continues once there is room. On a real small filesystem (tmpfs; needs the right to mount)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

IONOPS = str(Path(sys.executable).parent / "ionops")
SMALL = ["--set", "data.fraction=0.05", "--set", "data.n_t=512"]
TINY_NET = ["--set", "model.d_v=8", "--set", "model.k_max=8", "--set", "training.epochs=1",
            "--no-progress"]  # fmt: skip


@pytest.fixture
def small_disk(tmp_path) -> Path:
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8M", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)  # fmt: skip
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({mounted.stderr.strip()[:80]})")
    yield disk
    subprocess.run(["umount", str(disk)], check=False)


def _fill(disk: Path, leave_bytes: int) -> Path:
    """A file that leaves about ``leave_bytes`` free on ``disk``."""
    filler = disk / "filler"
    size = shutil.disk_usage(disk).free - leave_bytes
    with filler.open("wb") as handle:
        handle.write(b"\0" * max(0, size))
    return filler


def _ionops(*args: str, workdir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "IONOPS_WORKDIR": str(workdir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([IONOPS, *args], env=env, capture_output=True, text=True, timeout=300,
                          check=False)  # fmt: skip


def test_training_on_a_full_disk_leaves_a_usable_store(small_disk, tmp_path):
    data = tmp_path / "fhn.h5"
    made = _ionops("generate", "fhn", *SMALL, "--output", str(data), workdir=tmp_path)
    assert made.returncode == 0, made.stderr
    workdir = small_disk / "work"
    filler = _fill(small_disk, 64 * 1024)
    full = _ionops("train", "fhn", *SMALL, *TINY_NET, "--data", str(data), workdir=workdir)
    assert full.returncode == 2, full.stderr[-2000:]
    assert f"disk full at {workdir}" in full.stderr and "Traceback" not in full.stderr
    assert not (workdir / "mlflow.db").exists()  # no half-migrated store
    filler.unlink()
    again = _ionops("train", "fhn", *SMALL, *TINY_NET, "--data", str(data), workdir=workdir)
    assert again.returncode == 0, again.stderr[-2000:]


def test_generation_on_a_full_disk_keeps_its_samples_and_assembles_later(small_disk, tmp_path):
    output = small_disk / "fhn.h5"
    filler = _fill(small_disk, 1024 * 1024)  # room for the journals, not the file
    full = _ionops("generate", "fhn", *SMALL, "--output", str(output), workdir=tmp_path)
    assert full.returncode == 2, full.stderr[-2000:]
    assert f"disk full at {small_disk}" in full.stderr and "Traceback" not in full.stderr
    assert not output.exists()
    assert not list(small_disk.glob(".*assembling"))
    filler.unlink()
    again = _ionops("generate", "fhn", *SMALL, "--output", str(output), workdir=tmp_path)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "taken from an interrupted run" in again.stdout


def test_a_training_stopped_by_a_full_disk_says_how_to_continue_and_leaves_no_run_running(
    small_disk, tmp_path
):
    """The checkpoint cannot be written: the error names the run to continue (the default
    run name holds the time, so the same command would start another); continuing closes the
    abandoned MLflow run as FAILED, with the reason, and finishes one."""

    import mlflow

    data = tmp_path / "fhn.h5"
    assert (
        _ionops("generate", "fhn", *SMALL, "--output", str(data), workdir=tmp_path).returncode == 0
    )
    workdir = small_disk / "work"
    first = _ionops("train", "fhn", *SMALL, *TINY_NET, "--data", str(data), workdir=workdir)
    assert first.returncode == 0, first.stderr[-2000:]  # the store exists; the disk fills next
    filler = _fill(small_disk, 80 * 1024)  # room for the run's start, not for its checkpoint
    full = _ionops("train", "fhn", *SMALL, *TINY_NET, "--data", str(data), workdir=workdir)
    assert full.returncode == 2, full.stderr[-2000:]
    found = re.search(r"disk full at .*: the training stopped; .* run (ionops train .* --run-name "
                      r"(\S+))$", full.stderr.strip())  # fmt: skip
    assert found, full.stderr[-2000:]
    filler.unlink()
    again = _ionops(*found.group(1).split()[1:], "--no-progress", workdir=workdir)
    assert again.returncode == 0, again.stderr[-2000:]
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ionops/fhn-fno/train")
    runs = client.search_runs([experiment.experiment_id],
                              f"attributes.run_name = '{found.group(2)}'")  # fmt: skip
    assert sorted(r.info.status for r in runs) == ["FAILED", "FINISHED"]
    (abandoned,) = [r for r in runs if r.info.status == "FAILED"]
    assert "ended without closing the run" in abandoned.data.tags["ionops.failure"]
    everything = client.search_runs([experiment.experiment_id])
    assert "RUNNING" not in {r.info.status for r in everything}


def test_a_full_disk_without_a_file_name_is_placed_where_room_is_least(small_disk, tmp_path):
    """A full disk reported without the file (an SQLite or stream error) still names where:
    of the places the command writes, the one with the least room."""
    from ionops.cli import _fullest

    _fill(small_disk, 16 * 1024)
    output = small_disk / "sub" / "out.h5"
    where = _fullest(["generate", "fhn", "--output", str(output)])
    assert re.fullmatch(rf" at {re.escape(str(output))} \(\d+ kB free\)", where), where
    assert int(where.split("(")[1].split()[0]) <= 16
