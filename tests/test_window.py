"""The modern-convention HH model and the window dataset kind (the neural-ODE family's data)."""

import math

import h5py
import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from ionops.datasets.generate import generate, make_plan, spec_from_config
from ionops.datasets.identity import check_dataset
from ionops.datasets.ionic import get_ionic_model
from ionops.datasets.window import WindowDataConfig
from ionops.datasets.window_data import load_window, ornstein_uhlenbeck
from ionops.errors import UserError

MODEL = get_ionic_model("hh_modern")
P = MODEL.parameter_vector()


def textbook(t, y, i_ext=10.0):
    """The issue's equations, written out again here with plain exp (no removable points are
    visited by these tests' trajectories to double precision)."""
    v, n, m, h = y
    a_n = 0.01 * (v + 55) / (1 - math.exp(-0.1 * (v + 55)))
    b_n = 0.125 * math.exp(-0.0125 * (v + 65))
    a_m = 0.1 * (v + 40) / (1 - math.exp(-0.1 * (v + 40)))
    b_m = 4 * math.exp(-0.0556 * (v + 65))
    a_h = 0.07 * math.exp(-0.05 * (v + 65))
    b_h = 1 / (1 + math.exp(-0.1 * (v + 35)))
    i_ion = 120 * m**3 * h * (v - 50) + 36 * n**4 * (v + 77) + 0.3 * (v + 54.387)
    return [i_ext - i_ion, a_n * (1 - n) - b_n * n, a_m * (1 - m) - b_m * m,
            a_h * (1 - h) - b_h * h]  # fmt: skip


def peaks(t, v, threshold=0.0):
    k = np.flatnonzero((v[1:-1] > v[:-2]) & (v[1:-1] >= v[2:]) & (v[1:-1] > threshold)) + 1
    return t[k]


