"""Dataset generation: content, metadata, bad input, byte-identical files under MPI and kill -9."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from support import small_spec

from ionops.datasets.generate import generate, make_plan
from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.journal import read_journals
from ionops.datasets.solver import SolverSettings, solve
from ionops.errors import UserError

IONOPS = [sys.executable, "-m", "ionops.cli"]
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_file_is_self_describing(hh_dataset):
    with h5py.File(hh_dataset, "r") as handle:
        attrs = handle.attrs
        assert attrs["format"] == "ionops-dataset"
        assert attrs["model"] == "hh"
        assert list(attrs["state_names"]) == ["V", "m", "h", "n"]
        assert list(attrs["state_units"]) == ["mV", "1", "1", "1"]
        assert json.loads(attrs["parameters"])["gNa"] == 120.0
        assert attrs["rtol"] == 1e-7 and attrs["seed"] == 3
        assert {s["name"] for s in json.loads(attrs["subsets"])} == {
            "t0", "General", "nap", "i_high", "t_fin"
        }  # fmt: skip
        np.testing.assert_allclose(handle["time"][...], np.linspace(0, 100, 64))
        states = handle["train/states"]
        assert states.dtype == np.float32 and states.chunks == (1, 4, 64)
        assert states.compression == "gzip" and states.shuffle
        assert handle["train/solver_stats"].shape == (states.shape[0], 6)
        assert np.isfinite(states[...]).all()


def test_stored_trajectories_are_the_solver_output(hh_dataset):
    plan = make_plan(small_spec("hh", fraction=0.02))
    with h5py.File(hh_dataset, "r") as handle:
        for k in (0, 5, len(plan.samples["test"]) - 1):
            amplitude, t_stim = handle["test/amplitude"][k], handle["test/t_stim"][k]
            assert amplitude == plan.samples["test"].amplitude[k]
            direct = solve(get_ionic_model("hh"), plan.t_grid, amplitude, t_stim,
                           SolverSettings(rtol=1e-7, atol=1e-9))  # fmt: skip
            np.testing.assert_array_equal(
                handle["test/states"][k], direct.states.astype(np.float32)
            )


def test_a_finished_file_is_reported_complete_and_another_one_is_named(tmp_path):
    path = tmp_path / "fhn.h5"
    generate(small_spec("fhn"), path, progress=False)
    before = path.read_bytes()
    for resume in (False, True):  # rerunning after the file appeared continues: nothing to do
        report = generate(small_spec("fhn"), path, resume=resume, progress=False)
        assert not report.written and path.read_bytes() == before
    leftover = tmp_path / "fhn.h5.partial"  # a kill between the file's rename and the cleanup
    leftover.mkdir()
    assert not generate(small_spec("fhn"), path, progress=False).written
    assert not leftover.exists() and path.read_bytes() == before
    with pytest.raises(
        UserError, match=r"holds another dataset \(data.seed: 3 in the file, 4 in this command\)"
    ):
        generate(small_spec("fhn", seed=4), path, progress=False)
    with pytest.raises(
        UserError, match=r"holds another dataset \(data.ionic_model: 'fhn' in the file, 'hh'"
    ):
        generate(small_spec("hh"), path, resume=True, progress=False)
    generate(small_spec("fhn", seed=4), path, overwrite=True, progress=False)
    assert path.read_bytes() != before
    text = tmp_path / "notes.h5"
    text.write_text("not a dataset")
    with pytest.raises(UserError, match="is not a readable ionops dataset"):
        generate(small_spec("fhn"), text, progress=False)
    truncated = tmp_path / "cut.h5"
    truncated.write_bytes(before[: len(before) // 2])
    with pytest.raises(UserError, match="is not a readable ionops dataset"):
        generate(small_spec("fhn"), truncated, resume=True, progress=False)
    with pytest.raises(UserError, match="is a folder"):
        generate(small_spec("fhn"), tmp_path, progress=False)
    with pytest.raises(UserError, match="--resume: no dataset or interrupted generation"):
        generate(small_spec("fhn"), tmp_path / "absent.h5", resume=True, progress=False)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            small_spec("lr91"),
            "unknown ionic model 'lr91'; known models: fhn, fhn_werneck, hh, hh_fractional, "
            "hh_modern, izhikevich, lif, ord, tt04",
        ),
        (small_spec("hh", n_t=4), "n_t = 4: too few grid points; need at least 8"),
        (small_spec("hh", t_end_ms=50.0), "T_stim up to 100.0 ms lies beyond the horizon T = 50"),
        (small_spec("fhn", parameters={"eps": 1.0}), "fhn has no parameter 'eps'"),
        (small_spec("fhn", initial_state="paced"), "fhn has no initial state 'paced'; valid: rest"),
        (small_spec("fhn", rtol=2.0), r"rtol = 2.0: must be in \(0, 1\)"),
    ],
)
def test_bad_input_is_rejected_before_anything_is_written(tmp_path, spec, message):
    with pytest.raises(UserError, match=message):
        generate(spec, tmp_path / "out.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_own_subsets_replace_the_papers_protocol(tmp_path):
    subsets = {"weak": {"i": (0.1, 0.2), "t_stim": (1.0, 50.0), "train": 6, "validation": 2,
                        "test": 2},
               "none": {"i": (0.0, 0.0), "t_stim": (0.0, 0.0), "train": 2}}  # fmt: skip
    path = tmp_path / "own.h5"
    generate(small_spec("fhn", fraction=1.0, subsets=subsets), path, progress=False)
    with h5py.File(path, "r") as handle:
        assert handle["train/amplitude"].shape == (8,) and handle["test/amplitude"].shape == (2,)
        weak = handle["train/subset"][...] == 0
        assert (handle["train/amplitude"][weak] >= 0.1).all()
        assert [s["name"] for s in json.loads(handle.attrs["subsets"])] == ["weak", "none"]


def test_reversed_range_in_own_subsets_is_named(tmp_path):
    subsets = {"backwards": {"i": (2.0, 1.0), "t_stim": (0.0, 5.0), "train": 3}}
    with pytest.raises(UserError, match=r"subset 'backwards': i range \[2.0, 1.0\] is reversed"):
        generate(small_spec("fhn", subsets=subsets), tmp_path / "x.h5", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_own_subsets_come_from_the_experiment_file(tmp_path):
    experiment = tmp_path / "custom.toml"
    experiment.write_text(
        (REPO_CONFIGS / "fhn.toml").read_text()
        + "\n[data.subsets.long]\ni = [0.5, 1.0]\nt_stim = [60.0, 100.0]\ntrain = 4\n"
    )
    output = tmp_path / "custom.h5"
    result = subprocess.run(
        [*IONOPS, "generate", str(experiment), "--n-t", "32", "--output", str(output),
         "--no-progress"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with h5py.File(output, "r") as handle:
        assert handle["train/t_stim"].shape == (4,) and (handle["train/t_stim"][...] >= 60).all()


def test_unwritable_destination_is_named(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere (root)")
        with pytest.raises(UserError, match="cannot write the dataset at"):
            generate(small_spec("fhn"), locked / "out.h5", progress=False)
    finally:
        locked.chmod(0o700)


def test_unwritable_destination_under_a_file_is_named(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(UserError, match="cannot write the dataset at"):
        generate(small_spec("fhn"), blocker / "out.h5", progress=False)


def test_interrupted_run_with_other_settings_is_not_mixed_in(tmp_path):
    path = tmp_path / "hh.h5"
    partial = tmp_path / "hh.h5.partial"
    partial.mkdir()
    manifest = small_spec("hh", seed=99).manifest()
    (partial / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(UserError, match=r"other settings \(seed: 99 there, 3 now\)"):
        generate(small_spec("hh"), path, progress=False)
    assert not path.exists()


def test_cli_reports_bad_input_without_traceback(tmp_path):
    result = subprocess.run(
        [*IONOPS, "generate", "hh", "--n-t", "4", "--output", str(tmp_path / "x.h5")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "data.n_t = 4" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def _cli(output: Path, *extra: str) -> list[str]:
    return [*IONOPS, "generate", "hh", "--fraction", "0.05", "--n-t", "200", "--seed", "5",
            "--no-progress", "--output", str(output), *extra]  # fmt: skip


@pytest.mark.slow
def test_two_ranks_give_the_serial_file_byte_for_byte(tmp_path, mpiexec):
    subprocess.run(_cli(tmp_path / "serial.h5"), check=True, capture_output=True)
    subprocess.run([mpiexec, "-n", "2", *_cli(tmp_path / "mpi.h5")], check=True,
                   capture_output=True)  # fmt: skip
    assert (tmp_path / "serial.h5").read_bytes() == (tmp_path / "mpi.h5").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["worker", "coordinator"])
def test_kill_9_of_a_rank_then_rerun_gives_the_uninterrupted_file(tmp_path, mpiexec, victim):
    reference, output = tmp_path / "reference.h5", tmp_path / "killed.h5"
    big = ("--fraction", "0.5")
    subprocess.run([*_cli(reference), *big], check=True, capture_output=True)
    run = subprocess.Popen([mpiexec, "-n", "2", *_cli(output), *big],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    partial = tmp_path / "killed.h5.partial"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        journals = list(partial.glob("*-r0001.journal")) if partial.exists() else []
        if journals and len(read_journals(partial)) >= 100:
            break
        time.sleep(0.05)
    rank = "r0001" if victim == "worker" else "r0000"
    pid = _pid_writing(partial, rank)
    os.kill(pid, signal.SIGKILL)
    run.wait(timeout=60)
    assert not output.exists()
    done = len(read_journals(partial))
    assert 100 <= done < 1874
    rerun = subprocess.run([mpiexec, "-n", "2", *_cli(output), *big], check=True,
                           capture_output=True, text=True)  # fmt: skip
    assert f"{done} taken from an interrupted run" in rerun.stdout
    assert output.read_bytes() == reference.read_bytes()
    assert not partial.exists()


def _pid_writing(partial: Path, rank: str) -> int:
    """The process holding this rank's journal open (found through /proc)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = str(fd.readlink())
                if target.startswith(str(partial)) and target.endswith(f"-{rank}.journal"):
                    return int(proc.name)
        except OSError:
            continue
    raise AssertionError(f"no process writes the {rank} journal in {partial}")
