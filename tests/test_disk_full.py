"""A full disk: a clear error naming where, nothing half-written left, and the same command
continues once there is room. On a real small filesystem (tmpfs; needs the right to mount)."""

import os
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
