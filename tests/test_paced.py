"""The paced dataset kind (the gating-RNN family's data): segments of ten Tusscher 2004 paced
at many cycle lengths, their split, the perturbed models, and bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ionops.datasets.generate import generate, make_plan, spec_from_config
from ionops.datasets.paced import PacedDataConfig
from ionops.datasets.paced_data import load_paced
from ionops.errors import UserError

SMALL = {"kind": "paced", "cycle_lengths": (300.0, 500.0, 50.0), "validation": 2,
         "test_cycle_lengths": [325.0], "segment_ms": 2500.0, "discard_ms": 1500.0}  # fmt: skip


def _generate(folder: Path, **changes) -> Path:  # type: ignore[no-untyped-def]
    data = PacedDataConfig.model_validate({**SMALL, **changes})
    path = folder / f"paced{len(list(folder.iterdir()))}.h5"
    generate(spec_from_config(data), path, progress=False)
    return path


def _apd90(time: np.ndarray, v: np.ndarray, onset: float) -> float:
    """The action potential's duration at 90 % repolarisation from ``onset``."""
    after = time >= onset
    t, u = time[after], v[after]
    peak = int(np.argmax(u[: int(200 / (t[1] - t[0]))]))
    level = u[peak] - 0.9 * (u[peak] - u[0])
    below = np.flatnonzero(u[peak:] < level)
    return float(t[peak + below[0]] - onset)


def test_segments_split_their_cycle_lengths_and_mark_every_pulse(tmp_path):
    data = load_paced(_generate(tmp_path))
    grid = [300.0, 350.0, 400.0, 450.0, 500.0]
    together = sorted([*data.cycle_length["train"], *data.cycle_length["validation"]])
    assert together == grid and len(data.cycle_length["validation"]) == 2
    assert list(data.cycle_length["test"]) == [325.0]
    assert data.states["train"].shape == (3, 17, 1001)
    for split in ("train", "validation"):
        for cycle, stimulus in zip(data.cycle_length[split], data.stimulus[split], strict=True):
            onsets = [10.0 + cycle * k for k in range(20) if 1500 <= 10.0 + cycle * k <= 2500]
            assert stimulus.sum() == pytest.approx(52.0 * len(onsets))
    # the paced steady state fires on every pulse: as many upstrokes as pulses
    v = data.states["test"][0, 0]
    upstrokes = np.flatnonzero((v[:-1] < 0) & (v[1:] >= 0))
    assert len(upstrokes) == int(data.stimulus["test"][0].sum() / 52.0)


def test_a_long_qt_model_repolarises_later(tmp_path):
    control = load_paced(_generate(tmp_path, test_cycle_lengths=[800.0]))
    long_qt = load_paced(_generate(tmp_path, test_cycle_lengths=[800.0], scale={"g_Kr": 0.5}))
    assert long_qt.attributes["parameters"]["g_Kr"] == pytest.approx(0.048)
    time = control.time
    onset = 10.0 + 800.0 * 2 - 1500.0  # the first pulse in the kept window
    base = _apd90(time, control.states["test"][0, 0], onset)
    longer = _apd90(time, long_qt.states["test"][0, 0], onset)
    assert 250.0 < base < longer


def test_a_second_generation_gives_the_same_bytes(tmp_path):
    first, second = _generate(tmp_path), _generate(tmp_path)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.parametrize(("changes", "message"), [
    ({"scale": {"g_Krr": 0.5}}, r"data.scale names \['g_Krr'\], not parameters of tt04"),
    ({"cycle_lengths": (0.5, 500.0, 5.0)}, "not longer than the stimulus"),
    ({"test_cycle_lengths": [1.0]}, "a cycle length of 1 ms is not longer than the stimulus"),
    ({"discard_ms": 2500.0}, "leaves nothing"),
    ({"parameter_set": "purkinje"}, "no parameter set 'purkinje'; its sets: M, endo, epi"),
    ({"cycle_lengths": (500.0, 300.0, 5.0)}, "need 0 < low <= high"),
])  # fmt: skip
def test_bad_paced_settings_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        PacedDataConfig.model_validate({**SMALL, **changes})


def test_more_validation_segments_than_cycle_lengths_are_refused_before_any_solve():
    data = PacedDataConfig.model_validate({**SMALL, "validation": 5})
    with pytest.raises(UserError, match=r"data.validation = 5 leaves no training segment"):
        make_plan(spec_from_config(data))


def test_a_recording_with_nan_is_refused_naming_the_segment(tmp_path):
    path = _generate(tmp_path)
    with h5py.File(path, "r+") as handle:
        states = handle["validation/states"]
        states[1, 12, 40] = np.nan
    with pytest.raises(UserError, match=r"validation segment 1 \(cycle length .* ms\) holds NaN "
                       r"or infinite values in Ca_i"):  # fmt: skip
        load_paced(path)


@pytest.mark.slow
def test_two_mpi_ranks_write_the_serial_paced_file_byte_for_byte(tmp_path, mpiexec):
    # no family trains on paced data yet, so no experiment file: the generation API itself
    script = (
        "import sys\nfrom pathlib import Path\n"
        "from ionops.datasets.generate import generate, spec_from_config\n"
        "from ionops.datasets.paced import PacedDataConfig\n"
        f"data = PacedDataConfig.model_validate({SMALL!r})\n"
        "generate(spec_from_config(data), Path(sys.argv[1]), progress=False)\n"
    )
    runner = tmp_path / "generate_paced.py"
    runner.write_text(script)
    python = sys.executable
    subprocess.run([python, str(runner), str(tmp_path / "serial.h5")], check=True)
    subprocess.run([mpiexec, "-n", "2", python, str(runner), str(tmp_path / "mpi.h5")],
                   check=True)  # fmt: skip
    assert (tmp_path / "serial.h5").read_bytes() == (tmp_path / "mpi.h5").read_bytes()