def test_the_compiled_and_array_right_hand_sides_are_the_textbook_equations():
    rng = np.random.default_rng(3)
    states = np.column_stack([rng.uniform(-90, 50, 200), rng.uniform(0, 1, (200, 3))])
    for y in states:
        want = textbook(0.0, y, 7.5)
        assert np.allclose(MODEL.derivative(0.0, y, 7.5, P), want, rtol=1e-12, atol=1e-12)
        assert np.allclose(MODEL.vector_field(y, 7.5, list(P)), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("v_singular", [-55.0, -40.0])
def test_the_removable_points_give_finite_exact_values_and_gradients(v_singular):
    gates = [0.3, 0.05, 0.6]
    for dv in (0.0, 1e-9, -1e-9, 1e-5, -1e-5, 1e-3):
        y = np.array([v_singular + dv, *gates])
        compiled = MODEL.derivative(0.0, y, 0.0, P)
        array = np.array(MODEL.vector_field(y, 0.0, list(P)))
        assert np.isfinite(compiled).all() and np.isfinite(array).all()
        assert np.allclose(compiled, array, rtol=1e-12, atol=1e-13)
    # at the point itself, the limit: alpha_n(-55) = 0.1, alpha_m(-40) = 1 (l'Hopital)
    y = np.array([v_singular, *gates])
    n, m = gates[0], gates[1]
    out = MODEL.derivative(0.0, y, 0.0, P)
    if v_singular == -55.0:
        assert out[1] == pytest.approx(0.1 * (1 - n) - 0.125 * math.exp(-0.0125 * 10) * n,
                                       rel=1e-12)  # fmt: skip
    else:
        assert out[2] == pytest.approx(1.0 * (1 - m) - 4 * math.exp(-0.0556 * 25) * m, rel=1e-12)
    # torch: the gradient through the point is finite and equals the centred difference's
    v = torch.tensor([v_singular], dtype=torch.float64, requires_grad=True)
    state = [v, *(torch.tensor([g], dtype=torch.float64) for g in gates)]
    total = sum(d.sum() for d in MODEL.vector_field(state, 0.0, list(P)))
    (grad,) = torch.autograd.grad(total, v)
    assert torch.isfinite(grad).all()
    step = 1e-4

    def summed(x):
        return sum(MODEL.vector_field(np.array([x, *gates]), 0.0, list(P)))

    assert grad.item() == pytest.approx((summed(v_singular + step) - summed(v_singular - step))
                                        / (2 * step), rel=1e-6)  # fmt: skip


def test_the_rest_state_and_a_constant_current_fire_as_the_textbook_model_every_14_6_ms():
    y0 = MODEL.initial_state(P)
    assert y0[0] == -65.0
    assert np.allclose(MODEL.derivative(0.0, y0, 0.0, P)[1:], 0.0, atol=1e-15)  # gates at rest
    data = WindowDataConfig(kind="window", ionic_model="hh_modern", t_end_ms=100.0,
                            long_end_ms=100.0)  # fmt: skip
    plan = make_plan(spec_from_config(data))
    assert plan.n_window == 1468  # the paper's 1,468 points of [0, 14.68) ms
    reference = solve_ivp(textbook, (0, 100), y0, method="Radau", rtol=1e-11, atol=1e-11,
                          dense_output=True)  # fmt: skip
    t = np.arange(10001) * 0.01
    want = reference.sol(t)
    from ionops.datasets.solver import SolverSettings, solve_stimulus
    from ionops.datasets.stimuli import Constant

    got = solve_stimulus(MODEL, t, Constant(10.0), SolverSettings(1e-10, 1e-12,
                                                                  10_000_000)).states  # fmt: skip
    spikes, expected = peaks(t, got[0]), peaks(t, want[0])
    assert len(spikes) == len(expected) == 7  # about 7 cycles in 100 ms, as the paper says
    assert np.abs(spikes - expected).max() <= 0.01  # one sample
    assert np.diff(spikes)[1:] == pytest.approx(14.63, abs=0.02)
    assert np.abs(got[0] - want[0]).max() < 1e-3 * 100  # mV, through every upstroke
    assert np.abs(got[1:] - want[1:]).max() < 1e-4


@pytest.fixture(scope="module")
def window_file(tmp_path_factory):
    data = WindowDataConfig(kind="window", ionic_model="hh_modern", t_end_ms=40.0,
                            long_end_ms=60.0, window_ms=14.68)  # fmt: skip
    path = tmp_path_factory.mktemp("window") / "w.h5"
    generate(spec_from_config(data), path, progress=False)
    return data, path


def test_the_window_is_the_clean_trajectory_plus_the_papers_ou_noise(window_file):
    _, path = window_file
    window = load_window(path)
    assert window.states["train"].shape == (4, 1468)
    assert window.states["test"].shape == (4, 6001)
    assert window.states["validation"].shape == (4, 4001)
    assert np.array_equal(window.clean, window.states["test"][:, :1468])
    assert np.allclose(window.states["train"], window.clean + window.noise, atol=1e-5)
    # eq. 9 from 0: every increment xi' - (1 - theta dt) xi is sigma sqrt(dt) N(0, 1)
    kicks = window.noise[:, 1:] - (1 - 5.0 * 0.01) * window.noise[:, :-1]
    assert np.array_equal(window.noise[:, 0], np.zeros(4))
    assert kicks.std() == pytest.approx(0.5 * math.sqrt(0.01), rel=0.05)
    assert abs(kicks.mean()) < 0.005
    assert not np.allclose(window.noise[0], window.noise[1])  # a stream per state
    # the validation trajectory starts 10 mV above the test's and is never part of it
    assert window.initial_state["validation"][0] == window.initial_state["test"][0] + 10.0
    assert np.array_equal(window.time["test"][:1468], np.arange(1468) * 0.01)
    with h5py.File(path) as handle:
        assert handle.attrs["kind"] == "window"


def test_a_second_generation_gives_the_same_bytes_and_another_noise_seed_is_refused(
    window_file, tmp_path
):
    data, path = window_file
    again = tmp_path / "again.h5"
    generate(spec_from_config(data), again, progress=False)
    assert again.read_bytes() == path.read_bytes()
    check_dataset(data, path)
    for changed, key in ((data.model_copy(update={"noise": data.noise.model_copy(
            update={"seed": 1})}), "data.noise.seed"),
            (WindowDataConfig.model_validate(data.model_dump() | {"stimulus": {
                "protocol": "constant", "amplitude": 7.0}}),
             "data.stimulus.amplitude"),
            (data.model_copy(update={"window_ms": 10.0}), "data.window_ms")):  # fmt: skip
        with pytest.raises(UserError, match=key):
            check_dataset(changed, path)


def test_scaled_noise_and_the_ou_process_are_deterministic():
    a = ornstein_uhlenbeck(2, 50, 0.01, 5.0, 0.5, seed=4)
    assert np.array_equal(a, ornstein_uhlenbeck(2, 50, 0.01, 5.0, 0.5, seed=4))
    assert not np.array_equal(a, ornstein_uhlenbeck(2, 50, 0.01, 5.0, 0.5, seed=5))


@pytest.mark.parametrize(("changes", "message"), [
    ({"window_ms": 120.0}, "window_ms = 120 is longer than the data: t_end_ms = 100"),
    ({"window_ms": 0.005}, "window_ms = 0.005 holds fewer than two samples"),
    ({"long_end_ms": 50.0}, "long_end_ms = 50 is before t_end_ms = 100"),
    ({"validation_offset": {}}, "validation_offset is empty or zero"),
    ({"noise": {"theta": 0.0}}, "theta"),
    ({"noise": {"scale": {"V": -1.0}}}, r"noise.scale.V = -1.0: must be a finite number >= 0"),
])  # fmt: skip
def test_bad_window_settings_are_refused_by_name(changes, message):
    with pytest.raises(ValueError, match=message):
        WindowDataConfig(kind="window", ionic_model="hh_modern", **changes)


def test_settings_that_name_no_state_or_split_the_grid_are_refused_before_any_solve():
    data = WindowDataConfig(kind="window", ionic_model="hh_modern",
                            validation_offset={"Vm": 5.0})  # fmt: skip
    with pytest.raises(UserError, match=r"name \['Vm'\], not states of hh_modern \(V, n, m, h\)"):
        make_plan(spec_from_config(data))
    data = WindowDataConfig(kind="window", ionic_model="hh_modern", window_ms=14.685)
    with pytest.raises(UserError, match=r"data.window_ms = 14.685 is not a whole number of steps"):
        make_plan(spec_from_config(data))


@pytest.mark.slow
def test_two_mpi_ranks_write_the_serial_window_file_byte_for_byte(tmp_path, mpiexec):
    import subprocess
    import sys
    from pathlib import Path

    ionops = str(Path(sys.executable).parent / "ionops")

    def cli(output):
        return [ionops, "generate", "hh-node", "--set", "data.t_end_ms=30", "--set",
                "data.long_end_ms=40", "--no-progress", "--output", str(output)]  # fmt: skip

    subprocess.run(cli(tmp_path / "serial.h5"), check=True, capture_output=True)
    subprocess.run([mpiexec, "-n", "2", *cli(tmp_path / "mpi.h5")], check=True,
                   capture_output=True)  # fmt: skip
    assert (tmp_path / "serial.h5").read_bytes() == (tmp_path / "mpi.h5").read_bytes()
